"""The notebooks run top to bottom, headless, as a reader's Jupyter would run them."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
NAMES = [
    "01_quickstart",
    "02_crash_and_resume",
    "03_human_in_the_loop",
    "04_postgres_migration_growth",
]
NEEDS_POSTGRES = {"04_postgres_migration_growth"}


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=nbformat.NO_CONVERT)


def test_every_notebook_is_listed_here():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_holds_the_outputs_of_one_run_in_order(name):
    """What readers see on the forge is a real run: every code cell ran, top to bottom."""
    notebook = _read(name)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert "Needs:" in notebook.cells[0].source  # the first cell says what it needs


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.postgres) if n in NEEDS_POSTGRES else n for n in NAMES],
)
def test_notebook_runs_top_to_bottom(name):
    notebook = _read(name)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # any cell's error fails here, with the cell and its traceback
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]


def test_what_the_fourth_notebook_imports_needs_no_test_tools():
    """It runs ``bench.growth``, under the notebooks extra, which has no pytest."""
    blocked = "import sys; sys.modules['pytest'] = None; import bench.growth"
    subprocess.run([sys.executable, "-c", blocked], cwd=NOTEBOOKS.parent, check=True)
