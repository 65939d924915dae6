"""Config mistakes (a value of the wrong type, an unknown key in a known section, a misspelled
``type``) end in one ``BidlError`` at load time whose message names the full key path."""

from __future__ import annotations

import pytest
from conftest import TINY_CONFIG, write_tiny_config

from bidl.config import load_config
from bidl.engine.apis import train_model
from bidl.registry import DATASETS, BidlError, UnknownTypeError, build

# (override, key path the message must name, what the message must say is expected)
MISTAKES = [
    ({"optimizer.lr": "fast"}, "optimizer.lr", "expected a number"),
    ({"optimizer.nesterov": 1}, "optimizer.nesterov", "expected True or False"),
    ({"optimizer.lrr": 0.1}, "optimizer.lrr", "did you mean 'lr'"),
    ({"optimizer.type": "Adma"}, "optimizer.type", "'Adam'"),
    ({"data.samples_per_gpu": "8"}, "data.samples_per_gpu", "expected a positive int"),
    ({"data.workers_per_gpu": -1}, "data.workers_per_gpu", "expected an int >= 0"),
    ({"data.sample_per_gpu": 8}, "data.sample_per_gpu", "did you mean data.samples_per_gpu"),
    ({"runner.max_epochs": 2.5}, "runner.max_epochs", "expected a positive int"),
    ({"runner.max_epoch": 2}, "runner.max_epoch", "did you mean runner.max_epochs"),
    ({"optimizer_config.grad_clipp": None}, "optimizer_config.grad_clipp", "grad_clip"),
    (
        {"optimizer_config.grad_clip.max_nrom": 1.0},
        "optimizer_config.grad_clip.max_nrom",
        "max_norm",
    ),
    (
        {"optimizer_config.skip_nonfinite": "yes"},
        "optimizer_config.skip_nonfinite",
        "True or False",
    ),
    ({"lr_config.warmup_iters": "3"}, "lr_config.warmup_iters", "expected an int >= 0"),
    ({"lr_config.gamma": 0.5}, "lr_config.gamma", "for policy 'CosineAnnealing'"),
    ({"checkpoint_config.intervall": 1}, "checkpoint_config.intervall", "interval"),
    ({"log_config.interval": 0}, "log_config.interval", "expected a positive int"),
    ({"evaluation.metric_options.topk": "1"}, "evaluation.metric_options.topk", "a list"),
    ({"seed": "0"}, "seed", "expected an int"),
    ({"fp16.dtype": "half"}, "fp16.dtype", "'float16' or 'bfloat16'"),
    ({"model.backbone.type": "SeqClif3Fc3DmItot"}, "model.backbone.type", "did you mean"),
    ({"model.backbone.timestepp": 4}, "model.backbone.timestepp", "did you mean 'timestep'"),
    ({"model.head.loss.type": "CrossEntropyLos"}, "model.head.loss.type", "CrossEntropyLoss"),
    ({"model.head.topkk": 1}, "model.head.topkk", "it takes"),
    ({"model.type": "ImageClasifier"}, "model.type", "ImageClassifier"),
    ({"data.train.type": "TinyBlink"}, "data.train.type", "TinyBlinks"),
    # TinyBlinks takes **kwargs and passes them on to BaseDataset, whose keys close the set
    ({"data.val.data_prefx": "x"}, "data.val.data_prefx", "data_prefix"),
]


@pytest.mark.parametrize(("options", "path", "expected"), MISTAKES, ids=[m[1] for m in MISTAKES])
def test_config_mistake_names_its_key_path(tiny_config, options, path, expected):
    with pytest.raises(BidlError) as err:
        load_config(tiny_config, options)
    message = str(err.value)
    assert f"{path}:" in message, message
    assert expected in message, message
    assert str(tiny_config) in message  # and the config file


def test_misspelled_type_stays_an_unknown_type_error(tiny_config):
    with pytest.raises(UnknownTypeError, match=r"model\.backbone\.type: unknown backbone"):
        load_config(tiny_config, {"model.backbone.type": "SeqClif3Fc3DmItot"})


def test_unknown_pipeline_key_names_the_step(tmp_path):
    path = write_tiny_config(tmp_path)
    text = path.read_text().replace("size=16, padding=2", "size=16, paddin=2")
    path.write_text(text)
    with pytest.raises(
        BidlError, match=r"data\.train\.pipeline\[0\]\.paddin: unknown key .*padding"
    ):
        load_config(path)


def test_wrong_value_in_a_config_file_is_named_too(tmp_path):
    path = tmp_path / "bad-b8x0-blinks.py"
    path.write_text(TINY_CONFIG.format(workers=0).replace("max_epochs=3", "max_epochs='3'"))
    with pytest.raises(BidlError, match=r"runner\.max_epochs: expected a positive int, got str"):
        load_config(path)


def test_training_stops_before_any_work(tiny_config, tmp_path):
    work_dir = tmp_path / "w"
    with pytest.raises(BidlError, match=r"data\.samples_per_gpu: expected a positive int"):
        train_model(tiny_config, work_dir=str(work_dir), cfg_options={"data.samples_per_gpu": "8"})
    assert not work_dir.exists()


def test_keys_bidl_reads_are_accepted(tiny_config):
    options = {
        "runner.compile": False,
        "optimizer_config.skip_nonfinite": True,
        "optimizer_config.grad_clip": {"max_norm": 1.0, "norm_type": 2},
        "checkpoint_config.max_keep_ckpts": 2,
        "evaluation.metric_options.topk": [1],
        "dist_params": {"backend": "gloo"},
        "fp16": {"dtype": "bfloat16"},
        "deterministic": True,
        "optimizer.nesterov": True,
        "model.backbone.timestep": 4,
    }
    cfg = load_config(tiny_config, options)
    assert cfg.checkpoint_config.max_keep_ckpts == 2


def test_build_turns_a_base_class_keyword_error_into_a_bidl_error():
    # the load-time check is bypassed here: the build itself must still name the keys
    with pytest.raises(
        BidlError, match=r"dataset 'TinyBlinks': .*data_prefx.*it takes .*data_prefix"
    ):
        build(dict(type="TinyBlinks", data_prefx="x"), DATASETS)
