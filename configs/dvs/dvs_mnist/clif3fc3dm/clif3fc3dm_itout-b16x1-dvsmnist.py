# SeqClif3Fc3DmItout on DVS-MNIST, time loop outside the network (EIM).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_dvs_mnist.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    backbone=dict(
        type="SeqClif3Fc3DmItout",
        timestep=20,
        input_channels=2,
        h=34,
        w=34,
        nclass=10,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
runner = dict(max_epochs=20)
