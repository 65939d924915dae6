# ES-ImageNet: 8 event frames of 224x224, 1000 classes.
dataset_type = "ESImagenet"
data_prefix = "data/es_imagenet"
train_pipeline = [
    dict(type="RandomCropVideo", size=224, padding=14),
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
    workers_per_gpu=4,
    train=dict(type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline),
    val=dict(type=dataset_type, data_prefix=data_prefix, pipeline=test_pipeline, test_mode=True),
    test=dict(type=dataset_type, data_prefix=data_prefix, pipeline=test_pipeline, test_mode=True),
)
