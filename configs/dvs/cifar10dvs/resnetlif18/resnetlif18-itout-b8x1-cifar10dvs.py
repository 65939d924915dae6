# ResNet-LIF-18 on CIFAR10-DVS (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_cifar10dvs.py",
    "../../../_base_/schedules/_sgd_cosine_warmup.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    head=dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0)),
    backbone=dict(
        type="ResNetLifItout",
        depth=18,
        timestep=10,
        h=128,
        w=128,
        input_channels=2,
        nclass=10,
        down_t=[1, "avg"],
        low_resolut=False,
        zero_init_residual=True,
        noise=1e-05,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
    ),
)
data = dict(samples_per_gpu=8)
