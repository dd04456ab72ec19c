"""The serving contract: every name a client, TF Serving or the TFX pipeline relies on, defined once.

Signature names, their input and output keys, TF Serving's method names and the warmup file's place inside
a SavedModel. Code outside this repository (TF Serving clients, the pipeline's infra-validation, Evaluator
configs) depends on these strings, so they live here and nowhere else. This module imports nothing of ours:
exporters, `tfx_pipeline` and the tests import from it. `serving/` stays independent of tfmodels by design and
hard-codes the few names it needs; a test checks they equal the ones here.
"""

import os

# ---- TF Serving's own names (tensorflow_serving/servables/tensorflow/classifier.cc, signature_constants) ----
DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
# The input key Classify/Regress feed serialized tf.Examples to, and the outputs Classify reads.
CLASSIFY_INPUT = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"

# Warmup requests TF Serving replays when it loads a version (model_servers/server_core.cc).
WARMUP_DIR = "assets.extra"
WARMUP_FILE = os.path.join(WARMUP_DIR, "tf_serving_warmup_requests")

# ---- Text classifier (tfmodels.export.classifier) ----
# `serving_default` and `predict_text`: raw strings keyed by text feature; `predict_examples`: serialized
# tf.Example in (what TFMA's Evaluator feeds; `serving_default` was this signature before issue 33); `classify`.
EXAMPLES_INPUT = "examples"
TEXT_SIGNATURE = "predict_text"
PREDICT_EXAMPLES_SIGNATURE = "predict_examples"
CLASSIFY_SIGNATURE = "classify"
PROBABILITIES_OUTPUT = "probabilities"
LABEL_OUTPUT = "label"
LABEL_NAME_OUTPUT = "label_name"

# ---- Token classifier / NER ----
# `extract_entities`: `text` DT_STRING [batch] -> entities padded per row with "" / -1 / 0.
ENTITIES_SIGNATURE = "extract_entities"
ENTITIES_TEXT_INPUT = "text"
ENTITY_TEXT_OUTPUT = "entity_text"
ENTITY_TYPE_OUTPUT = "entity_type"
ENTITY_START_OUTPUT = "entity_start"
ENTITY_END_OUTPUT = "entity_end"
ENTITY_SCORE_OUTPUT = "entity_score"
NUM_ENTITIES_OUTPUT = "num_entities"
# With a words feature (the pipeline's Evaluator): `tag_examples` takes serialized tf.Examples holding the
# whitespace-separated words and returns one predicted tag per word, joined by spaces (it was `serving_default`
# until issue 33: `serving_default` is `extract_entities`, raw text in, as every task's).
TAG_EXAMPLES_SIGNATURE = "tag_examples"
PREDICTED_TAGS_OUTPUT = "predicted_tags"

# ---- Span question answering ----
# `answer_question`: `question`, `context` DT_STRING [batch] -> one answer per row.
ANSWER_SIGNATURE = "answer_question"
QUESTION_INPUT = "question"
CONTEXT_INPUT = "context"
ANSWER_TEXT_OUTPUT = "answer_text"
ANSWER_START_OUTPUT = "answer_start"
ANSWER_END_OUTPUT = "answer_end"
ANSWER_SCORE_OUTPUT = "score"
# With example features (the pipeline's Evaluator): `answer_examples` takes serialized tf.Examples holding the
# question and context features, with `answer_question`'s outputs (`serving_default` until issue 33).
ANSWER_EXAMPLES_SIGNATURE = "answer_examples"

# ---- Text generation (tfmodels.export.causal_lm; general names for any generating model) ----
# `generate` (greedy): `prompt` DT_STRING [batch], `max_new_tokens` DT_INT32 [batch] ->
# `completion` DT_STRING [batch] (prompt excluded, end token dropped), `num_generated_tokens` DT_INT64.
# `sample`: the same inputs plus `temperature`, `top_p` DT_FLOAT [batch] and `seed` DT_INT64 [batch].
GENERATE_SIGNATURE = "generate"
SAMPLE_SIGNATURE = "sample"
PROMPT_INPUT = "prompt"
MAX_NEW_TOKENS_INPUT = "max_new_tokens"
TEMPERATURE_INPUT = "temperature"
TOP_P_INPUT = "top_p"
SEED_INPUT = "seed"
COMPLETION_OUTPUT = "completion"
NUM_GENERATED_TOKENS_OUTPUT = "num_generated_tokens"
# With a prompt feature (the pipeline's Evaluator): serialized tf.Examples (`examples`) -> the greedy `completion`
# (and `num_generated_tokens`) of each example's prompt, at the export's most new tokens.
GENERATE_EXAMPLES_SIGNATURE = "generate_examples"

# ---- Translator (tfmodels.export.seq2seq); its names predate the general ones and stay ----
# `serving_default`: `texts` DT_STRING [batch] -> `translations` DT_STRING [batch].
TRANSLATE_SIGNATURE = DEFAULT_SIGNATURE
TRANSLATE_INPUT = "texts"
TRANSLATE_OUTPUT = "translations"
# With a source feature (the pipeline's Evaluator): serialized tf.Examples (`examples`) -> `translations`.
TRANSLATE_EXAMPLES_SIGNATURE = "translate_examples"
