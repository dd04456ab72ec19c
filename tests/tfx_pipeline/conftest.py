"""Fixtures for the pipeline tests."""

import csv
import os

import pytest


def write_csv(directory, rows, columns=("text", "label")):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "data.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return str(directory)


@pytest.fixture(scope="session")
def reviews(tmp_path_factory):
    """A folder with one CSV of 200 IMDB reviews (text, label), the same sample every run."""
    from testlib.pipeline import imdb_sample

    return imdb_sample(tmp_path_factory.mktemp("reviews"))


@pytest.fixture
def csv_folder(tmp_path):
    """`csv_folder(rows, columns)`: a folder holding one CSV with those rows; returns its path."""
    return lambda rows, columns=("text", "label"): write_csv(tmp_path / "csv", rows, columns)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep `xdist_group` working under pytest 9 (`-n 2 --dist loadgroup`): pytest-xdist 3.8 names a test's group
    by setting `item._nodeid` to `<nodeid>@<group>`, but pytest 9 reads the node id from `item._id`, so the
    group was ignored and each worker repeated a task's module-scoped pipeline run. Applied to this folder's
    tests (the one e2e pipeline run per task of test_tasks_e2e.py)."""
    from _pytest.nodeid import NodeId

    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        intended = getattr(item, "_nodeid", None)
        if (intended and "@" in intended and intended != item.nodeid and hasattr(item, "_id")
                and str(item.path).startswith(here)):
            item._id = NodeId.parse(intended)
