# SeqClif5Fc2CdIt: BIDL's It network (the head once on the time-averaged features), time
# loop inside the layers (IIM).
_base_ = ["./clif5fc2cd_itout-b64x1-cifar10dvs.py"]
model = dict(backbone=dict(type="SeqClif5Fc2CdIt"))
