"""``export(model, export_dir)``: one call for every task, with the model's own preprocessor.

It picks the task's exporter (``export_text_classifier``, ``export_token_classifier``,
``export_span_qa``, ``export_translator``, ``export_causal_lm``) and gives it the tokenization
the model trained with, so serving cannot skew from training. Those exporters stay for their
options, which ``export`` passes on.
"""

from tfmodels.export.causal_lm import export_causal_lm
from tfmodels.export.classifier import export_text_classifier, text_preprocess
from tfmodels.export.seq2seq import Translator, export_translator
from tfmodels.export.span_qa import export_span_qa
from tfmodels.export.token_classifier import export_token_classifier


def _classifier(model, export_dir, text_features=("text",), **options):
    preprocess = text_preprocess(_preprocessor(model), text_features)
    return export_text_classifier(
        export_dir, model, preprocess, text_features=text_features, **options
    )


def _token_classifier(model, export_dir, **options):
    _preprocessor(model)
    return export_token_classifier(export_dir, model, **options)


def _span_qa(model, export_dir, **options):
    _preprocessor(model)
    return export_span_qa(export_dir, model, **options)


def _causal_lm(model, export_dir, **options):
    _preprocessor(model)
    return export_causal_lm(model, export_dir, **options)


def _translator(translator, export_dir, **options):
    export_translator(translator, export_dir, **options)
    return export_dir


def _preprocessor(model):
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise ValueError(
            f"this {type(model).__name__} has no preprocessor, so its export could not take text: "
            f"build it with preprocessor=... (or load it with {type(model).__name__}.from_preset)"
        )
    return preprocessor


def _exporters():
    """(model class, exporter, what it writes), in the order ``export`` tries them."""
    from tfmodels.models.bert import BertClassifier, BertSpanQA, BertTokenClassifier
    from tfmodels.models.llama import CausalLM

    return (
        (BertClassifier, _classifier, "serving_default (raw text), predict_text, predict_examples (tf.Example), classify"),
        (BertTokenClassifier, _token_classifier, "extract_entities"),
        (BertSpanQA, _span_qa, "answer_question"),
        (Translator, _translator, "serving_default (texts -> translations), generate"),
        (CausalLM, _causal_lm, "generate, sample"),
    )


def export(model, export_dir, **options):
    """Write ``model`` with its preprocessor as a TF Serving SavedModel at ``export_dir``.

    Args:
        model: a ``BertClassifier``, ``BertTokenClassifier``, ``BertSpanQA`` or ``CausalLM``
            built with its preprocessor (``from_preset`` attaches it), or a ``Translator``
            (a ``Seq2SeqTransformer`` with its two tokenizers).
        export_dir: the SavedModel directory (e.g. ``<base>/<model>/<version>``).
        **options: the task exporter's options (``class_names``, ``text_features``,
            ``warmup_texts``, ``max_new_tokens``, ...): see ``export_text_classifier``,
            ``export_token_classifier``, ``export_span_qa``, ``export_translator``,
            ``export_causal_lm``.

    Returns:
        ``export_dir``.

    Raises:
        TypeError: a model of another type (the supported ones are named).
        ValueError: a task model without a preprocessor.

    Example:
    >>> import tensorflow as tf
    >>> from tfmodels import BertClassifier, BertConfig, BertEncoder
    >>> from tfmodels.text import BertPreprocessor, BertTokenizer
    >>> tokenizer = BertTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"])
    >>> model = BertClassifier(
    ...     BertEncoder(BertConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1,
    ...                            num_attention_heads=2, intermediate_size=16)),
    ...     num_classes=2, preprocessor=BertPreprocessor(tokenizer, sequence_length=8))
    >>> import tempfile
    >>> export_dir = export(model, tempfile.mkdtemp() + "/1")
    >>> served = tf.saved_model.load(export_dir).signatures["predict_text"]
    >>> served(text=tf.constant(["good film"]))["probabilities"].shape
    TensorShape([1, 2])
    """
    exporters = _exporters()
    for model_class, exporter, _ in exporters:
        if isinstance(model, model_class):
            return exporter(model, export_dir, **options)
    supported = "; ".join(f"{cls.__name__} ({what})" for cls, _, what in exporters)
    hint = ""
    if type(model).__name__ == "Seq2SeqTransformer":
        hint = (
            " (wrap a Seq2SeqTransformer as Translator(model, source_tokenizer, target_tokenizer))"
        )
    raise TypeError(f"export does not know {type(model).__name__}{hint}; it exports: {supported}")


__all__ = ["export"]
