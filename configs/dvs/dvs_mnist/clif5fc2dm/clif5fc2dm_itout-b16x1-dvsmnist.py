# SeqClif5Fc2DmItout on DVS-MNIST (EIM).
_base_ = ["./../clif3fc3dm/clif3fc3dm_itout-b16x1-dvsmnist.py"]
model = dict(backbone=dict(type="SeqClif5Fc2DmItout"))
