"""A user's common mistakes at the entry points: one line on stderr, ``error: …``, exit status 2,
no traceback; ``--verbose`` brings the traceback back. Each case is a fresh process (slow)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow  # starts processes

RUNLOCAL = "--config=configs/csc_ae.py:runlocal"


def _mistakes(workdir, trained_copy, empty) -> dict[str, tuple[list[str], str]]:
    """``{case: (python arguments, text the error line must hold)}``."""
    main, evaluate = ["-m", "sparse_ae.main"], ["-m", "sparse_ae.evaluate"]
    at = f"--workdir={workdir}"
    return {
        "missing config file": ([*main, "--config=configs/nope.py", at], "config file 'configs/nope.py' does not exist"),
        "misspelt field": ([*main, RUNLOCAL, at, "--config.model.num_atom=3"],
                           """no field 'num_atom'; Did you mean "num_atoms" instead of "num_atom"?"""),
        "ill-typed value": ([*main, RUNLOCAL, at, "--config.train.num_steps=abc"],
                            "--config.train.num_steps=abc: expected an integer, got 'abc'"),
        "ill-typed number": ([*main, RUNLOCAL, at, "--config.optim.lr=fast"], "expected a number, got 'fast'"),
        "unknown config argument": ([*main, "--config=configs/csc_ae.py:runlocal,bogus=1", at],
                                    "unknown config argument 'bogus'"),
        "missing --workdir": ([*main, RUNLOCAL], "--workdir must have a value"),
        "evaluators as a,b": ([*main, RUNLOCAL, at, "--config.eval.evaluators=reconstruction,subspace"],
                              "to name several, write a tuple of quoted names"),
        "stray argument": ([*main, RUNLOCAL, at, "extra"], "unexpected arguments: ['extra']"),
        "invalid value": ([*main, RUNLOCAL, at, "--config.data.batch_size=0"], "config.data.batch_size"),
        "missing image folder": ([*main, RUNLOCAL, at, "--config.data.name=image_folder",
                                  f"--config.data.path={empty / 'nowhere'}"], str(empty / "nowhere")),
        "resume with another config": ([*main, RUNLOCAL, f"--workdir={trained_copy}", "--config.model.num_atoms=6"],
                                       "config.model.num_atoms: 4 -> 6"),
        "evaluate a folder that is no workdir": ([*evaluate, f"--workdir={empty}"], "has no config.json"),
        "evaluate a missing step": ([*evaluate, f"--workdir={trained_copy}", "--step=7"],
                                    "--step=7: no checkpoint at that step"),
        "dip without its config": (["-m", "sparse_ae.dip", "--config=configs/dip_nope.py", at], "does not exist"),
        "import a missing network": (["-m", "sparse_ae.tools.import_dcea", str(empty / "net.npz"), "--workdir", workdir],
                                     "net.npz"),
    }


def _run_all(cases: dict[str, list[str]], env: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Runs every case as ``python <args>`` at once; their results by case."""
    procs = {name: subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name, args in cases.items()}
    results = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


def test_common_mistakes_are_one_line_with_exit_status_2(trained, tmp_path):
    _, source, _ = trained
    trained_copy = shutil.copytree(source, tmp_path / "trained")
    empty = tmp_path / "empty"
    empty.mkdir()
    mistakes = _mistakes(str(tmp_path / "new"), str(trained_copy), empty)
    results = _run_all({name: args for name, (args, _) in mistakes.items()}, subprocess_env())
    table = []
    for name, (_, expected) in mistakes.items():
        result = results[name]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        table.append(f"{name}: exit {result.returncode}: {lines[-1] if lines else '(no output)'}")
        assert result.returncode == 2, f"{name}:\n{result.stderr}"
        assert "Traceback" not in result.stderr, f"{name}:\n{result.stderr}"
        assert [line for line in lines if line.startswith("error:")] == lines[-1:], f"{name}:\n{result.stderr}"
        assert expected in lines[-1], f"{name}: {lines[-1]!r} lacks {expected!r}"
    print("\n".join(table))
    assert not (tmp_path / "new" / "config.json").exists()


def test_verbose_shows_the_traceback(tmp_path):
    args = ["-m", "sparse_ae.main", RUNLOCAL, f"--workdir={tmp_path}", "--config.data.batch_size=0"]
    results = _run_all({"flag": [*args, "--verbose"]}, subprocess_env())
    results.update(_run_all({"environment": args}, subprocess_env(SPARSE_AE_VERBOSE="1")))
    for name, result in results.items():
        assert result.returncode != 0 and "Traceback" in result.stderr, name
        assert "config.data.batch_size" in result.stderr, name
