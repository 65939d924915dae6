# SeqClifplus3Fc3LcItout: LIF+ cells (COBE input).
_base_ = ["./../clif3fc3lc/clif3fc3lc_itout-b16x1-luna16cls.py"]
evaluation = dict(metric_options=dict(topk=(1,)))  # two classes: top-5 would always be 100 %
model = dict(
    backbone=dict(type="SeqClifplus3Fc3LcItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
)
