# The lite ResNet-LIF-18: ReLU inside the blocks.
_base_ = ["./resnetlif18-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(type="ResNetLifReluItout"))
