# SeqClif3Fc3LcItout on LUNA16 nodules (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_luna16cls.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
evaluation = dict(metric_options=dict(topk=(1,)))  # two classes: top-5 would always be 100 %
model = dict(
    head=dict(topk=(1,)),
    backbone=dict(
        type="SeqClif3Fc3LcItout",
        timestep=8,
        input_channels=1,
        h=32,
        w=32,
        nclass=2,
        cmode="analog",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
