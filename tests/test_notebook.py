"""colab/evaluate.ipynb runs top to bottom on a tiny trained workdir and shows what it promises."""

from __future__ import annotations

import ast
import pathlib
import re
import shutil

import nbclient
import nbformat
import pytest

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "colab" / "evaluate.ipynb"


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_notebook_renders_and_has_colab_form_fields():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            assert "\\n" not in cell.source, f"literal backslash-n in markdown: {cell.source[:60]!r}"
        else:
            ast.parse(cell.source)
    fields = {m.group(1) for c in notebook.cells if c.cell_type == "code"
              for m in re.finditer(r'^(\w+) = "[^"]*"  #@param \{type:"string"\}$', c.source, re.M)}
    assert fields == {"SOURCE", "WORKDIR", "SPLITS"}
    install = next(c.source for c in notebook.cells if c.cell_type == "code" and "SOURCE" in c.source)
    assert '"pip", "install"' in install and "find_spec(\"sparse_ae\")" in install


@pytest.mark.slow  # runs a notebook kernel
def test_notebook_evaluates_a_workdir(trained, tmp_path, monkeypatch):
    config, workdir, _ = trained
    copy = tmp_path / "workdir"
    shutil.copytree(workdir, copy)
    monkeypatch.setenv("SPARSE_AE_WORKDIR", str(copy))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
                            ).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    everything = "\n".join(_text(c) for c in code)
    assert f"checkpoint at step {config.train.num_steps} of {config.train.num_steps}" in everything
    assert "test/psnr" in everything
    shown = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert shown, "no image was displayed"
