# ResNet-LIF-18 (ResNetLifIt): the same network with the time loop inside the layers (IIM), for fast training.
_base_ = ["./resnetlif18-itout-b8x1-cifar10dvs.py"]
model = dict(backbone=dict(type="ResNetLifIt"))
