# Spikformer-2-256 on CIFAR10-DVS, T=16 (the paper's Table 4: 80.9 % top-1, 2.57 M parameters),
# with its code's recipe: AdamW 1e-3, weight decay 0.06, 10 warm-up epochs then cosine to
# 1e-5 over 106 epochs, label smoothing 0.1, mixup (alpha 0.5) on half the batches, bf16.
# Frames split the recording into equal event counts (SpikingJelly's split_by='number').
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_cifar10dvs.py",
    "../../../_base_/_runtime.py",
]
timestep = 16
model = dict(
    head=dict(loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0)),
    backbone=dict(
        type="spikformer_2_256",
        timestep=timestep,
        input_channels=2,
        h=128,
        w=128,
        nclass=10,
        attn_scale=0.25,  # the value of its CIFAR10-DVS code (0.125 on ImageNet)
    ),
)
frames = dict(timesteps=timestep, frame_by="count")
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=4,
    train=frames,
    val=frames,
    test=frames,
)
optimizer = dict(type="AdamW", lr=1e-3, weight_decay=0.06)
optimizer_config = dict(grad_clip=None)
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=1e-5,
    warmup="linear",
    warmup_iters=10,
    warmup_by_epoch=True,
    warmup_ratio=0.01,
)
mixup = dict(mixup_alpha=0.5, cutmix_alpha=0.0, prob=0.5)
fp16 = dict(dtype="bfloat16")
runner = dict(type="EpochBasedRunner", max_epochs=106)
