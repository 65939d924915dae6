# SeqClif3Fc3DmIt: the same network with the time loop inside the layers (IIM), for fast training.
_base_ = ["./clif3fc3dm_itout-b16x1-dvsmnist.py"]
model = dict(backbone=dict(type="SeqClif3Fc3DmIt"))
