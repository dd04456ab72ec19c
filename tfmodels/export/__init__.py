"""Export trained models, tokenization included, as TF Serving SavedModels (core TF ops only).

- `export(model, export_dir)`: one call for every task below, with the model's own preprocessor
  (`auto`); the per-task exporters remain for their options.
- `signatures`: the serving contract (signature names, input/output keys, warmup file), defined once.
- `export_text_classifier` writes the SavedModel: `serving_default` and `predict_text` (raw strings in),
  `predict_examples` (serialized tf.Example in) and `classify` (TF Serving's Classify API), plus a warmup file.
- `export_token_classifier` (`extract_entities`) and `export_span_qa` (`answer_question`) do the same for NER
  and span QA, with windowing and decoding inside the graph.
- `export_litert` writes the classifier's token-id model as a LiteRT `.tflite` file for on-device use;
  `LiteRTClassifier` runs it.
- `Translator` / `export_translator` (`seq2seq`): text in, text out for a `Seq2SeqTransformer`
  (`serving_default`: `texts` -> `translations`).
- `export_causal_lm` (`causal_lm`): text generation for a `CausalLM` (`generate` greedy and `sample`
  signatures: `prompt`, `max_new_tokens` [, `temperature`, `top_p`, `seed`] -> `completion`,
  `num_generated_tokens`), tokenizer and the XLA decoding loop inside.
- `make_examples` builds the serialized tf.Examples those signatures (and clients) take.
- `write_warmup_requests` writes `assets.extra/tf_serving_warmup_requests` for an existing export.

Nothing here imports TFX or a serving stack; the warmup file needs the `tensorflow-serving-api` protos,
imported only when a warmup file is written.
"""

from tfmodels.export import signatures
from tfmodels.export.auto import export
from tfmodels.export.causal_lm import export_causal_lm
from tfmodels.export.classifier import (
    CLASSIFY_INPUT,
    CLASSIFY_METHOD_NAME,
    CLASSIFY_SIGNATURE,
    EXAMPLES_INPUT,
    PREDICT_EXAMPLES_SIGNATURE,
    TEXT_SIGNATURE,
    ClassifierSignatures,
    TextPreprocess,
    export_text_classifier,
    text_preprocess,
)
from tfmodels.export.examples import make_examples
from tfmodels.export.litert import LiteRTClassifier, export_litert
from tfmodels.export.seq2seq import Translator, export_translator
from tfmodels.export.signatures import WARMUP_FILE
from tfmodels.export.span_qa import export_span_qa
from tfmodels.export.token_classifier import export_token_classifier
from tfmodels.export.warmup import read_warmup_requests, write_warmup_requests

__all__ = [
    "CLASSIFY_INPUT",
    "CLASSIFY_METHOD_NAME",
    "CLASSIFY_SIGNATURE",
    "EXAMPLES_INPUT",
    "PREDICT_EXAMPLES_SIGNATURE",
    "TEXT_SIGNATURE",
    "WARMUP_FILE",
    "ClassifierSignatures",
    "LiteRTClassifier",
    "TextPreprocess",
    "Translator",
    "export",
    "export_causal_lm",
    "export_litert",
    "export_span_qa",
    "export_text_classifier",
    "export_token_classifier",
    "export_translator",
    "make_examples",
    "signatures",
    "read_warmup_requests",
    "text_preprocess",
    "write_warmup_requests",
]
