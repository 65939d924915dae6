# ResNet-LIF-50 (ResNetLif): the same network with the time loop inside the layers (IIM), for fast training.
_base_ = ["./resnetlif50-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(type="ResNetLif"))
