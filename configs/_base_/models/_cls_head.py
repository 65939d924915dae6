# The classifier around a backbone: cross entropy, top-1/5 accuracy (BIDL's ClsHead).
model = dict(
    type="ImageClassifier",
    neck=None,
    head=dict(
        type="ClsHead",
        loss=dict(type="CrossEntropyLoss", loss_weight=1.0),
        topk=(1, 5),
        cal_acc=True,
    ),
)
