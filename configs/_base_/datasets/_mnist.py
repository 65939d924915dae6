# MNIST digits spike-encoded by the dataset's encoder (rate coding here).
dataset_type = "MNIST"
data_prefix = "data/mnist"
train_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = train_pipeline
data = dict(
    samples_per_gpu=128,
    workers_per_gpu=1,
    train=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=train_pipeline,
        encoder={"type": "Rate", "timesteps": 8},
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        encoder={"type": "Rate", "timesteps": 8},
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        encoder={"type": "Rate", "timesteps": 8},
    ),
)
