# SeqClif5Fc2CdIt: the same network with the time loop inside the layers (IIM), for fast training.
_base_ = ["./clif5fc2cd_itout-b64x1-cifar10dvs.py"]
model = dict(backbone=dict(type="SeqClif5Fc2CdIt"))
