# SeqClif3Flif2DgIt: the time loop inside the layers (IIM); its output layer is an FC-LIF
# (no head), so the numbers equal the Itout network's.
_base_ = ["./clif3flif2dg_itout-b16x1-dvsgesture.py"]
model = dict(backbone=dict(type="SeqClif3Flif2DgIt"))
