# A spiking MLP (700-256-256-20, FC-LIF) on the Spiking Heidelberg Digits: 100 bins of 10 ms.
custom_imports = dict(imports=["../../_fclif_mlp.py"], allow_failed_imports=False)
timestep = 100
model = dict(
    type="ImageClassifier",
    backbone=dict(
        type="FcLifMlpItout", timestep=timestep, channels=700, hidden=[256, 256], nclass=20
    ),
    neck=None,
    head=dict(type="ClsHead", loss=dict(type="CrossEntropyLoss"), topk=(1, 5), cal_acc=True),
)
dataset_type = "SHD"
data_prefix = "data/shd"
pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
common = dict(type=dataset_type, data_prefix=data_prefix, timesteps=timestep, duration_s=1.0)
data = dict(
    samples_per_gpu=32,
    workers_per_gpu=1,
    train=dict(**common, pipeline=pipeline, test_mode=False),
    val=dict(**common, pipeline=pipeline, test_mode=True),
    test=dict(**common, pipeline=pipeline, test_mode=True),
)
evaluation = dict(interval=1, metric="accuracy", metric_options=dict(topk=(1, 5)))
optimizer = dict(type="Adam", lr=1e-3, weight_decay=0)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="CosineAnnealing", min_lr=1e-5, by_epoch=False)
runner = dict(type="EpochBasedRunner", max_epochs=30)
checkpoint_config = dict(interval=1)
log_config = dict(interval=50, hooks=[dict(type="TextLoggerHook")])
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
seed = 0
