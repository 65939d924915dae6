# Adam with steps down by 10x at the milestones (BIDL's DVS-gesture and IMDB schedule).
optimizer = dict(type="Adam", lr=1e-3, weight_decay=1e-4)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="MultiStepLR", milestones=[60, 90])
runner = dict(type="EpochBasedRunner", max_epochs=100)
