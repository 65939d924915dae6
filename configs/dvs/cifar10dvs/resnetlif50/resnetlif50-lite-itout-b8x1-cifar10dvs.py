# The lite ResNet-LIF-50: ReLU inside the blocks.
_base_ = ["./resnetlif50-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(type="ResNetLifReluItout"))
