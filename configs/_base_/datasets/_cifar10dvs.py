# CIFAR10-DVS: 10 event frames of 128x128, 10 classes.
dataset_type = "CIFAR10DVS"
data_prefix = "data/cifar10dvs"
train_pipeline = [
    dict(type="RandomCropVideo", size=128, padding=8),
    dict(type="RandomFlipVideo", flip_prob=0.5, direction="horizontal"),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=1,
    train=dict(type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline, timesteps=10),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=10,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=10,
    ),
)
