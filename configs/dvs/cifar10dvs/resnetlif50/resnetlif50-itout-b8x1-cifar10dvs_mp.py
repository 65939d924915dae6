# ResNet-LIF-50 on CIFAR10-DVS cut into two slices for two devices (BIDL's spatiotemporal
# slicing): `model` is the whole network (training); model_0 runs the stem and residual
# blocks 0-5, model_1 blocks 6-15 and the readout. models_compile_inputshape: one step's
# input of each slice.
_base_ = ["./resnetlif50-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(type="ResNetLifItout_MP"))
models_compile_inputshape = [[1, 2, 128, 128], [1, 512, 16, 16]]
model_0 = dict(
    type="ImageClassifier",
    backbone=dict(
        type="ResNetLifItout_MP",
        depth=50,
        timestep=10,
        h=128,
        w=128,
        input_channels=2,
        nclass=10,
        down_t=[1, "avg"],
        noise=1e-5,
        cmode="spike",
        split=[0, 6],
    ),
    neck=None,
    head=dict(type="ClsHead", loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1)),
)
model_1 = dict(model_0, backbone=dict(model_0["backbone"], split=[6, 16]))
