# 20BN-Jester: RGB clips of 112x112, 27 gestures; no flips (left/right gestures).
dataset_type = "Jester20bn"
data_prefix = "data/jester"
num_frames = 16
train_pipeline = [
    dict(type="LoadFramesInFolder", num_frames=num_frames, size=112),
    dict(type="RandomCropVideo", size=112, padding=8),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="LoadFramesInFolder", num_frames=num_frames, size=112, test_mode=True),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    samples_per_gpu=20,
    workers_per_gpu=4,
    train=dict(type=dataset_type, data_prefix=data_prefix, pipeline=train_pipeline),
    val=dict(type=dataset_type, data_prefix=data_prefix, pipeline=test_pipeline, test_mode=True),
    test=dict(type=dataset_type, data_prefix=data_prefix, pipeline=test_pipeline, test_mode=True),
)
