# Runtime settings shared by the model-zoo configs (BIDL's runtime part): checkpoints every
# epoch, text logs, and no weights to start from.
checkpoint_config = dict(interval=1)
log_config = dict(interval=50, hooks=[dict(type="TextLoggerHook")])
evaluation = dict(interval=1, metric="accuracy", metric_options=dict(topk=(1, 5)))
dist_params = dict(backend="nccl")
log_level = "INFO"
load_from = None
resume_from = None
workflow = [("train", 1)]
seed = 0
