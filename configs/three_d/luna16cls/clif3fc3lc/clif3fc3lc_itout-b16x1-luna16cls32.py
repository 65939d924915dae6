# SeqClif3Fc3LcItout on Luna16Cls32 (the dataset's 32x32-slice variant).
_base_ = ["./clif3fc3lc_itout-b16x1-luna16cls.py"]
dataset_type = "Luna16Cls32"
data = dict(
    train=dict(type=dataset_type), val=dict(type=dataset_type), test=dict(type=dataset_type)
)
