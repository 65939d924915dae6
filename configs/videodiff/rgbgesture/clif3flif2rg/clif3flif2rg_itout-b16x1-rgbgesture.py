# SeqClif3Flif2DgItout (the DVS-gesture network) on RGB gestures as frame differences.
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_rgbgesture.py",
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
        nclass=10,
        fmode="spike",
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
