# SeqClifplus5Fc2CdItout: LIF+ cells (COBE input).
_base_ = ["./../clif5fc2cd/clif5fc2cd_itout-b64x1-cifar10dvs.py"]
model = dict(
    backbone=dict(type="SeqClifplus5Fc2CdItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
)
