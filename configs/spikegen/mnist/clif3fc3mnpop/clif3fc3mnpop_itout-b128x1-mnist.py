# SeqClif3Fc3MnItout on MNIST, Population-coded spikes (5 channel(s) of 28x28).
_base_ = ["../clif3fc3mnrate/clif3fc3mnrate_itout-b128x1-mnist.py"]
encoder = {"type": "Population", "timesteps": 8, "pop_neuron": 5}
model = dict(backbone=dict(input_channels=5))
data = dict(train=dict(encoder=encoder), val=dict(encoder=encoder), test=dict(encoder=encoder))
