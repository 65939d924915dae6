# SeqClifplus3Flifplus2DgItout: LIF+ cells (COBE input).
_base_ = ["./../clif3flif2dg/clif3flif2dg_itout-b16x1-dvsgesture.py"]
model = dict(
    backbone=dict(
        type="SeqClifplus3Flifplus2DgItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0]
    )
)
