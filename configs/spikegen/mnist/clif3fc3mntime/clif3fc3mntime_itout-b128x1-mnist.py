# SeqClif3Fc3MnItout on MNIST, Temporal-coded spikes (1 channel(s) of 28x28).
_base_ = ["../clif3fc3mnrate/clif3fc3mnrate_itout-b128x1-mnist.py"]
encoder = {"type": "Temporal", "timesteps": 8}
model = dict(backbone=dict(input_channels=1))
data = dict(train=dict(encoder=encoder), val=dict(encoder=encoder), test=dict(encoder=encoder))
