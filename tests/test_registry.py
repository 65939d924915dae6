import pytest

from bidl.registry import BACKBONES, BidlError, Registry, UnknownTypeError, build


class Widget:
    def __init__(self, size=1, colour="red"):
        self.size, self.colour = size, colour


def make_registry():
    registry = Registry("widget")
    registry.register_module(module=Widget)
    return registry


def test_build_passes_keys_and_default_args():
    widget = build(dict(type="Widget", size=3), make_registry(), colour="blue")
    assert (widget.size, widget.colour) == (3, "blue")


def test_config_keys_override_default_args():
    widget = build(dict(type="Widget", colour="green"), make_registry(), colour="blue")
    assert widget.colour == "green"


def test_unknown_name_names_registry_and_closest_match():
    with pytest.raises(UnknownTypeError) as err:
        build(dict(type="Widgte"), make_registry())
    assert str(err.value).startswith("unknown widget 'Widgte' (did you mean 'Widget'?)")


def test_unknown_backbone_suggests_the_registered_name():
    with pytest.raises(UnknownTypeError, match=r"did you mean 'SeqClif3Fc3DmItout'"):
        BACKBONES.get("SeqClif3Fc3DmItoutt")


def test_aliases_register_the_same_class():
    registry = Registry("widget")
    registry.register_module(name=["Gadget", "Gizmo"], module=Widget)
    assert registry.get("Gadget") is registry.get("Gizmo") is Widget


def test_registering_a_taken_name_fails_unless_forced():
    registry = make_registry()

    class Other:
        pass

    with pytest.raises(KeyError, match="already registered"):
        registry.register_module(name="Widget", module=Other)
    registry.register_module(name="Widget", module=Other, force=True)
    assert registry.get("Widget") is Other


def test_missing_type_key_is_reported():
    with pytest.raises(BidlError, match="needs a 'type' key"):
        build(dict(size=2), make_registry())


def test_unexpected_keyword_names_the_type():
    with pytest.raises(BidlError, match=r"widget 'Widget': .*weight"):
        build(dict(type="Widget", weight=2), make_registry())
