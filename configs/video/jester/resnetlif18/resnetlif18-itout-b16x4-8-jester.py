# ResNet-LIF-18 on 20BN-Jester with 8 frames per clip (EIM).
_base_ = ["./resnetlif18-itout-b20x4-16-jester.py"]
num_frames = 8
model = dict(backbone=dict(timestep=num_frames))
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
    samples_per_gpu=16,
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline),
)
