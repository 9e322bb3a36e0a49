"""Every notebook in notebooks/ runs top to bottom in a fresh kernel, and is committed clean.

The kernel is the Python running the tests: a kernelspec written to a temporary JUPYTER_PATH
points at ``sys.executable``, under a name no other installed kernel uses, so a fresh CI venv
with only requirements.txt works whatever "python3" kernels the machine has. The kernel starts
in notebooks/, importing echo_core and workbench as installed by `pip install -e .`.
Executed notebooks stay in memory: nothing is written back, so outputs never reach the repo.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
# Notebook 03 reads ECHO_CHECKPOINTS too (the kernel inherits this process's environment).
CHECKPOINTS_DIR = Path(os.environ.get("ECHO_CHECKPOINTS", REPO / "assets" / "checkpoints"))
KERNEL_NAME = "echo-workbench-notebook-test"
CELL_TIMEOUT = 900  # s: a hang guard for any one cell (they take seconds), not a speed target
MAX_NOTEBOOK_BYTES = 100_000  # committed without outputs, a notebook is text of a few 10 kB

# Notebooks that load the shipped checkpoints (assets/checkpoints/<name>/config.json).
NEEDS_CHECKPOINTS = {
    "03_bias_and_model.ipynb": ("static_theta", "mean_f0_theta", "f0_theta_bias"),
}


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_rotary_basics.ipynb", "02_pitch_and_theta.ipynb",
            "03_bias_and_model.ipynb"} <= names, f"notebooks found: {sorted(names)}"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Environment for a kernel running this interpreter: a private kernelspec on JUPYTER_PATH."""
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Echo Workbench tests ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the package is installed (pip install -e .): no path help
    env["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(jupyter_path), env.get("JUPYTER_PATH")) if p)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning
    return env


def _execute(path: Path, env: dict, monkeypatch) -> tuple[nbformat.NotebookNode, float]:
    # KernelSpecManager reads JUPYTER_PATH from this process when it is created.
    monkeypatch.setenv("JUPYTER_PATH", env["JUPYTER_PATH"])
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=CELL_TIMEOUT,
                            allow_errors=False, startup_timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOKS_DIR)}})
    client.execute(env=env, cwd=str(NOTEBOOKS_DIR))
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, kernel_env, monkeypatch):
    missing = [name for name in NEEDS_CHECKPOINTS.get(path.name, ())
               if not (CHECKPOINTS_DIR / name / "config.json").is_file()]
    if missing:
        pytest.skip(f"{path.name} needs the shipped checkpoints {missing} in {CHECKPOINTS_DIR}")
    try:
        nb = _execute(path, kernel_env, monkeypatch)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        pytest.fail(f"{path.name} failed:\n{e}", pytrace=False)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells and all(c.execution_count for c in code_cells), "not every cell ran"
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_clean(path):
    """Outputs cleared and no execution counts: small files and diffs that show only code."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"
    assert nb.metadata.get("kernelspec", {}).get("language") == "python"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{path.name} is {path.stat().st_size} bytes"
