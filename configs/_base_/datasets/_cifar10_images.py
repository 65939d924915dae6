# CIFAR-10 as image files (train/<class>/*.png, test/<class>/*.png): 32 x 32 RGB, 10 classes,
# direct-encoded over 4 timesteps (the same normalised image at every step).
dataset_type = "ImageFolder"
data_prefix = "data/cifar10"
timestep = 4
normalize = dict(type="NormalizeVideo", mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7])
train_pipeline = [
    dict(type="RandomCropVideo", size=32, padding=4),
    dict(type="RandomFlipVideo", flip_prob=0.5, direction="horizontal"),
    normalize,
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    normalize,
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
images = dict(type=dataset_type, data_prefix=data_prefix, timesteps=timestep)
data = dict(
    samples_per_gpu=128,
    workers_per_gpu=4,
    train=dict(images, pipeline=train_pipeline),
    val=dict(images, pipeline=test_pipeline, test_mode=True),
    test=dict(images, pipeline=test_pipeline, test_mode=True),
)
