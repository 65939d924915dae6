# Adam with cosine annealing, BIDL's default for the sequential conv-LIF networks.
optimizer = dict(type="Adam", lr=1e-3, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="CosineAnnealing", min_lr=1e-5)
runner = dict(type="EpochBasedRunner", max_epochs=100)
