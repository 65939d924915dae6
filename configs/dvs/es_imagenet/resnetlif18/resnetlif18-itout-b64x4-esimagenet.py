# ResNet-LIF-18 on ES-ImageNet (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_es_imagenet.py",
    "../../../_base_/schedules/_sgd_cosine_warmup.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    head=dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0)),
    backbone=dict(
        type="ResNetLifItout",
        depth=18,
        timestep=8,
        h=224,
        w=224,
        input_channels=2,
        nclass=1000,
        down_t=[1, "avg"],
        zero_init_residual=True,
        noise=0,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
    ),
)
optimizer = dict(lr=0.1)
runner = dict(max_epochs=30)
