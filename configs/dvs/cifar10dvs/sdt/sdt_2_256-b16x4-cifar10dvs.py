# The Spike-driven Transformer 2-256 on CIFAR10-DVS, T=16 (the paper's Table 4: 2.57 M
# parameters); the Spikformer config's data and recipe, the SDT's 0.125 attention scale.
_base_ = ["../spikformer/spikformer_2_256-b16x4-cifar10dvs.py"]
model = dict(
    backbone=dict(
        _delete_=True,
        type="sdt_2_256",
        timestep=16,
        input_channels=2,
        h=128,
        w=128,
        nclass=10,
        pooling_stat="0111",  # 16 x 16 tokens from 128 x 128, as its DVS code
    )
)
