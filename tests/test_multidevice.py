"""The same config gives the same parameters on 1 device and on 8 fake CPU devices."""

from __future__ import annotations

import json
import re

import pytest

from conftest import assert_trees_equal, restore_state

pytestmark = pytest.mark.slow  # starts processes


def test_eight_fake_devices_match_one(trained, run_python, tmp_path):
    config, workdir, state = trained
    # No log or checkpoint step before the end: the loop alone bounds the steps in flight
    # (unbounded, XLA:CPU aborts in an all-reduce rendezvous with 8 devices).
    result = run_python(["-m", "sparse_ae.main", "--config=configs/csc_ae.py:runlocal", f"--workdir={tmp_path}",
                         "--config.train.log_every=20", "--config.train.checkpoint_every=0"], devices=8, check=True)
    assert "mesh {'data': 8, 'model': 1} over 8 devices in 1 process(es)" in result.stderr
    eight, step = restore_state(config, tmp_path)
    assert step == config.train.num_steps
    assert_trees_equal(eight.params, state.params, rtol=1e-4, atol=1e-6)
    ours, theirs = (json.loads((w / "metrics.json").read_text()) for w in (workdir, tmp_path))
    assert theirs.keys() == ours.keys()
    for key, value in ours.items():
        assert abs(theirs[key] - value) <= 1e-3 * max(1.0, abs(value)), key


def test_fsdp_sharded_state_matches_replicated(trained, run_python, tmp_path):
    """8 fake devices as a 4 × 2 (data, model) mesh with the state split over "model"."""
    config, _, state = trained
    result = run_python(["-m", "sparse_ae.main", "--config=configs/csc_ae.py:runlocal", f"--workdir={tmp_path}",
                         "--config.train.log_every=20", "--config.train.checkpoint_every=0",
                         "--config.mesh.model=2", "--config.mesh.fsdp_axes=model", "--config.mesh.fsdp_min_size=0"],
                        devices=8, check=True)
    assert "mesh {'data': 4, 'model': 2} over 8 devices in 1 process(es)" in result.stderr
    sharded = re.search(r"state: (\d+) of (\d+) leaves sharded", result.stderr)
    assert sharded and int(sharded.group(1)) > 0, result.stderr[-2000:]
    fsdp, step = restore_state(config, tmp_path)
    assert step == config.train.num_steps
    assert_trees_equal(fsdp.params, state.params, rtol=1e-4, atol=1e-6)
