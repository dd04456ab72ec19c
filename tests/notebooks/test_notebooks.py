"""Every notebook runs top to bottom in its small/fast setting, and is committed without outputs."""

import os
import time

import nbformat
import pytest

NOTEBOOK_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "notebooks"
)
NOTEBOOKS = sorted(
    os.path.join(NOTEBOOK_DIR, name) for name in os.listdir(NOTEBOOK_DIR) if name.endswith(".ipynb")
)
IDS = [os.path.basename(path) for path in NOTEBOOKS]
# Per notebook; the fast settings finish in about two minutes on 2 CPU cores.
CELL_TIMEOUT_S = 600


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path}: strip the outputs before committing"
            assert cell.execution_count is None, f"{path}: strip the execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_fast_setting(path):
    """The first code cell tagged `parameters` reads the fast setting CI uses."""
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged and "TFMODELS_NOTEBOOK_FAST" in tagged[0].source, path


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, kernel_name, tmp_path):
    from nbclient import NotebookClient

    if "translate" in os.path.basename(path):
        from tfmodels.datasets import bible

        missing = bible.missing_reason()
        if missing is not None:
            pytest.skip(f"English-Spanish Bible corpus unavailable: {missing}")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": NOTEBOOK_DIR}},
    )
    start = time.monotonic()
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        # The executed copy, for a look at what ran: TFMODELS_NOTEBOOK_OUTPUT_DIR, else tmp_path.
        out_dir = os.environ.get("TFMODELS_NOTEBOOK_OUTPUT_DIR") or str(tmp_path)
        os.makedirs(out_dir, exist_ok=True)
        nbformat.write(nb, os.path.join(out_dir, os.path.basename(path)))
    print(f"{os.path.basename(path)}: {time.monotonic() - start:.0f} s")
    # Each notebook ends with something to look at: at least one figure.
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert images, f"{path} displayed no figure"
