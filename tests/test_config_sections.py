"""The shared section parser on each kind of mistake, for data, model and objective sections."""

from __future__ import annotations

import dataclasses
import pathlib

import ml_collections
import pytest

from sparse_ae import config as config_lib
from sparse_ae import data
from sparse_ae.train import validation
from sparse_ae.train.tasks import conv_sae, csc_ae, ctrl, dcea
from sparse_ae.utils import sections

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
SECTIONS = [
        ("data", data.DataConfig, "image_size", "imagesize", "16", "name", None),
        ("model", conv_sae.ModelConfig, "code_dim", "codedim", 2.5, "code_activation", "tanh"),
        ("objective", conv_sae.ObjectiveConfig, "noise_std", "noise_sd", "high", "corruption", "blur"),
        ("model", csc_ae.ModelConfig, "num_atoms", "num_atom", 1.5, "boundary", "reflect"),
        ("model", ctrl.CSCModelConfig, "feature_dim", "feature_dims", 1.5, "output", "relu"),
        ("model", ctrl.ConvModelConfig, "strides", "stride", 2, "norm", "batch"),
        ("objective", ctrl.ObjectiveConfig, "eps_sq", "epssq", "0.5", "update_rule", "sequential"),
        ("model", dcea.ModelConfig, "peak", "peek", "4", "objective", "mse"),
]


@pytest.mark.parametrize("section, cls, field, typo, wrong, choice, bad_choice", SECTIONS)
def test_each_mistake_names_the_field(section, cls, field, typo, wrong, choice, bad_choice):
    where = f"config.{section}"
    with pytest.raises(ValueError, match=rf"unknown field {where}.{typo}; did you mean {where}.{field}\?"):
        sections.parse({typo: 1}, cls, where)
    with pytest.raises(TypeError, match=rf"{where}.{field}={wrong!r} has type {type(wrong).__name__}; expected"):
        sections.parse({field: wrong}, cls, where)
    if bad_choice is not None:
        with pytest.raises(ValueError, match=rf"{where}.{choice}='{bad_choice}' is not one of"):
            sections.parse({choice: bad_choice}, cls, where)


def test_missing_required_field_and_section():
    @dataclasses.dataclass(frozen=True)
    class Needs:
        size: int
        rate: float = 0.5

    assert sections.parse({"size": 3, "rate": 1}, Needs, "config.x") == Needs(3, 1.0)
    with pytest.raises(ValueError, match=r"config.x.size is missing"):
        sections.parse({}, Needs, "config.x")
    with pytest.raises(ValueError, match=r"config.objective is missing"):
        sections.parse_section(ml_collections.ConfigDict(), "objective", conv_sae.ObjectiveConfig)
    partial = ml_collections.ConfigDict({"objective": {"corruption": "none", "noise_std": 0.1}})
    with pytest.raises(ValueError, match=r"missing field\(s\) config.objective.mask_rate"):
        sections.parse_section(partial, "objective", conv_sae.ObjectiveConfig)


def test_ctrl_model_section_follows_its_architecture():
    config = config_lib.load_config_file("ctrl_csc.py", root=CONFIGS)
    config.model.architecture = "conv"  # the CSC fields are then unknown
    with pytest.raises(ValueError, match=r"unknown field config.model.\w+; known fields: .*, output, norm$"):
        ctrl.validate_config(config)
    config.model.architecture = "mlp"
    with pytest.raises(ValueError, match=r"config.model.architecture='mlp' is not one of \('csc', 'conv'\)"):
        ctrl.validate_config(config)


def test_defaults_round_trip():
    assert sections.parse(conv_sae.model_config(), conv_sae.ModelConfig, "config.model") == conv_sae.ModelConfig()
    assert sections.parse(dcea.model_config(), dcea.ModelConfig, "config.model") == dcea.ModelConfig()
    for architecture, cls in ctrl.MODEL_CONFIGS.items():
        assert sections.parse(ctrl.model_config(architecture), cls, "config.model") == cls()
    assert sections.parse(data.default_config(), data.DataConfig, "config.data") == data.DataConfig()


# dip_denoise is read by sparse_ae.dip, not the training loop; sparse_gan's evaluator needs a
# trained classifier folder, so only its own sections are checked.
TASK_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.py") if p.stem != "dip_denoise")


@pytest.mark.parametrize("arg", ["", "runlocal"])
@pytest.mark.parametrize("name", TASK_CONFIGS)
def test_every_config_loads_and_validates(name, arg):
    config = config_lib.load_config_file(f"{name}:{arg}" if arg else name, root=CONFIGS)
    if name == "sparse_gan.py":
        config_lib.validate(config)
    else:
        validation.validate_run(config)
