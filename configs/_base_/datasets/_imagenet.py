# ImageNet-1k as JPEG files (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG): random resized crops of
# 224 x 224 and flips in training, a 224 centre crop of the image resized to height 256 in
# validation; direct-encoded over 4 timesteps.
dataset_type = "ImageFolder"
data_prefix = "data/imagenet"
timestep = 4
normalize = dict(type="NormalizeVideo", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
train_pipeline = [
    dict(type="RandomResizedCropVideo", size=224),
    dict(type="RandomFlipVideo", flip_prob=0.5, direction="horizontal"),
    normalize,
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="ResizeVideo", size=(256, -1)),
    dict(type="CenterCropVideo", crop_size=224),
    normalize,
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
images = dict(type=dataset_type, data_prefix=data_prefix, timesteps=timestep)
data = dict(
    samples_per_gpu=64,
    workers_per_gpu=8,
    train=dict(images, pipeline=train_pipeline),
    val=dict(images, pipeline=test_pipeline, test_mode=True),
    test=dict(images, pipeline=test_pipeline, test_mode=True),
)
