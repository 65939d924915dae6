# SeqClif7Fc1CdItout on CIFAR10-DVS (EIM).
_base_ = ["./../clif5fc2cd/clif5fc2cd_itout-b64x1-cifar10dvs.py"]
model = dict(backbone=dict(type="SeqClif7Fc1CdItout"))
