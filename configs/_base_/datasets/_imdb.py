# IMDB reviews: 500 token ids (vocabulary of 1001), one per timestep.
dataset_type = "imdb"
data_prefix = "data/imdb"
train_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="int64"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = train_pipeline
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=train_pipeline,
        timesteps=500,
        vocab_size=1001,
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=500,
        vocab_size=1001,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=500,
        vocab_size=1001,
    ),
)
