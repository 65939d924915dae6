# Meta-SpikeFormer (Spike-driven Transformer v2) 8-512 on ImageNet, direct encoding, T=1:
# the first stage of BIDL's spikeformerv2 application (55.35 M parameters; 80.0 % top-1
# after its T=4 fine-tuning with a distilled teacher, see docs/transformers.md). Its
# recipe: 8 devices x 128, lr 6e-4 x 1024 / 256, weight decay 0.05 (none on 1-D
# parameters), 10 warm-up epochs then cosine to 1e-6, 200 epochs, label smoothing 0.1,
# LAMB with its trust ratio clipped at 1 and the gradients' global norm at 1 (bidl's Lamb).
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/datasets/_imagenet.py",
    "../../../_base_/_runtime.py",
]
timestep = 1
model = dict(
    head=dict(
        loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0), topk=(1, 5)
    ),
    backbone=dict(type="metaspikformer_8_512", timestep=timestep),
)
images = dict(timesteps=timestep)
data = dict(samples_per_gpu=128, workers_per_gpu=10, train=images, val=images, test=images)
optimizer = dict(
    type="Lamb", lr=2.4e-3, weight_decay=0.05, paramwise_cfg=dict(layer_decay_rate=1.0)
)
optimizer_config = dict(grad_clip=None)
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=1e-6,
    warmup="linear",
    warmup_iters=10,
    warmup_by_epoch=True,
    warmup_ratio=0.001,
)
fp16 = dict(dtype="bfloat16")
runner = dict(type="EpochBasedRunner", max_epochs=200)
