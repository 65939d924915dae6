# SeqClifplus3Fc3DmItout: LIF+ cells (COBE input).
_base_ = ["./../clif3fc3dm/clif3fc3dm_itout-b16x1-dvsmnist.py"]
model = dict(
    backbone=dict(type="SeqClifplus3Fc3DmItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
)
