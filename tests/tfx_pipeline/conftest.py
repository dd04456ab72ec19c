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


@pytest.fixture
def csv_folder(tmp_path):
    """`csv_folder(rows, columns)`: a folder holding one CSV with those rows; returns its path."""
    return lambda rows, columns=("text", "label"): write_csv(tmp_path / "csv", rows, columns)
