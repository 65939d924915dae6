# SeqClif7Fc1DgItout on DVS128 Gesture (EIM): as BIDL, 16 frames at the sensor's 128x128
# (seven 2x2 pools down to 1x1).
_base_ = ["./../clif3flif2dg/clif3flif2dg_itout-b16x1-dvsgesture.py"]
model = dict(backbone=dict(type="SeqClif7Fc1DgItout", timestep=16, h=128, w=128))
train_pipeline = [
    dict(type="RandomCropVideo", size=128, padding=4),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    train=dict(pipeline=train_pipeline, timesteps=16, size=128),
    val=dict(timesteps=16, size=128),
    test=dict(timesteps=16, size=128),
)
