import re

import pytest

from bidl.config import find_config, list_configs, load_config
from bidl.registry import BidlError

MAIN = "clif3fc3dm_itout-b16x1-digitsdvs"


def test_config_found_by_name_alone():
    path = find_config(MAIN)
    assert path.name == f"{MAIN}.py"
    assert path.parent.parts[-3:] == ("dvs", "digits_dvs", "clif3fc3dm")


def test_config_found_by_path(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("model = dict(type='ImageClassifier')\ndata = dict(samples_per_gpu=2)\n")
    cfg = load_config(str(path))
    assert cfg.data.samples_per_gpu == 2


def test_missing_config_name_suggests_close_names():
    with pytest.raises(BidlError) as err:
        find_config("clif3fc3dm_itout-b16x1-digitsdv")
    message = str(err.value)
    assert message.startswith("no config named 'clif3fc3dm_itout-b16x1-digitsdv'")
    assert f"did you mean '{MAIN}'" in message
    assert "bidl list configs" in message


def test_cfg_options_override_nested_keys():
    cfg = load_config(MAIN, {"runner.max_epochs": 3, "data.samples_per_gpu": 4})
    assert cfg.runner.max_epochs == 3
    assert cfg.data.samples_per_gpu == 4


def test_main_config_has_bidl_sections():
    cfg = load_config(MAIN)
    for key in (
        "model",
        "data",
        "optimizer",
        "optimizer_config",
        "lr_config",
        "runner",
        "checkpoint_config",
        "log_config",
        "dist_params",
        "log_level",
        "load_from",
        "resume_from",
    ):
        assert key in cfg, key
    assert cfg.model.backbone.type == "SeqClif3Fc3DmItout"


def test_every_config_is_listed_and_named_by_bidl_rules():
    configs = list_configs()
    assert MAIN in configs
    for name, path in configs.items():
        # <model>[-<variant>...]-<batch>x<workers>-...: BIDL's ResNet names put the mode
        # first (resnetlif18-itout-b8x1-cifar10dvs), so the batch part is the first b<N>x<M>
        parts = name.split("-")
        assert any(re.fullmatch(r"b\d+x\d+", part) for part in parts[1:]), name
        # the model folder names the family the model name starts with (clif3fc3dm/
        # clif3fc3dm_itout, spikformer/spikformer_2_256, st_yolo/st_yolov5s)
        assert parts[0].startswith(path.parent.name), name


def test_config_missing_a_section_is_reported(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("model = dict(type='ImageClassifier')\n")
    with pytest.raises(BidlError, match="has no 'data' section"):
        load_config(str(path))


def test_config_with_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text("model = dict(type='ImageClassifier'\n")
    with pytest.raises(BidlError, match="could not read config .*typo.py"):
        load_config(str(path))
