# bAbI question answering (task 1, English, 1k): story then question as 100 token ids,
# the answer word as the class.
dataset_type = "BabiQa"
data_prefix = "data/babi"
train_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="int64"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = train_pipeline
data = dict(
    samples_per_gpu=32,
    workers_per_gpu=1,
    train=dict(
        type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline, task=1, timesteps=100
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        task=1,
        timesteps=100,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        task=1,
        timesteps=100,
    ),
)
