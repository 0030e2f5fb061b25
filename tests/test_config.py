"""Config parsing and validation: every kind of bad input gets an error naming the field."""

from __future__ import annotations

import ml_collections
import pytest

from sparse_ae import config as config_lib
from sparse_ae import optim
from sparse_ae.train import loop, task as task_lib, validation


def test_parse_arg_types_and_flags():
    args = config_lib.parse_arg("dataset=mnist,runlocal,steps=7,lr=0.5", runlocal=False, dataset="digits",
                                steps=0, lr=1e-3)
    assert args.to_dict() == {"dataset": "mnist", "runlocal": True, "steps": 7, "lr": 0.5}
    assert config_lib.parse_arg(None, runlocal=False).runlocal is False
    free = config_lib.parse_arg("a=3,b=2.5,c=true,d=x,e")
    assert free.to_dict() == {"a": 3, "b": 2.5, "c": True, "d": "x", "e": True}


@pytest.mark.parametrize("arg, message", [
        ("datset=x", "unknown config argument 'datset'"),
        ("steps=many", "steps='many': expected int"),
        ("runlocal=maybe", "expected true or false"),
        ("dataset", "needs a value"),
])
def test_parse_arg_errors(arg, message):
    with pytest.raises(ValueError, match=message):
        config_lib.parse_arg(arg, runlocal=False, dataset="digits", steps=0)


def test_toy_configs_validate(tiny_config):
    for arg in ("", "runlocal"):
        validation.validate_run(tiny_config(arg), num_devices=8, process_count=2)


@pytest.mark.parametrize("key, value, error, message", [
        ("train.num_step", 3, ValueError, r"unknown field config.train.num_step; did you mean config.train.num_steps"),
        ("optim.learning_rate", 0.1, ValueError, r"config.optim.learning_rate"),
        ("mesh.dat", 2, ValueError, r"config.mesh.dat"),
        ("data.imagesize", 8, ValueError, r"config.data.imagesize"),
        ("task", "no_such_task", ValueError, r"config.task='no_such_task' is not a task module.*csc_ae"),
        ("data.name", "no_such_data", ValueError, r"config.data.name='no_such_data'"),
        ("eval.evaluators", ("reconstruction", "nope"), ValueError, r"config.eval.evaluators: unknown evaluator 'nope'"),
        ("optim.name", "adagrad", ValueError, r"config.optim.name='adagrad'"),
        ("optim.schedule", "exponential", ValueError, r"config.optim.schedule='exponential'"),
        ("optim.decay_factor", 1.5, ValueError, r"config.optim.decay_factor=1.5 must be in \(0, 1\]"),
        ("optim.lr", -1.0, ValueError, r"config.optim.lr=-1.0 must be > 0"),
        ("optim.warmup_steps", 50, ValueError, r"config.optim.warmup_steps=50 must be < config.train.num_steps"),
        ("train.num_steps", 0, ValueError, r"config.train.num_steps=0 must be >= 1"),
        ("eval.splits", (), ValueError, r"config.eval.splits"),
        ("mesh.axis_type", "manual", ValueError, r"config.mesh.axis_type='manual'"),
        ("mesh.fsdp_axes", "data,batch", ValueError, r"config.mesh.fsdp_axes='data,batch'"),
        ("mesh.fsdp_min_size", -1, ValueError, r"config.mesh.fsdp_min_size=-1 must be >= 0"),
        ("model.kernel_size", 0, ValueError, r"config.model.kernel_size=0"),
        ("model.boundary", "reflect", ValueError, r"config.model.boundary='reflect'"),
])
def test_bad_field_is_named(tiny_config, key, value, error, message):
    config = tiny_config()
    config.update_from_flattened_dict({key: value})
    with pytest.raises(error, match=message):
        validation.validate_run(config, num_devices=1)


def test_ill_typed_field_is_named(tiny_config):
    config = tiny_config()
    config.train.unlock()
    del config.train["num_steps"]
    config.train.num_steps = "many"  # a str where the default is an int
    with pytest.raises(TypeError, match=r"config.train.num_steps='many' has type str; expected int"):
        validation.validate_run(config)
    config = tiny_config()
    config.optim.lr = 1  # an int where a float is expected is fine
    validation.validate_run(config)


def test_batch_must_divide_over_devices_and_processes(tiny_config):
    config = tiny_config(**{"data.batch_size": 12})
    with pytest.raises(ValueError, match=r"config.data.batch_size=12 is not divisible by the 8 devices"):
        validation.validate_run(config, num_devices=8)
    config = tiny_config(**{"eval.batch_size": 6})
    with pytest.raises(ValueError, match=r"config.eval.batch_size=6 is not divisible by the 4 devices"):
        validation.validate_run(config, num_devices=4)
    config = tiny_config(**{"data.batch_size": 9, "mesh.data": 1})
    with pytest.raises(ValueError, match=r"config.data.batch_size=9 is not divisible by the 2 processes"):
        validation.validate_run(config, num_devices=1, process_count=2)


def test_mesh_must_match_devices(tiny_config):
    with pytest.raises(ValueError, match=r"config.mesh.data=4 x config.mesh.model=1 must equal the 8 devices"):
        validation.validate_run(tiny_config(**{"mesh.data": 4}), num_devices=8)
    with pytest.raises(ValueError, match=r"config.mesh.model=3 must be >= 1 and divide the 8 devices"):
        validation.validate_run(tiny_config(**{"mesh.model": 3}), num_devices=8)


def test_unwritable_workdir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match=r"--workdir=.*file/run.*cannot be created or written"):
        loop.check_workdir(blocker / "run")


def test_get_task_builds_the_named_task(tiny_config):
    assert "csc_ae" in task_lib.available_tasks()
    assert isinstance(task_lib.get_task(tiny_config()), task_lib.Task)


def test_schedules():
    base = dict(lr=1.0, warmup_steps=10)
    constant = optim.make_schedule(optim.optim_config(**base), 100)
    cosine = optim.make_schedule(optim.optim_config(schedule="cosine", **base), 100)
    linear = optim.make_schedule(optim.optim_config(schedule="linear", **base), 100)
    assert [float(constant(s)) for s in (0, 5, 10, 99)] == pytest.approx([0.0, 0.5, 1.0, 1.0])
    assert [float(linear(s)) for s in (10, 55, 100)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)
    assert [float(cosine(s)) for s in (10, 55, 100)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)


def test_step_schedule_is_steplr_after_warmup():
    """``schedule="step"`` as PyTorch's StepLR(step_size=K, gamma): constant for K steps, then times gamma."""
    step = optim.make_schedule(optim.optim_config(schedule="step", lr=1.0, warmup_steps=10, decay_every=20,
                                                  decay_factor=0.8), 100)
    assert [float(step(s)) for s in (5, 10, 29, 30, 49, 50, 90)] == pytest.approx(
            [0.5, 1.0, 1.0, 0.8, 0.8, 0.64, 0.8**4])
    with pytest.raises(ValueError, match=r"config.optim.decay_every=0 must be >= 1 with schedule='step'"):
        optim.make_optimizer(optim.optim_config(schedule="step"), 100)


def test_grad_clip_bounds_the_update():
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

    tx = optim.make_optimizer(optim.optim_config(name="sgd", b1=0.0, lr=1.0, grad_clip=1.0), 10)
    params = {"w": jnp.zeros(4)}
    updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
    assert float(jnp.linalg.norm(updates["w"])) == pytest.approx(1.0)


@pytest.mark.parametrize("override, message", [
        ("--config.train.num_step=3", "num_step"),
        ("--config.optim.lr=fast", "lr"),
])
def test_command_line_override_errors(run_python, tmp_path, override, message):
    result = run_python(["-m", "sparse_ae.main", "--config=configs/csc_ae.py:runlocal",
                         f"--workdir={tmp_path / 'run'}", override], timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "run").exists()


def test_config_validate_needs_no_higher_layer(tiny_config):
    config = tiny_config(**{"eval.evaluators": ("nope",)})
    config_lib.validate(config)  # evaluator names are checked by the train layer
    with pytest.raises(ValueError, match="unknown evaluator 'nope'"):
        validation.validate_run(config)


def test_base_config_needs_a_task():
    config = config_lib.base_config()
    assert isinstance(config.model, ml_collections.ConfigDict)
    with pytest.raises(ValueError, match="config.task must name a task module"):
        validation.validate_run(config)
