#!/usr/bin/env python3
"""Run one command as N local JAX processes on 127.0.0.1 (CPU devices, gloo collectives).

    python launch/local.py --num_processes=2 --devices_per_process=2 -- \
        python -m sparse_ae.main --config=configs/csc_ae.py:runlocal --workdir=/tmp/run

Each process gets the jax.distributed environment that ``sparse_ae.utils.distributed``
reads (JAX_COORDINATOR_ADDRESS=127.0.0.1:<port>, JAX_NUM_PROCESSES, JAX_PROCESS_ID), plus
JAX_PLATFORMS=cpu and ``--xla_force_host_platform_device_count``. Output lines are prefixed
with ``[p<i>]``. If one process fails the others are terminated; the exit status is the
first non-zero one. SIGINT/SIGTERM are forwarded. ``--dry-run`` prints the commands.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(base: dict[str, str], port: int, num_processes: int, process_id: int,
                devices_per_process: int) -> dict[str, str]:
    """The environment of process ``process_id``."""
    xla_flags = " ".join(f for f in base.get("XLA_FLAGS", "").split()
                         if not f.startswith("--xla_force_host_platform_device_count"))
    return {**base,
            "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
            "JAX_NUM_PROCESSES": str(num_processes),
            "JAX_PROCESS_ID": str(process_id),
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"{xla_flags} --xla_force_host_platform_device_count={devices_per_process}".strip()}


def _pump(stream, prefix: str) -> None:
    for line in stream:
        sys.stdout.write(f"{prefix}{line}")
        sys.stdout.flush()


def launch(command: list[str], num_processes: int, devices_per_process: int, port: int = 0,
           timeout: float | None = None) -> int:
    """Starts the processes, streams their output, returns the first non-zero exit status (or 0)."""
    port = port or free_port()
    procs = [subprocess.Popen(command, env=process_env(dict(os.environ), port, num_processes, i, devices_per_process),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(num_processes)]
    pumps = [threading.Thread(target=_pump, args=(p.stdout, f"[p{i}] "), daemon=True) for i, p in enumerate(procs)]
    for pump in pumps:
        pump.start()

    def forward(signum, _frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if timeout is None else time.monotonic() + timeout
    status = 0
    try:
        while any(p.poll() is None for p in procs):
            failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
            timed_out = deadline is not None and time.monotonic() > deadline
            if (failed or timed_out) and not status:
                status = failed[0] if failed else 124
                print(f"[launch] {'a process failed' if failed else 'timeout'}: stopping the others", flush=True)
                forward(signal.SIGTERM, None)
                deadline = time.monotonic() + 30  # grace period, then kill
            elif timed_out:
                for proc in procs:
                    proc.kill()
            time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for pump in pumps:
        pump.join(timeout=5)
    return status or next((p.returncode for p in procs if p.returncode), 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_processes", type=int, default=2)
    parser.add_argument("--devices_per_process", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="coordinator port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before every process is stopped")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every process runs")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    if args.num_processes < 1 or args.devices_per_process < 1:
        parser.error("--num_processes and --devices_per_process must be >= 1")
    if args.dry_run:
        port = args.port or 12345
        for i in range(args.num_processes):
            env = process_env({}, port, args.num_processes, i, args.devices_per_process)
            print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.join(command))
        return 0
    return launch(command, args.num_processes, args.devices_per_process, args.port, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
