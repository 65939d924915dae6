# SeqClif7Fc1DgItout on DVS128 Gesture (EIM).
_base_ = ["./../clif3flif2dg/clif3flif2dg_itout-b16x1-dvsgesture.py"]
model = dict(backbone=dict(type="SeqClif7Fc1DgItout"))
