# The lite ResNet-LIF-18 on Jester: ReLU inside the blocks.
_base_ = ["./resnetlif18-itout-b20x4-16-jester.py"]
model = dict(backbone=dict(type="ResNetLifReluItout"))
