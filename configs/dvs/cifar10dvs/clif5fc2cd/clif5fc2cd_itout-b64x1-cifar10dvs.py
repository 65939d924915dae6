# SeqClif5Fc2CdItout on CIFAR10-DVS (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_cifar10dvs.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    backbone=dict(
        type="SeqClif5Fc2CdItout",
        timestep=10,
        input_channels=2,
        h=128,
        w=128,
        nclass=10,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
