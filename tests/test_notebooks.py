"""Execute every notebook in notebooks/ from a clean kernel.

Each notebook runs top to bottom with nbclient in a ``python3`` kernel that is
pinned to the interpreter running the tests (so it sees this environment's
synthinfer, not whatever a user-level kernelspec points at). A cell that
raises fails the test with the cell's traceback. So does anything a cell
writes to stderr (a warning, a stray print in library code), because a
notebook shown to users should run cleanly; only matplotlib's one-time
font-cache notice is allowed.

Notebooks are stored with their outputs, because the docs site publishes them
as stored. So a stored notebook must be fully executed, and its text outputs
must be those the fresh run gives (timings and object addresses aside): a
change to the package that changes a number in a notebook fails here until
the notebook is re-executed with ``python tests/test_notebooks.py
notebooks/NAME.ipynb`` (in place, with the same kernel as the test).
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


# what may differ between two runs of the same notebook
VOLATILE = [
    (re.compile(r" at 0x[0-9a-f]+"), " at 0x..."),
    (re.compile(r"(ran|executed) in \d+(\.\d+)? s"), r"\1 in ... s"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),  # the fake LLM server's free port
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?"), "TIMESTAMP"),
    # statsmodels' summary header
    (re.compile(r"(Date:\s+)\w{3}, \d\d \w{3} \d{4}"), r"\1DATE"),
    (re.compile(r"(Time:\s+)\d\d:\d\d:\d\d"), r"\1TIME"),
]


def text_outputs(nb: nbformat.NotebookNode) -> list[list[str]]:
    """Per code cell, its stdout and plain-text results with the volatile parts masked
    (figures and HTML are left out: the plain text carries the same numbers)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                text = output.text
            elif output.output_type in ("execute_result", "display_data"):
                text = output.get("data", {}).get("text/plain", "")
                if text.startswith("<Figure size"):
                    continue
            else:
                continue
            for pattern, replacement in VOLATILE:
                text = pattern.sub(replacement, text)
            texts.append(text)
        cells.append(texts)
    return cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_executed(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: execution counts {counts}: store it executed top to bottom in a fresh kernel "
        f"(python tests/test_notebooks.py {path.relative_to(NOTEBOOK_DIR.parent)})"
    )
    bad = [
        i for i, cell in enumerate(code)
        for output in cell.outputs
        if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr")
    ]
    assert not bad, f"{path.name}: code cells {bad} store errors or stderr output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, kernel_dir: Path) -> None:
    start = time.perf_counter()
    nb = execute(path, kernel_dir)
    elapsed = time.perf_counter() - start
    assert any(cell.cell_type == "code" and cell.outputs for cell in nb.cells), "no cell produced output"
    noise = [line for line in stderr_text(nb).splitlines() if line.strip() and not BENIGN_STDERR.match(line)]
    assert not noise, f"{path.name} wrote to stderr (warnings or prints):\n" + "\n".join(noise[:40])
    stored = text_outputs(nbformat.read(path, as_version=4))
    fresh = text_outputs(nb)
    stale = [i for i, (a, b) in enumerate(zip(stored, fresh)) if a != b]
    assert len(stored) == len(fresh) and not stale, (
        f"{path.name}: the stored outputs of code cells {stale} differ from a fresh run; re-execute it "
        f"with python tests/test_notebooks.py {path.relative_to(NOTEBOOK_DIR.parent)}"
    )
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


if __name__ == "__main__":
    # Re-execute notebooks in place, with the kernel the tests use.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "python3"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python",
        }))
        for name in sys.argv[1:] or [str(p) for p in NOTEBOOKS]:
            target = Path(name).resolve()
            started = time.perf_counter()
            executed = execute(target, Path(tmp))
            # the stored kernelspec stays the generic one, not the test's
            executed.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
            nbformat.write(executed, target)
            print(f"{target.name}: executed in {time.perf_counter() - started:.1f} s")
