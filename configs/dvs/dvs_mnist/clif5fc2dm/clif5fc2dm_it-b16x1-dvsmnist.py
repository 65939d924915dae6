# SeqClif5Fc2DmIt: BIDL's It network (the head once on the time-averaged features), the
# time loop inside the layers (IIM); input as clif5fc2dm_itout.
_base_ = ["./clif5fc2dm_itout-b16x1-dvsmnist.py"]
model = dict(backbone=dict(type="SeqClif5Fc2DmIt"))
