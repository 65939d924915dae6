# ResNet-LIF-50 on CIFAR10-DVS (EIM): ResNet-LIF-18's setup with bottleneck blocks.
_base_ = ["../resnetlif18/resnetlif18-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(depth=50))
