# SeqClif5Fc2DmItout on DVS-MNIST (EIM). BIDL's network halves the map six times (a 5x5
# stride-2 conv and five 2x2 pools): the 34x34 N-MNIST frames are centred in 64x64.
_base_ = ["./../clif3fc3dm/clif3fc3dm_itout-b16x1-dvsmnist.py"]
model = dict(backbone=dict(type="SeqClif5Fc2DmItout", h=64, w=64))
train_pipeline = [
    dict(type="CenterCropVideo", crop_size=64),
    dict(type="RandomCropVideo", size=64, padding=2),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="CenterCropVideo", crop_size=64),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline),
)
