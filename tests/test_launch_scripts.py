"""The launch scripts: shellcheck-clean, guarded by required variables, and `--dry-run` prints."""

import os
import pathlib
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.slow  # starts processes

LAUNCH = pathlib.Path(__file__).resolve().parents[1] / "launch"
SCRIPTS = sorted(LAUNCH.glob("*.sh"))


def _run(script, *args, env=None):
    full_env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    full_env.update(env or {})
    return subprocess.run(
            ["bash", str(script), *args], env=full_env, capture_output=True, text=True, timeout=60
    )


def test_there_are_launch_scripts():
    assert {p.name for p in SCRIPTS} >= {"tpu_pod.sh", "slurm_gpu.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is missing: install the test extra (pip install -e '.[test]')")
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


TPU_ENV = {
        "TPU_NAME": "pod", "ZONE": "us-central2-b", "ACCELERATOR_TYPE": "v4-32",
        "CONFIG": "configs/ctrl_csc.py:dataset=imagenet2012", "WORKDIR": "gs://bucket/run",
        "TFDS_DATA_DIR": "gs://bucket/tfds",
}


def test_tpu_dry_run_prints_every_step_on_all_workers():
    result = _run(LAUNCH / "tpu_pod.sh", "--dry-run", "all", env=TPU_ENV)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("gcloud compute tpus tpu-vm create pod")
    train = [l for l in lines if "sparse_ae.main" in l]
    assert len(train) == 1 and "--worker=all" in train[0] and "gs://bucket/run" in train[0]


def test_tpu_missing_variable_names_it():
    env = {k: v for k, v in TPU_ENV.items() if k != "ZONE"}
    result = _run(LAUNCH / "tpu_pod.sh", "--dry-run", "train", env=env)
    assert result.returncode != 0
    assert "ZONE" in result.stderr


def test_slurm_dry_run_runs_one_process_per_gpu():
    env = {"CONFIG": "configs/sc_vae.py", "WORKDIR": "/shared/run", "TFDS_DATA_DIR": "/shared/tfds",
                  "NODES": "4", "GPUS_PER_NODE": "8"}
    result = _run(LAUNCH / "slurm_gpu.sh", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "--nodes=4" in result.stdout and "--ntasks-per-node=8" in result.stdout
    assert "srun python -m sparse_ae.main" in result.stdout


def test_slurm_missing_variable_names_it():
    result = _run(LAUNCH / "slurm_gpu.sh", "--dry-run", env={"CONFIG": "c", "WORKDIR": "/w"})
    assert result.returncode != 0
    assert "TFDS_DATA_DIR" in result.stderr
