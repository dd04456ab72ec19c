"""Fixtures for executing the notebooks: a kernel on this interpreter, fast settings, scratch space."""

import json
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL_NAME = "tfmodels-notebooks"
FAST_ENV = "TFMODELS_NOTEBOOK_FAST"


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory):
    """A kernelspec that starts ipykernel with *this* interpreter (the venv), found via JUPYTER_PATH.

    Nothing is installed globally; a fresh clone needs no `ipykernel install` step.
    """
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tfmodels notebooks (test)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    saved = {key: os.environ.get(key) for key in ("JUPYTER_PATH", FAST_ENV, "PYTHONPATH")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(jupyter_dir), saved["JUPYTER_PATH"]) if p
    )
    # The kernel inherits this environment: the small/fast setting, and the repo importable even
    # without an editable install.
    os.environ[FAST_ENV] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, saved["PYTHONPATH"]) if p)
    yield KERNEL_NAME
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
