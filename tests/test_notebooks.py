"""Execute every notebook in notebooks/ from a clean kernel.

Each notebook runs top to bottom with nbclient in a ``python3`` kernel that is
pinned to the interpreter running the tests (so it sees this environment's
synthinfer, not whatever a user-level kernelspec points at). A cell that
raises fails the test with the cell's traceback. So does anything a cell
writes to stderr (a warning, a stray print in library code), because a
notebook shown to users should run cleanly; only matplotlib's one-time
font-cache notice is allowed. Notebooks must be stored without outputs.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Each notebook is written to execute in well under a minute; the limit is a
# guard against a hung kernel, not a performance target.
CELL_TIMEOUT = 300
# stderr lines a clean notebook may still print on a fresh machine
BENIGN_STDERR = re.compile(r"^Matplotlib is building the font cache; this may take a moment\.$")


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernelspec directory whose ``python3`` kernel is ``sys.executable``."""
    root = tmp_path_factory.mktemp("kernels")
    spec = root / "python3"
    spec.mkdir()
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (tests)",
                "language": "python",
            }
        )
    )
    return root


def execute(path: Path, kernel_dir: Path) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` in its own directory; return the executed copy."""
    nb = nbformat.read(path, as_version=4)
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name="python3", kernel_spec_manager=specs)
    client = NotebookClient(
        nb,
        km=km,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def stderr_text(nb: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stderr"
    )


def test_notebooks_exist() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"quickstart.ipynb", "synthetic_data.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have stored outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, kernel_dir: Path) -> None:
    start = time.perf_counter()
    nb = execute(path, kernel_dir)
    elapsed = time.perf_counter() - start
    assert any(cell.cell_type == "code" and cell.outputs for cell in nb.cells), "no cell produced output"
    noise = [line for line in stderr_text(nb).splitlines() if line.strip() and not BENIGN_STDERR.match(line)]
    assert not noise, f"{path.name} wrote to stderr (warnings or prints):\n" + "\n".join(noise[:40])
    print(f"{path.name}: executed in {elapsed:.1f} s")


def test_a_failing_cell_fails(tmp_path: Path, kernel_dir: Path) -> None:
    """The runner does not swallow errors: a raising cell raises CellExecutionError."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import synthinfer\nx = 1"),
        nbformat.v4.new_code_cell("raise ValueError('boom from a notebook cell')"),
        nbformat.v4.new_code_cell("never = 'reached'"),
    ]
    path = tmp_path / "failing.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="boom from a notebook cell"):
        execute(path, kernel_dir)


def test_a_warning_in_a_cell_is_seen(tmp_path: Path, kernel_dir: Path) -> None:
    """What test_notebook_executes checks for: a warning reaches the cell's stderr output."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import warnings\nwarnings.warn('careful', UserWarning)")]
    path = tmp_path / "warns.ipynb"
    nbformat.write(nb, path)
    assert "UserWarning: careful" in stderr_text(execute(path, kernel_dir))


def test_the_kernel_is_this_interpreter(tmp_path: Path, kernel_dir: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys\nprint(sys.executable)")]
    path = tmp_path / "which.ipynb"
    nbformat.write(nb, path)
    out = execute(path, kernel_dir).cells[0].outputs[0]["text"].strip()
    assert Path(out).resolve() == Path(sys.executable).resolve()
