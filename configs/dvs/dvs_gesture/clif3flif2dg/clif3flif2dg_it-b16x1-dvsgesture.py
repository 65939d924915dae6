# SeqClif3Flif2DgIt: the same network with the time loop inside the layers (IIM), for fast training.
_base_ = ["./clif3flif2dg_itout-b16x1-dvsgesture.py"]
model = dict(backbone=dict(type="SeqClif3Flif2DgIt"))
