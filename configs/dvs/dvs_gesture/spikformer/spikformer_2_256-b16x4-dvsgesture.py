# Spikformer-2-256 on DVS128 Gesture, T=16, full 128 x 128 frames (the paper's Table 4:
# 98.3 % top-1); the recipe of the CIFAR10-DVS config, 200 epochs.
_base_ = ["../../cifar10dvs/spikformer/spikformer_2_256-b16x4-cifar10dvs.py"]
model = dict(backbone=dict(nclass=11))
dataset_type = "DVS128Gesture"
data_prefix = "data/dvs_gesture"
train_pipeline = [
    dict(type="RandomCropVideo", size=128, padding=8),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
frames = dict(type=dataset_type, data_prefix=data_prefix, timesteps=16, frame_by="count", size=128)
data = dict(
    train=dict(frames, pipeline=train_pipeline),
    val=dict(frames, test_mode=True),
    test=dict(frames, test_mode=True),
)
runner = dict(type="EpochBasedRunner", max_epochs=200)
