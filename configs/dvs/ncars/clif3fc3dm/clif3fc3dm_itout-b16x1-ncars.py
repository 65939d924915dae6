# SeqClif3Fc3DmItout (three conv-LIF, 512-128 readout) on N-CARS (cars / background): 10 frames of the
# 100x120 sensor downsampled to 50x60.
_base_ = [
    "../../../_base_/models/_cls_head.py",
    "../../../_base_/schedules/_adam_cosine.py",
    "../../../_base_/_runtime.py",
]
timestep = 10
evaluation = dict(metric_options=dict(topk=(1,)))  # two classes: top-5 would always be 100 %
model = dict(
    head=dict(topk=(1,)),
    backbone=dict(
        type="SeqClif3Fc3DmItout",
        timestep=timestep,
        input_channels=2,
        h=50,
        w=60,
        nclass=2,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
    ),
)
dataset_type = "NCars"
data_prefix = "data/ncars"
train_pipeline = [
    dict(type="RandomCropVideo", size=(50, 60), padding=2),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
common = dict(type=dataset_type, data_prefix=data_prefix, timesteps=timestep, size=(50, 60))
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(**common, pipeline=train_pipeline, test_mode=False),
    val=dict(**common, pipeline=test_pipeline, test_mode=True),
    test=dict(**common, pipeline=test_pipeline, test_mode=True),
)
runner = dict(max_epochs=20)
