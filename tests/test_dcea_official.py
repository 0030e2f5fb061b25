"""The DCEA authors' published networks: loading, their outputs, the import tool, bad files."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from sparse_ae import data as data_lib
from sparse_ae import evaluate
from sparse_ae.models import dcea, dcea_official
from sparse_ae.tools import import_dcea
from sparse_ae.train import config_files
from sparse_ae.train.state import split_module
from sparse_ae.train.tasks import dcea as dcea_task

NETWORKS = [f"{variant}_peak{peak}" for variant in ("tied", "untied") for peak in (1, 2, 4)]
# The untied network at peak 4 (where the residual ELU matters most) in the fast loop; the others slow.
CHECKED = [name if name == "untied_peak4" else pytest.param(name, marks=pytest.mark.slow) for name in NETWORKS]


@pytest.fixture(name="official", scope="module")
def official_fixture():
    """The folder of the authors' networks and reference outputs (skips, saying where, if absent)."""
    try:
        return data_lib.shared_path("dcea_official")
    except ValueError as err:
        pytest.skip(str(err))


@pytest.mark.parametrize("name", CHECKED)
def test_official_network_reproduces_the_authors_outputs(official, name):
    fields, params = dcea_official.load(official / f"{name}.npz")
    cfg = dcea_task.dcea_config({**fields, "shift_average": True})
    graphdef, _, rest = split_module(dcea.DCEA(cfg, rngs=nnx.Rngs(0)))
    natural = jax.jit(lambda p, y: nnx.merge(graphdef, p, rest)(y).natural)
    with np.load(official / f"reference_{name}.npz") as reference:
        for image in ("01", "02"):
            counts = reference[f"{image}/counts"][0].astype(np.float32)[None, :, :, None]
            eta = np.asarray(natural(params, jnp.asarray(counts)))[0, :, :, 0]
            assert np.abs(eta - reference[f"{image}/eta"][0]).max() <= 1e-3


def test_import_writes_a_workdir_that_evaluate_restores(official, tmp_path):
    workdir = tmp_path / "imported"
    assert import_dcea.main([str(official / "untied_peak2.npz"), "--workdir", str(workdir)]) == 0
    config = config_files.load(workdir / "config.json")
    assert (config.model.tied, config.model.peak, config.model.elu_form, config.model.layout) == (
            False, 2.0, "authors", "valid")
    _, state, step = evaluate.restore_run(config, str(workdir))
    _, expected = dcea_official.load(official / "untied_peak2.npz")
    assert step == 0 and sorted(state.params) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(np.asarray(state.params[key]), value)
    # A second import into the same workdir is refused and changes nothing.
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exited:
        import_dcea.main([str(official / "tied_peak1.npz"), "--workdir", str(workdir)])
    assert exited.value.code == 2
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def _copy_network(official, tmp_path, name: str = "untied_peak1", **tensors) -> str:
    """``name`` copied to tmp_path with its tensors replaced (None: dropped)."""
    with np.load(official / f"{name}.npz") as saved:
        arrays = dict(saved)
    for key, value in tensors.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(tmp_path / f"{name}.npz", **arrays)
    shutil.copy(official / f"{name}.json", tmp_path / f"{name}.json")
    return str(tmp_path / f"{name}.npz")


def test_bad_official_files_name_the_tensor_and_the_file(official, tmp_path):
    path = _copy_network(official, tmp_path, We=None)
    with pytest.raises(ValueError, match=r"tensor 'We' is missing from .*untied_peak1\.npz"):
        dcea_official.load(path)
    path = _copy_network(official, tmp_path, H=np.zeros((169, 1, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"tensor 'H' in .*untied_peak1\.npz' has shape \(169, 1, 9, 9\)"):
        dcea_official.load(path)
    (tmp_path / "untied_peak1.json").unlink()
    with pytest.raises(ValueError, match=r"untied_peak1\.json' not found"):
        dcea_official.load(path)
    hyp = json.loads((official / "tied_peak1.json").read_text()) | {"single_bias": False}
    (tmp_path / "tied_peak1.json").write_text(json.dumps(hyp))
    shutil.copy(official / "tied_peak1.npz", tmp_path / "tied_peak1.npz")
    with pytest.raises(ValueError, match="single_bias"):
        dcea_official.load(tmp_path / "tied_peak1.npz")
    with pytest.raises(SystemExit) as exited:   # the tool's one-line error
        import_dcea.main([str(tmp_path / "missing.npz"), "--workdir", str(tmp_path / "w")])
    assert exited.value.code == 2
    assert not (tmp_path / "w").exists()


def test_authors_init_scale_matches_their_recorded_lipschitz_estimates(official):
    """``init_norm="authors"`` gives the 5·L their code computed for each of its six networks."""
    recorded = [json.loads((official / f"{name}.json").read_text())["L"] for name in NETWORKS]
    cfg = dcea.DCEAConfig(kernel_size=11, num_filters=169, stride=7, family="poisson", init_norm="authors")
    margin_l = [1 / float(jnp.sum(dcea.DCEA(cfg, rngs=nnx.Rngs(seed)).kernel[...][..., 0, 0] ** 2))
                for seed in range(3)]
    linear = dcea.DCEA(dataclasses.replace(cfg, init_norm="linear"), rngs=nnx.Rngs(0)).kernel[...][..., 0, 0]
    assert 0.85 * min(recorded) < min(margin_l) and max(margin_l) < 1.15 * max(recorded)
    assert 1 / float(jnp.sum(linear ** 2)) < 0.05 * min(recorded)  # the project's estimate: ~9x larger atoms
