"""A command's defaults are its library's: each setting in configs/<command>.yaml equals the
default of the library argument or settings field it maps onto, so a notebook calling the
library gets what the command line gets. Fails on the first drift, naming both."""

import inspect
from dataclasses import MISSING, fields
from importlib import resources

import pytest
import yaml

from decomposer.pipeline import decompose_folder
from decomposer.task import RelaySettings
from policies.train import train
from sim.collect import collect
from sim.evaluate import EvalSettings
from sim.pipeline import DemoSettings

RELAY_KEYS = {"relay": "rule", "relay_eps": "eps", "relay_delta": "delta",
              "min_interval_s": "min_interval_s", "gamma": "gamma"}  # fmt: skip


def config(name):
    return yaml.safe_load(resources.files("configs").joinpath(f"{name}.yaml").read_text())


def signature_defaults(fn):
    params = inspect.signature(fn).parameters.items()
    return {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}


def field_defaults(cls):
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def same(a, b):
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    if a in ({}, None) and b in ({}, None):  # an empty mapping and None both mean "none given"
        return True
    return a == b


@pytest.mark.parametrize(
    "name,library,renamed",
    [
        ("train", signature_defaults(train), {"train_steps": "steps", "steps": None}),
        ("eval", field_defaults(EvalSettings), {"relay": None}),
        ("demo", field_defaults(DemoSettings), {}),
        ("collect", signature_defaults(collect), {}),
        ("decompose", signature_defaults(decompose_folder), {}),
    ],
)
def test_command_defaults_are_the_librarys(name, library, renamed):
    checked = 0
    for key, value in config(name).items():
        target = renamed.get(key, key)
        if target in library:
            assert same(value, library[target]), (
                f"configs/{name}.yaml {key}: {value!r}, library default {library[target]!r}"
            )
            checked += 1
    assert checked >= 5  # the mapping found the settings


@pytest.mark.parametrize("name", ["eval", "deploy"])
def test_relay_defaults_are_relay_settings(name):
    cfg, defaults = config(name), field_defaults(RelaySettings)
    for key, field_name in RELAY_KEYS.items():
        assert cfg[key] == defaults[field_name], f"configs/{name}.yaml {key}"


def test_eval_scene_defaults_are_the_unchanged_scene():
    from sim.scene import SceneVariant

    cfg, defaults = config("eval"), field_defaults(SceneVariant)
    assert same(cfg["camera_shift"], defaults["camera_shift"])
    assert cfg["light_scale"] == defaults["light_scale"]
