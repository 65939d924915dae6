# FastTextlifplusItout: LIF+ cells (COBE input).
_base_ = ["./../fasttext/fasttext-b16x1-imdb.py"]
model = dict(
    backbone=dict(type="FastTextlifplusItout", neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
)
