# DVS128 Gesture: 60 event frames, 128x128 sensor downsampled to 40x40, 11 gestures.
dataset_type = "DVS128Gesture"
data_prefix = "data/dvs_gesture"
train_pipeline = [
    dict(type="RandomCropVideo", size=40, padding=2),
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
        type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline, timesteps=60, size=40
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=60,
        size=40,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=60,
        size=40,
    ),
)
