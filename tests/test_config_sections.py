"""The shared section parser on each kind of mistake, for data, model and objective sections."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import sys

import ml_collections
import pytest
from absl import flags

from conftest import load_config
from sparse_ae import data, dip, optim
from sparse_ae.train import config_files, validation
from sparse_ae.train.tasks import conv_sae, csc_ae, ctrl, dcea
from sparse_ae.utils import sections

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
SECTIONS = [
        ("data", data.DataConfig, "image_size", "imagesize", "16", "name", None),
        ("model", conv_sae.ModelConfig, "code_dim", "codedim", 2.5, "code_activation", "tanh"),
        ("objective", conv_sae.ObjectiveConfig, "noise_std", "noise_sd", "high", "corruption", "blur"),
        ("model", csc_ae.ModelConfig, "num_atoms", "num_atom", 1.5, "boundary", "reflect"),
        ("model", ctrl.CSCModelConfig, "feature_dim", "feature_dims", 1.5, "output", "relu"),
        ("model", ctrl.ConvModelConfig, "strides", "stride", 2, "norm", "layer"),
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
    config = load_config("configs/ctrl_csc.py")
    config.model.architecture = "conv"  # the CSC fields are then unknown
    with pytest.raises(ValueError, match=r"unknown field config.model.\w+; known fields: .*, norm, init, conv_impl$"):
        ctrl.validate_config(config)
    config.model.architecture = "mlp"
    with pytest.raises(ValueError, match=r"config.model.architecture='mlp' is not one of \('csc', 'conv'\)"):
        ctrl.validate_config(config)


def test_completion_keeps_what_the_file_set_and_fills_the_rest():
    written = ml_collections.ConfigDict(dict(task="conv_sae", model=dict(code_dim=7), optim=dict(lr=1),
                                             code_sparsity=dict()))
    config = config_files.complete(written)
    assert config.model.code_dim == 7 and config.model.widths == conv_sae.ModelConfig().widths
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert sections.parse(config.objective, conv_sae.ObjectiveConfig, "config.objective") == conv_sae.ObjectiveConfig()
    assert sections.parse(config.data, data.DataConfig, "config.data") == data.DataConfig()
    assert (config.train.num_steps, config.mesh.data, config.seed) == (1000, -1, 0)
    assert set(written.model) == {"code_dim"} and "objective" not in written  # the input is not changed
    assert config_files.complete(config).to_dict() == config.to_dict()
    conv = config_files.complete(ml_collections.ConfigDict(dict(task="ctrl", model=dict(architecture="conv"))))
    assert sections.parse(conv.model, ctrl.ConvModelConfig, "config.model") == ctrl.ConvModelConfig()
    with pytest.raises(ValueError, match=r"unknown field config.model.codedim; did you mean config.model.code_dim"):
        config_files.complete(ml_collections.ConfigDict(dict(task="conv_sae", model=dict(codedim=7))))
    with pytest.raises(ValueError, match=r"config.task must name a task module"):
        config_files.complete(ml_collections.ConfigDict(dict(model=dict(code_dim=7))))


def test_evaluator_sections_are_completed_from_their_defaults():
    config = load_config("configs/sc_vae.py:runlocal")
    assert config.patch_clusters.num_clusters == 4 and config.patch_clusters.max_vectors == 20000
    assert "segmentation" in config and config.segmentation.num_groups == 2  # declared, not listed


def test_configs_import_only_ml_collections():
    """A config file is data: it imports ml_collections (and the standard library), never the package."""
    for path in sorted(CONFIGS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "ml_collections" or top in sys.stdlib_module_names, \
                    f"configs/{path.name}:{node.lineno} imports {name}"


def test_command_line_overrides_fields_the_file_left_out():
    argv = ["main", f"--config={CONFIGS / 'csc_ae.py'}:runlocal", "--config.model.power_iters=7",
            "--config.mesh.fsdp_min_size=5", "--config.optim.decay_factor=0.5"]
    flag_values = flags.FlagValues()
    holder = config_files.define_flag("config", "the experiment", flag_values=flag_values, sys_argv=argv)
    flag_values(argv)
    config = holder.value
    assert (config.model.power_iters, config.mesh.fsdp_min_size, config.optim.decay_factor) == (7, 5, 0.5)
    assert (config.model.num_atoms, config.train.num_steps) == (4, 20)  # the file's runlocal values


# dip_denoise is read by sparse_ae.dip, not the training loop.
TASK_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.py") if p.stem != "dip_denoise")


@pytest.mark.parametrize("arg", ["", "runlocal"])
@pytest.mark.parametrize("name", TASK_CONFIGS)
def test_every_config_loads_and_validates(name, arg):
    validation.validate_run(load_config(f"configs/{name}:{arg}" if arg else f"configs/{name}"))


def test_dip_config_loads_with_its_optimizer_completed():
    config = dip.load_config(f"{CONFIGS / 'dip_denoise.py'}:runlocal")
    assert optim.validate_optim(config) == optim.OptimConfig(lr=0.01)
