# Spikformer-4-384 on CIFAR-10 images, direct encoding, T=4 (the paper's Table 3: 95.19 %
# top-1 at 9.32 M parameters), with its code's cifar10.yml recipe: AdamW 5e-4, weight decay
# 0.06, 20 warm-up epochs then cosine to 1e-5, 310 epochs, label smoothing 0.1, mixup
# (alpha 0.5) until epoch 200, bf16. (Its RandAugment and random erasing are not offered.)
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_cifar10_images.py",
    "../../../_base_/_runtime.py",
]
model = dict(
    head=dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0)),
    backbone=dict(type="spikformer_4_384", timestep=4, input_channels=3, h=32, w=32, nclass=10),
)
optimizer = dict(type="AdamW", lr=5e-4, weight_decay=0.06)
optimizer_config = dict(grad_clip=None)
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=1e-5,
    warmup="linear",
    warmup_iters=20,
    warmup_by_epoch=True,
    warmup_ratio=0.02,
)
mixup = dict(mixup_alpha=0.5, cutmix_alpha=0.0, prob=1.0, off_epoch=200)
fp16 = dict(dtype="bfloat16")
runner = dict(type="EpochBasedRunner", max_epochs=310)
