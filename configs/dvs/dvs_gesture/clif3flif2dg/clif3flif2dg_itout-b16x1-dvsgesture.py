# SeqClif3Flif2DgItout on DVS128 Gesture (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_dvs_gesture.py",
    "../../../_base_/schedules/_adam_multistep.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    backbone=dict(
        type="SeqClif3Flif2DgItout",
        timestep=60,
        input_channels=2,
        h=40,
        w=40,
        nclass=11,
        cmode="spike",
        fmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0.001,
    ),
)
