# DVS-MNIST (N-MNIST): 20 event frames of the 34x34 sensor; no flips (digits).
dataset_type = "DvsMnist"
data_prefix = "data/dvs_mnist"
train_pipeline = [
    dict(type="RandomCropVideo", size=34, padding=2),
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
    train=dict(type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline, timesteps=20),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=20,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        pipeline=test_pipeline,
        test_mode=True,
        timesteps=20,
    ),
)
