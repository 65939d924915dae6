# BIDL's ST-YOLO (applications/dvsdetection/st-yolo) with its YOLOv5n spiking backbone
# (YoloDetN) on Prophesee GEN1 (cars, pedestrians): 11 stacked histograms (10 time bins x 2
# polarities of the 50 ms before each step, steps 125 ms apart) at 256x320 (the 240x304 sensor
# padded), boxes at the labelled instant. The Conv-LIF states carry the scene over the 11 steps;
# neck and head run on the last step. Model settings as its config/model/yolodet.yaml (PAFPN
# depth 0.67, YOLOX head, confidence 0.1, NMS 0.45), training as config/general.yaml (AdamW at
# 2e-4 without weight decay, gradient clipping at 1.0, batch 8); BIDL reports val AP 0.41 /
# 0.44 / 0.46 for n / s / x after 200-400 k steps of its streaming + random sampling with
# flips and zooms, which this config's plain random sampling does not have.
timestep = 11
num_classes = 2

model = dict(
    type="Detector",
    backbone=dict(
        type="YoloDetN",
        timestep=timestep,
        input_channels=20,
        h=256,
        w=320,
        spike_func=None,  # BIDL's: Heaviside, the gradient through the membrane
        amode="pick",
        use_inner_loop=False,
    ),
    neck=dict(type="YOLOPAFPN", depth=0.67),
    head=dict(type="YOLOXHead", num_classes=num_classes, loss=dict(type="YOLOXLoss")),
    test_cfg=dict(score_thr=0.1, nms_thr=0.45, max_per_img=100),
)

dataset_type = "Gen1Detection"
data_prefix = "data/gen1"
pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_bboxes", "gt_labels"]),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
gen1 = dict(
    type=dataset_type,
    data_prefix=data_prefix,
    timesteps=timestep,
    bins=10,
    input_size=(256, 320),
    max_objects=64,
    pipeline=pipeline,
)
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=6,
    train=dict(gen1, split="train"),
    val=dict(gen1, split="val"),
    test=dict(gen1, split="test"),
)
evaluation = dict(interval=1, metric="mAP")

# schedule: BIDL's one-cycle schedule (0.5 % warm-up from lr / 25) as a warm-up + cosine
optimizer = dict(type="AdamW", lr=2e-4, weight_decay=0)
optimizer_config = dict(grad_clip=dict(max_norm=1.0))
lr_config = dict(
    policy="CosineAnnealing",
    min_lr=0.0,
    by_epoch=False,
    warmup="linear",
    warmup_iters=2000,
    warmup_ratio=0.04,
)
runner = dict(type="EpochBasedRunner", max_epochs=10)

# runtime
checkpoint_config = dict(interval=1, max_keep_ckpts=3)
log_config = dict(interval=100, hooks=[dict(type="TextLoggerHook")])
dist_params = dict(backend="nccl")
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
seed = 0
