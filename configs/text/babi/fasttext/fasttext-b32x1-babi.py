# FastTextItout on bAbI task 1: one token per step, the answer scored after the question.
# vocab_size bounds the token ids (task 1 has about 20 words; room is left for other tasks);
# nclass is the number of answers (task 1: six places).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_babi.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    backbone=dict(
        type="FastTextItout",
        timestep=100,
        vocab_size=200,
        embedding_dim=32,
        hidden_dim=128,
        nclass=6,
        cmode="analog",
        amode="pick",
        soma_params="all_share",
        noise=0.001,
    ),
)
runner = dict(max_epochs=50)
