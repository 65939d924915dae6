# SeqClifplus3Fc3LcItout: LIF+ cells (COBE input).
_base_ = ["./../clif3fc3lc/clif3fc3lc_itout-b16x1-luna16cls.py"]
model = dict(
    backbone=dict(type="SeqClifplus3Fc3LcItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
)
