"""Registries fill themselves: the first lookup imports the modules of their locations."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bidl.registry import BACKBONES, REGISTRIES, Registry, UnknownTypeError

SRC = Path(__file__).resolve().parents[1] / "src" / "bidl"
REGISTRATIONS = ("register_module", "register_spiking_backbone", "register_factory")


def run_fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_fresh_interpreter_builds_a_backbone_from_the_registry_alone():
    out = run_fresh(
        "import sys, json\n"
        "from bidl.registry import BACKBONES\n"
        "before = sorted(m for m in sys.modules if m.startswith('bidl'))\n"
        "count = len(BACKBONES)\n"
        "net = BACKBONES.build(dict(type='SeqClif3Fc3DmItout'))\n"
        "print(json.dumps([before, count, type(net).__name__]))\n"
    )
    before, count, built = json.loads(out)
    assert before == ["bidl", "bidl.registry"]  # importing the registry imports no bidl code
    assert built == "SeqClif3Fc3Dm"
    own = [n for n in BACKBONES.names() if BACKBONES.get(n).__module__.startswith("bidl.")]
    assert count == len(own) and count >= 40  # other tests may register names of their own
    assert {"SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt", "ResNetLifItout", "FastTextIt"} <= set(
        BACKBONES.names()
    )


def test_every_registry_knows_its_entries_on_first_use():
    out = run_fresh(
        "import json\nfrom bidl.registry import REGISTRIES\n"
        "print(json.dumps({k: r.names() for k, r in REGISTRIES.items()}))"
    )
    names = json.loads(out)
    assert {"lif", "lifplus"} <= set(names["neurons"])
    assert {"DigitsDVS", "DvsMnist", "CIFAR10DVS", "imdb"} <= set(names["datasets"])
    assert {"Collect", "ToTensorType", "EventsToFrames", "RandomCropVideo"} <= set(
        names["pipelines"]
    )
    assert "ImageClassifier" in names["classifiers"]
    assert "ClsHead" in names["heads"]


def _registering_files() -> list[Path]:
    """Files under src/bidl that call a registration function or decorator."""
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            func = node.func if isinstance(node, ast.Call) else None
            name = getattr(func, "attr", None) or getattr(func, "id", None)
            if name in REGISTRATIONS:
                found.append(path)
                break
    return found


def test_every_module_that_registers_lies_in_its_registrys_locations():
    locations = {loc for registry in REGISTRIES.values() for loc in registry.locations}
    folders = [SRC.parent.joinpath(*loc.split(".")) for loc in locations]
    files = _registering_files()
    assert len(files) > 20
    outside = [str(p) for p in files if not any(f in p.parents for f in folders)]
    assert outside == []


def test_a_registry_imports_only_the_modules_that_register(tmp_path, monkeypatch):
    package = tmp_path / "plugpkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "gadget.py").write_text(
        "from plugpkg.reg import GADGETS\n\n@GADGETS.register_module()\nclass Gadget:\n    pass\n"
    )
    (package / "broken.py").write_text("raise RuntimeError('never imported')\n")
    (package / "reg.py").write_text(
        "from bidl.registry import Registry\nGADGETS = Registry('gadget', ['plugpkg'])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from plugpkg.reg import GADGETS

    assert "plugpkg.sub.gadget" not in sys.modules
    assert GADGETS.names() == ["Gadget"]  # broken.py mentions no registration
    assert "plugpkg.broken" not in sys.modules
    for name in [m for m in sys.modules if m.startswith("plugpkg")]:
        del sys.modules[name]


def test_a_misspelled_case_suggests_the_case_insensitive_match_first():
    with pytest.raises(UnknownTypeError) as err:
        BACKBONES.get("SeqClif3Fc3DMItout")
    assert str(err.value).startswith(
        "unknown backbone 'SeqClif3Fc3DMItout' (did you mean 'SeqClif3Fc3DmItout', "
    )
    assert "`bidl list` shows the registered names" in str(err.value)


def test_a_location_that_is_not_a_package_is_named():
    registry = Registry("thing", ["bidl.registry"])
    with pytest.raises(ModuleNotFoundError, match="registry location 'bidl.registry'"):
        registry.names()


def test_a_taken_name_names_the_class_that_holds_it():
    registry = Registry("widget")

    class First:
        pass

    class Second:
        pass

    registry.register_module(name="W", module=First)
    with pytest.raises(KeyError, match=r"'W' is already registered in the widget registry \(by "):
        registry.register_module(name="W", module=Second)


def test_import_bidl_is_light_and_every_public_name_resolves():
    out = run_fresh(
        "import sys, json, bidl\n"
        "light = 'torch' not in sys.modules\n"
        "kinds = {n: type(getattr(bidl, n)).__name__ for n in bidl.__all__}\n"
        "print(json.dumps([light, kinds, sorted(set(bidl.__all__) - set(dir(bidl)))]))"
    )
    light, kinds, missing_from_dir = json.loads(out)
    assert light
    assert missing_from_dir == []
    assert kinds["load_config"] == kinds["train_model"] == "function"
    assert kinds["Runtime"] == "type" and kinds["BACKBONES"] == "Registry"
    with pytest.raises(AttributeError, match="module 'bidl' has no attribute 'nothing'"):
        import bidl

        bidl.nothing  # noqa: B018


def test_a_users_spiking_backbone_names_belong_to_the_users_module():
    from bidl.models.backbones import SpikingBackbone, register_spiking_backbone

    @register_spiking_backbone("UserNetItout", "UserNetIt")
    class UserNet(SpikingBackbone):
        pass

    try:
        # the IIM name is a factory made inside bidl; it still says where the class lives
        assert BACKBONES.get("UserNetIt").__module__ == __name__
        assert BACKBONES.get("UserNetIt").__qualname__ == "UserNetIt"
        assert BACKBONES.get("UserNetIt").backbone_class is UserNet
    finally:
        for name in ("UserNet", "UserNetItout", "UserNetIt"):
            BACKBONES._modules.pop(name, None)
