# LUNA16 nodule patches: 8 CT slices of 32x32 as 8 timesteps, 2 classes.
dataset_type = "Luna16Cls"
data_prefix = "data/luna16cls"
train_pipeline = [
    dict(type="RandomCropVideo", size=32, padding=2),
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
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(
        type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline, timesteps=8, size=32
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=8,
        size=32,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=8,
        size=32,
    ),
)
