# A small spiking YOLO (ST-YOLO's design at an eighth of YOLOv5's width) on DigitsDVS-Det,
# the embedded detection set: one to three moving digits on a 64x64 event camera, each with
# its box at the last instant. The time loop runs inside the layers (IIM: faster on the CPU);
# the neck and head run once, on the last step's features.
timestep = 2
size = 64

model = dict(
    type="Detector",
    backbone=dict(
        type="StYolo",
        timestep=timestep,
        input_channels=2,
        h=size,
        w=size,
        width=0.125,
        depth=0.33,
        spike_func=None,  # BIDL ST-YOLO's spike: Heaviside, the gradient through the membrane
        amode="pick",
        use_inner_loop=True,
    ),
    neck=dict(type="YOLOPAFPN", depth=0.33),
    # a wider head than ST-YOLO's rule (32 here): it runs once, after the time loop, and
    # telling the digits apart is the hard part (boxes alone: mAP50 0.94 after 3 epochs)
    head=dict(
        type="YOLOXHead",
        num_classes=10,
        hidden_channels=96,
        loss=dict(type="YOLOXLoss", reg_weight=5.0),
    ),
    # COCO evaluation: low threshold, every class of an anchor above it (YOLOv5's val)
    test_cfg=dict(score_thr=0.001, nms_thr=0.45, max_per_img=100, multi_label=True),
)

dataset_type = "DigitsDVSDet"
data_prefix = "data/digits_dvs_det"
pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_bboxes", "gt_labels"]),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
clips = dict(
    type=dataset_type,
    data_prefix=data_prefix,
    timesteps=timestep,
    max_objects=8,
    pipeline=pipeline,
    test_mode=True,
)
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(clips, test_mode=False),
    val=clips,
    test=clips,
)
evaluation = dict(interval=9, metric="mAP")  # once, at the end: 25 s a validation

# schedule
optimizer = dict(type="AdamW", lr=2e-3, weight_decay=5e-4)
optimizer_config = dict(grad_clip=dict(max_norm=10.0))
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=2e-5,
    by_epoch=False,
    warmup="linear",
    warmup_iters=100,
    warmup_ratio=0.1,
)
runner = dict(type="EpochBasedRunner", max_epochs=9)

# runtime
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
log_config = dict(interval=50, hooks=[dict(type="TextLoggerHook")])
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
seed = 0
