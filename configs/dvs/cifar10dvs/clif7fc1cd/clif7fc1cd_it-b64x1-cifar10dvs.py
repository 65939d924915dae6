# SeqClif7Fc1CdIt: BIDL's It network (pools after each cell; the head once on the time-
# averaged features), time loop inside (IIM).
_base_ = ["./../clif5fc2cd/clif5fc2cd_itout-b64x1-cifar10dvs.py"]
model = dict(backbone=dict(type="SeqClif7Fc1CdIt"))
