"""Between text and the ids ``Seq2SeqTransformer`` reads and writes, in TF ops (tf.data, SavedModel).

The tokenizers are ``tfmodels.text.BertTokenizer``-like: called on a 1-D string tensor they give
ragged ids without special tokens, and ``detokenize`` maps ids back to text.
"""

import tensorflow as tf


def encode_source(tokenizer, texts, length):
    """Strings ``[batch]`` -> int32 ``[batch, length]`` ids, truncated or padded with 0.

    A fixed width, so the jit-compiled decoder sees one shape per batch size and compiles once.
    """
    ids = tokenizer(texts)[:, :length]
    return tf.cast(ids.to_tensor(0, shape=[None, length]), tf.int32)


def teacher_forcing(target_ids, start_id, end_id):
    """Ragged target ids -> ``(decoder_input, labels)``: ``[start] + ids`` and ``ids + [end]``.

    Both are ragged with the same row lengths; pad them together.
    """
    target_ids = tf.cast(target_ids, tf.int32)
    rows = target_ids.nrows()
    start = tf.fill([rows, 1], tf.constant(start_id, tf.int32))
    end = tf.fill([rows, 1], tf.constant(end_id, tf.int32))
    return tf.concat([start, target_ids], axis=1), tf.concat([target_ids, end], axis=1)


def strip_after_end(ids, end_id):
    """Generated ids ``[batch, length]`` -> ragged ids cut before the first ``end_id``."""
    ids = tf.convert_to_tensor(ids)
    before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, end_id), tf.int32), axis=1), 0)
    lengths = tf.reduce_sum(tf.cast(before_end, tf.int32), axis=1)
    return tf.RaggedTensor.from_tensor(ids, lengths=lengths)


def decode_target(tokenizer, ids, end_id):
    """Generated ids ``[batch, length]`` -> strings ``[batch]``, spacing tidied.

    WordPiece detokenization puts a space around every punctuation mark; gluing them back to
    their word gives text that reads (and that BLEU's tokenizer splits) like the references.
    """
    text = tokenizer.detokenize(strip_after_end(ids, end_id))
    text = tf.strings.regex_replace(text, r" ([.,;:!?)\]»])", r"\1")
    text = tf.strings.regex_replace(text, r"([(\[¡¿«]) ", r"\1")
    return tf.strings.regex_replace(text, r" ([-'’]) ", r"\1")
