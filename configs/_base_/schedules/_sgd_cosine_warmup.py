# SGD with Nesterov momentum, linear warm-up and cosine annealing, for the ResNet-LIFs.
optimizer = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
optimizer_config = dict(grad_clip=dict(max_norm=10.0))
lr_config = dict(
    policy="CosineAnnealing", min_lr=0, warmup="linear", warmup_iters=500, warmup_ratio=0.1
)
runner = dict(type="EpochBasedRunner", max_epochs=100)
