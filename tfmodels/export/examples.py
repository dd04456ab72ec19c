"""Serialized tf.Examples of raw text: the request format of the `serving_default` and `classify` signatures."""

from typing import Mapping, Optional, Sequence

import tensorflow as tf


def make_examples(features: Mapping[str, Sequence[str]], labels: Optional[Sequence[int]] = None,
                  label_feature: str = "label") -> list:
    """One serialized tf.Example per row of `features` (feature name -> column of strings).

    Each text becomes a one-value `bytes_list`; `labels`, when given, an `int64_list` under `label_feature`
    (the layout CsvExampleGen produces from a CSV with a text and an integer label column).
    """
    columns = {name: list(values) for name, values in features.items()}
    lengths = {len(values) for values in columns.values()}
    if labels is not None:
        lengths.add(len(labels))
    if len(lengths) != 1:
        raise ValueError(f"all feature columns (and labels) must have the same length, got {sorted(lengths)}")
    serialized = []
    for row in range(lengths.pop()):
        feature = {
            name: tf.train.Feature(bytes_list=tf.train.BytesList(value=[_to_bytes(values[row])]))
            for name, values in columns.items()
        }
        if labels is not None:
            feature[label_feature] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[row])]))
        serialized.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return serialized


def _to_bytes(text) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode("utf-8")
