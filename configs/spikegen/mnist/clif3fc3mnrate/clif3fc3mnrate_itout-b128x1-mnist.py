# SeqClif3Fc3MnItout on MNIST, rate-coded spikes.
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_mnist.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    backbone=dict(
        type="SeqClif3Fc3MnItout",
        timestep=8,
        input_channels=1,
        h=28,
        w=28,
        nclass=10,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
runner = dict(max_epochs=20)
