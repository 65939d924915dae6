# ResNet-LIF-18 on 20BN-Jester, 16 frames of 112x112 RGB (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_jester.py",
    "../../../_base_/schedules/_sgd_cosine_warmup.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    head=dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0)),
    backbone=dict(
        type="ResNetLifItout",
        depth=18,
        timestep=16,
        h=112,
        w=112,
        input_channels=3,
        nclass=27,
        down_t=[1, "avg"],
        zero_init_residual=True,
        noise=0,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        input_norm={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    ),
)
runner = dict(max_epochs=60)
