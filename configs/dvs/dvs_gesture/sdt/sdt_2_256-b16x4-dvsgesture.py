# The Spike-driven Transformer 2-256 on DVS128 Gesture, T=16 (its code's conf/gesture
# 2_256_200E_t16: 16 x 16 tokens, pooling '0111'); the data and recipe of the Spikformer
# config.
_base_ = ["../spikformer/spikformer_2_256-b16x4-dvsgesture.py"]
model = dict(
    backbone=dict(
        _delete_=True,
        type="sdt_2_256",
        timestep=16,
        input_channels=2,
        h=128,
        w=128,
        nclass=11,
        pooling_stat="0111",
    )
)
