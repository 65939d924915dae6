# FastTextItout on IMDB: one token per step; the score after the last token.
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_imdb.py",
    "../../../_base_/schedules/_adam_multistep.py",
    "../../../_base_/_runtime.py",
]
evaluation = dict(metric_options=dict(topk=(1,)))  # two classes: top-5 would always be 100 %
model = dict(
    head=dict(topk=(1,)),
    backbone=dict(
        type="FastTextItout",
        timestep=500,
        vocab_size=1001,
        embedding_dim=16,
        hidden_dim=256,
        nclass=2,
        cmode="analog",
        amode="pick",
        soma_params="all_share",
        noise=0.001,
    ),
)
lr_config = dict(milestones=[10, 25, 35])
runner = dict(max_epochs=50)
