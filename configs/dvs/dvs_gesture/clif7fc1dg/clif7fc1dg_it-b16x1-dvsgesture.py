# SeqClif7Fc1DgIt: BIDL's It network (the head once on the time-averaged features), the
# time loop inside the layers (IIM); input as clif7fc1dg_itout.
_base_ = ["./clif7fc1dg_itout-b16x1-dvsgesture.py"]
model = dict(backbone=dict(type="SeqClif7Fc1DgIt"))
