# The LIF+ gesture network on RGB frame differences.
_base_ = ["./../clif3flif2rg/clif3flif2rg_itout-b16x1-rgbgesture.py"]
model = dict(
    backbone=dict(
        type="SeqClifplus3Flifplus2DgItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0]
    )
)
