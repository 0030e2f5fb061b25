"""Shared fixtures: tiny configs, fresh Python processes with N fake CPU devices.

Every test that starts a process (through the ``run_python`` fixture, or marked by hand) is
``slow``, as are the few that train for many steps and the extra variants of a check the fast
suite already makes for one variant; the half-hour run of every benchmark is marked
``benchmarks``. ``pytest -q`` leaves both out; ``pytest -q -m ''`` runs everything (what CI runs)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is not installed: tests import it from the repository root
    sys.path.append(str(REPO))
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
# Compilation dominates most tests. A persistent cache (of every program, however quick to
# compile) makes a run after the first about twice as fast. SPARSE_AE_TEST_JAX_CACHE names another
# folder, or "" to turn it off.
JAX_CACHE = os.environ.get("SPARSE_AE_TEST_JAX_CACHE", str(REPO / ".cache" / "jax-tests"))
# Test programs are small, so a first run is mostly XLA compiling them, and LLVM's full
# optimisation and XLA:CPU's fusion emitters cost more there than they save: with these flags a
# first run of the fast suite took about 160 s instead of 250 s on 2 cores (results equal up to rounding).
# They are added to XLA_FLAGS, which the processes tests start inherit, unless XLA_FLAGS already
# names them or this XLA does not know them.
FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")


def xla_accepts(flags: list[str]) -> bool:
    """Whether this jaxlib starts with ``flags`` in XLA_FLAGS (XLA aborts on a flag it does not know)."""
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], capture_output=True, check=False,
                           env={**os.environ, "XLA_FLAGS": " ".join(flags), "JAX_PLATFORMS": "cpu"})
    return probe.returncode == 0


def add_fast_compile_flags() -> None:
    """Appends to XLA_FLAGS those of FAST_COMPILE_FLAGS it does not name and this XLA accepts."""
    flags = os.environ.get("XLA_FLAGS", "").split()
    named = {f.split("=")[0] for f in flags}
    wanted = [f for f in FAST_COMPILE_FLAGS if f.split("=")[0] not in named]
    if wanted and not xla_accepts(wanted):
        wanted = [f for f in wanted if xla_accepts([f])]
    os.environ["XLA_FLAGS"] = " ".join(flags + wanted)


def pytest_configure(config):
    del config  # unused
    add_fast_compile_flags()  # in the main process; xdist workers inherit the result and add nothing
    if JAX_CACHE:
        import jax  # pylint: disable=import-outside-toplevel

        jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)


def subprocess_env(devices: int = 1, **extra: str) -> dict[str, str]:
    """This environment with ``devices`` fake CPU devices for JAX and the repo importable."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(DEVICE_COUNT_FLAG)]
    env["XLA_FLAGS"] = " ".join([*flags, f"{DEVICE_COUNT_FLAG}={devices}"])
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_python(args: list[str], *, devices: int = 1, timeout: float = 180, env: dict[str, str] | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """``python <args>`` in the repo root in a fresh process with ``devices`` fake CPU devices."""
    result = subprocess.run([sys.executable, *args], cwd=REPO, env={**subprocess_env(devices), **(env or {})},
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"python {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def pytest_collection_modifyitems(items):
    """Marks the tests that use ``run_python`` (a fresh Python process each) as slow."""
    for item in items:
        if "run_python" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True, name="private_cache")
def private_cache_fixture(tmp_path_factory):
    """``SPARSE_AE_CACHE`` (the default digits classifier's cache) in a folder of this session, for
    this process and the ones it starts: tests never write into the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARSE_AE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(name="run_python")
def run_python_fixture():
    """Fixture form of :func:`run_python` (code that needs its own device count or a clean process)."""
    return run_python


def load_config(spec: str):
    """``configs/x.py[:arg]`` of this repository as its completed ConfigDict."""
    from sparse_ae.train import config_files  # pylint: disable=import-outside-toplevel

    return config_files.load(spec, root=REPO)


def tiny_config(arg: str = "runlocal", **overrides):
    """``configs/csc_ae.py:<arg>`` with dotted-key overrides, e.g. ``**{"train.num_steps": 4}``."""
    config = load_config(f"configs/csc_ae.py:{arg}")
    config.update_from_flattened_dict(overrides)
    return config


@pytest.fixture(name="tiny_config")
def tiny_config_fixture():
    """Factory of runlocal csc_ae configs (see :func:`tiny_config`)."""
    return tiny_config


def restore_state(config, workdir, step=None):
    """The state saved in ``workdir`` (newest good or ``step``) as host numpy, and its step."""
    import jax  # pylint: disable=import-outside-toplevel

    from sparse_ae.train import checkpointing, loop  # pylint: disable=import-outside-toplevel

    dataset = loop.build_dataset(config, config.train.split, train=True, batch_size=config.data.batch_size)
    run = loop.build_run(config, next(iter(dataset)))
    checkpointer = checkpointing.Checkpointer(workdir, config.train.keep_checkpoints)
    try:
        state, restored_step = checkpointer.restore(run.abstract_state, step=step)
    finally:
        checkpointer.close()
    return jax.device_get(state), restored_step


def assert_trees_equal(a, b, rtol: float = 0.0, atol: float = 0.0):
    """Same structure and values (bitwise by default)."""
    import jax  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel

    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if rtol or atol:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


CONSTANT_LR = {"optim.schedule": "constant"}


def _train_once(tmp_path_factory, name: str, config):
    import jax  # pylint: disable=import-outside-toplevel

    from sparse_ae.train import loop  # pylint: disable=import-outside-toplevel

    workdir = tmp_path_factory.mktemp(name)
    return config, workdir, jax.device_get(loop.train_and_evaluate(config, workdir))


@pytest.fixture(scope="session", name="trained")
def trained_fixture(tmp_path_factory):
    """The default runlocal run on 1 device (20 steps, checkpoints at 10 and 20), trained once
    per session: ``(config, workdir, final state as host numpy)``. Read-only: copy the workdir
    (shutil.copytree) before writing to it."""
    return _train_once(tmp_path_factory, "trained", tiny_config())


@pytest.fixture(scope="session", name="trained_constant_lr")
def trained_constant_lr_fixture(tmp_path_factory):
    """Like ``trained`` with a constant learning rate (the schedule does not depend on
    train.num_steps, so shorter and longer runs share their first steps exactly)."""
    return _train_once(tmp_path_factory, "trained_constant_lr", tiny_config(**CONSTANT_LR))


@pytest.fixture(name="single_threaded", scope="module")
def single_threaded_fixture():
    """SPORCO with one FFTW thread and single-threaded BLAS (fast and deterministic on a busy machine)."""
    import sporco.fft  # pylint: disable=import-outside-toplevel  # only the SPORCO comparisons need it
    from threadpoolctl import threadpool_limits  # pylint: disable=import-outside-toplevel

    threads = sporco.fft.pyfftw_threads
    sporco.fft.pyfftw_threads = 1
    with threadpool_limits(limits=1, user_api="blas"):
        yield
    sporco.fft.pyfftw_threads = threads
