# Spikformer-8-384 on ImageNet, direct encoding, T=4 (the paper's Table 1: 70.24 % top-1 at
# 16.81 M parameters), with its code's imagenet.yml recipe: AdamW 5e-4 (batch 24 per
# device), weight decay 0.05, 20 warm-up epochs then cosine to 1e-5, 310 epochs, label
# smoothing 0.1, mixup 0.8 / CutMix 1.0, bf16.
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_imagenet.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    head=dict(
        loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0), topk=(1, 5)
    ),
    backbone=dict(type="spikformer_8_384", timestep=4),
)
data = dict(samples_per_gpu=24)
optimizer = dict(type="AdamW", lr=5e-4, weight_decay=0.05)
optimizer_config = dict(grad_clip=None)
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=1e-5,
    warmup="linear",
    warmup_iters=20,
    warmup_by_epoch=True,
    warmup_ratio=0.002,
)
mixup = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5)
fp16 = dict(dtype="bfloat16")
runner = dict(type="EpochBasedRunner", max_epochs=310)
