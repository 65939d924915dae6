# SeqClif3Fc3DmIt: BIDL's It network (the head once on the time-averaged features), time
# loop inside the layers (IIM).
_base_ = ["./clif3fc3dm_itout-b16x1-dvsmnist.py"]
model = dict(backbone=dict(type="SeqClif3Fc3DmIt"))
