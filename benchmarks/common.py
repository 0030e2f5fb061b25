"""Shared benchmark harness: machine description, timing, a console table and JSON output.

Every benchmark is run as ``python -m benchmarks.<name> [--quick] [--out DIR | --out FILE.json]``,
prints a table and, with ``--out``, writes ``DIR/<name>.json`` (or ``FILE.json``) carrying
``machine_info()`` so results from different machines are never mixed up.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jaxlib
import numpy as np

from sparse_ae.train import config_files, loop

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(spec: str):
    """``configs/x.py[:arg]`` of this repository -> its completed ConfigDict."""
    return config_files.load(spec, root=REPO)


def train(spec: str, steps: int, workdir: pathlib.Path, overrides: Mapping[str, Any] | None = None
          ) -> tuple[Any, dict[str, Any], float]:
    """Trains ``spec`` through the generic loop in ``workdir`` (``steps`` > 0 overrides
    train.num_steps, ``overrides`` maps dotted fields such as ``"data.seed"`` to values; no periodic
    checkpoints, 5 log lines); returns (config, its metrics.json, minutes)."""
    config = load_config(spec)
    config.update_from_flattened_dict(dict(overrides or {}))
    if steps:
        config.train.num_steps = steps
    config.train.update(checkpoint_every=0, log_every=max(config.train.num_steps // 5, 1))
    start = time.perf_counter()
    loop.train_and_evaluate(config, workdir)
    minutes = (time.perf_counter() - start) / 60
    return config, json.loads((pathlib.Path(workdir) / "metrics.json").read_text()), minutes


def summarize_seeds(runs: list[dict], by: tuple[str, ...], keys: tuple[str, ...]) -> list[dict]:
    """One row per distinct ``by`` values (first-seen order): the run count ``seeds`` and
    ``<key>_mean`` / ``<key>_std`` (ddof 0) over those runs for each of ``keys``."""
    rows = []
    for group in dict.fromkeys(tuple(r[b] for b in by) for r in runs):
        mine = [r for r in runs if tuple(r[b] for b in by) == group]
        row = {**dict(zip(by, group)), "seeds": len(mine)}
        for key in keys:
            values = np.array([r[key] for r in mine], np.float64)
            row.update({f"{key}_mean": float(values.mean()), f"{key}_std": float(values.std())})
        rows.append(row)
    return rows


def _cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux) or ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, Python, jax/jaxlib versions, backend and device kinds of this process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": cores,
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "device_kinds": sorted({d.device_kind for d in jax.devices()}),
        "device_count": jax.device_count(),
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def run_worker(module: str, args: Sequence[str], devices: int | None, timeout_s: float) -> dict[str, Any]:
    """``python -m <module> --worker <args>`` in a fresh process on ``devices`` fake CPU devices
    (None: on this environment's platform and devices, e.g. a GPU); its last stdout line parsed as
    JSON, or ``{"note": "failed: ..."}`` if it fails or times out."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if devices is not None:
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    cmd = [sys.executable, "-m", module, "--worker", *map(str, args)]
    try:
        result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"note": f"failed: over {timeout_s:g} s"}
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return {"note": f"failed: {last}"[:120]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def base_parser(description: str) -> argparse.ArgumentParser:
    """Argument parser with ``--quick`` (a few minutes) and ``--out`` (directory or .json path)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: runs in a few minutes")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="write the results as JSON: a directory (-> DIR/<name>.json) or a .json path")
    return parser


def _seconds(fn: Callable[..., Any], args: tuple) -> float:
    """Wall-clock seconds of one ``fn(*args)``, blocking until every output is ready."""
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def time_fn(fn: Callable[..., Any], *args: Any, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn(*args)``, blocking until every output is ready.

    ``warmup`` untimed calls run first (they include compilation for jitted functions).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        _seconds(fn, args)
    return float(np.median([_seconds(fn, args) for _ in range(repeats)]))


def time_warm(fn: Callable[..., Any], *args: Any, warm_seconds: float = 0.2) -> tuple[float, float]:
    """(seconds of a first call, seconds of one call after untimed calls for at least ``warm_seconds``, the first
    included); each blocks until every output is ready.

    A core that sat idle can take tens of milliseconds of work to run at speed again (on a shared 2-core VM a
    short solve split over both cores ran up to 1.8x slower right after single-threaded work), so a short call
    timed cold measures the machine's wake-up; the first number shows that cost.
    """
    first = spent = _seconds(fn, args)
    while spent < warm_seconds:
        spent += _seconds(fn, args)
    return first, _seconds(fn, args)


def time_interleaved(cases: Mapping[str, tuple[Callable[..., Any], tuple]], repeats: int = 5
                     ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Wall-clock seconds of each ``name: (fn, args)`` case, measured round-robin.

    Each round times every case once, so load from other processes on a shared machine hits
    all cases alike; compare cases by per-round ratios or medians. Returns (times per case,
    seconds of each case's first call, which includes compilation for jitted functions).
    """
    first = {name: _seconds(fn, args) for name, (fn, args) in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, (fn, args) in cases.items():
            times[name].append(_seconds(fn, args))
    return times, first


def time_steps(step: Callable[..., tuple], state: Any, args: tuple, max_steps: int, budget_s: float
               ) -> tuple[int, float]:
    """Runs ``state, metrics, *_ = step(state, *args)`` up to ``max_steps`` times, stopping early
    (after at least 2) once ``budget_s`` seconds have passed, with as many steps in flight as the
    training loop allows. Returns (steps run, mean seconds per step)."""
    in_flight = loop.InFlight()
    start = time.perf_counter()
    done = 0
    while done < max_steps and (done < 2 or time.perf_counter() - start < budget_s):
        state, metrics, *_ = step(state, *args)
        in_flight.add(metrics)
        done += 1
    jax.block_until_ready((state, metrics))
    return done, (time.perf_counter() - start) / done


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v == 0.0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(value)


def print_table(*args: Any, columns: Sequence[str] | None = None, title: str | None = None) -> None:
    """Print rows (a list of dicts) as an aligned text table.

    Call as ``print_table(title, rows)`` or ``print_table(rows, columns)``; ``columns`` picks and
    orders the keys (default: keys in order of first appearance); missing values print as ''.
    """
    if args and isinstance(args[0], str):
        title, *args = args
    rows: Sequence[Mapping[str, Any]] = args[0] if args else []
    if len(args) > 1:
        columns = args[1]
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    cells = [[_format(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print(line)
    numeric = [all(isinstance(row.get(c), (int, float, np.number)) and not isinstance(row.get(c), bool)
                   for row in rows if c in row) for c in columns]
    for r in cells:
        print("  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric)))
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)) or type(value).__module__.startswith("jax"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, pathlib.Path):
        return str(value)
    return value


def write_json(out: str | os.PathLike, name: str | Mapping[str, Any],
               payload: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Write ``payload`` (plus ``machine`` = ``machine_info()`` unless present) as JSON.

    ``write_json(out_dir, name, payload)`` writes ``out_dir/<name>.json``;
    ``write_json(target, payload)`` writes ``target`` if it ends in ``.json``, else
    ``target/<running script's name>.json``. Parent directories are created. Returns the path.
    """
    if payload is None:
        if not isinstance(name, Mapping):
            raise TypeError("write_json(target, payload): payload must be a mapping")
        payload, name = name, pathlib.Path(sys.argv[0]).stem
    path = pathlib.Path(out)
    if path.suffix != ".json":
        path = path / f"{name}.json"
    record = {"machine": machine_info(), **payload} if "machine" not in payload else dict(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(record), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
