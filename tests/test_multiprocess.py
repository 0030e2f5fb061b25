"""Two local processes x two CPU devices (jax.distributed, gloo) via launch/local.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO, assert_trees_equal, restore_state, subprocess_env

pytestmark = pytest.mark.slow  # starts processes


def test_local_launcher_dry_run_prints_each_process():
    result = subprocess.run([sys.executable, "launch/local.py", "--num_processes=3", "--devices_per_process=2",
                             "--port=4321", "--dry-run", "--", "python", "-m", "sparse_ae.main", "--workdir=/w"],
                            cwd=REPO, capture_output=True, text=True, timeout=30, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert f"JAX_PROCESS_ID={i}" in line and "JAX_NUM_PROCESSES=3" in line
        assert "JAX_COORDINATOR_ADDRESS=127.0.0.1:4321" in line
        assert "--xla_force_host_platform_device_count=2" in line
        assert line.endswith("python -m sparse_ae.main --workdir=/w")


def test_two_processes_match_one_device(trained, tmp_path):
    config, workdir, state = trained
    cmd = [sys.executable, "launch/local.py", "--num_processes=2", "--devices_per_process=2", "--timeout=240", "--",
           sys.executable, "-m", "sparse_ae.main", "--config=configs/csc_ae.py:runlocal", f"--workdir={tmp_path}"]
    result = subprocess.run(cmd, cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:]
    for process in (0, 1):
        assert f"[p{process}] " in result.stdout
    assert "mesh {'data': 4, 'model': 1} over 4 devices in 2 process(es)" in result.stdout
    two, step = restore_state(config, tmp_path)
    assert step == config.train.num_steps
    assert_trees_equal(two.params, state.params, rtol=1e-4, atol=1e-6)
    ours, theirs = (json.loads((w / "metrics.json").read_text()) for w in (workdir, tmp_path))
    for key, value in ours.items():
        assert abs(theirs[key] - value) <= 1e-3 * max(1.0, abs(value)), key
