"""Benchmark: latency and memory of one NER / span-QA request by request size, up to the exported limits.

Builds a small BERT token classifier (NER, windows of 128, stride 64) and span-QA model (windows of 384, doc
stride 128), hidden 64, 2 layers, random weights (cost does not depend on what the model learned), exports both
with `export_token_classifier` / `export_span_qa` (default limits: 100,000 characters per text, 1,024 windows
per request, 16 windows per model call), then for each request size calls the exported signature in a fresh
process (the SavedModel as the server runs it) and reports the median latency of `--repeats` calls and the
peak RSS growth over the RSS after loading (VmHWM, reset through /proc/self/clear_refs; Linux), in MB and in bytes per request byte. Sizes: one
text of 1 K ... 100 K characters; and the largest text count one request may send (1,024 short texts for NER).
A size past the limit is refused (INVALID_ARGUMENT) in milliseconds.

The "peer" is linearity itself: `time_per_kb_ratio` = (latency per KB at the largest size) / (latency per KB at
8 KB); near 1 means linear. The last line printed is one JSON object.

    .venv/bin/python bench/serving_text.py [--sizes 1000,8000,32000,100000] [--repeats 3]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "anna lives in paris and the new york of a to is what who zoe".split()

_CHILD = r"""
import json, os, random, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
kind, path, chars, count, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(0)
words = sys.argv[6].split()
text = ""
while len(text) < chars:
    text += rng.choice(words) + " "
text = text[:chars]
loaded = tf.saved_model.load(path)
if kind == "ner":
    f = loaded.signatures["extract_entities"]
    call = lambda: f(text=tf.constant([text] * count))
    f(text=tf.constant(["anna lives in paris"]))
else:
    f = loaded.signatures["answer_question"]
    call = lambda: f(question=tf.constant(["who lives in paris"] * count), context=tf.constant([text] * count))
    f(question=tf.constant(["who"]), context=tf.constant(["anna lives in paris"]))
def status_mb(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024
with open("/proc/self/clear_refs", "w") as clear:  # reset the peak (VmHWM) to the current RSS: loading is not counted
    clear.write("5")
base = status_mb("VmRSS:")
times, outcome = [], "ok"
for _ in range(repeats):
    start = time.perf_counter()
    try:
        call()
    except tf.errors.InvalidArgumentError as e:
        outcome = "INVALID_ARGUMENT"
    times.append(time.perf_counter() - start)
peak = status_mb("VmHWM:")
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "rss_growth_mb": max(peak - base, 0.0),
                  "outcome": outcome}))
"""


def build(out: str) -> None:
    import keras

    import tfmodels
    from tfmodels import BertConfig, BertEncoder
    from tfmodels.export import export_span_qa, export_token_classifier
    from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor
    from tfmodels.models.bert.token_classifier import (
        BertTokenClassifier,
        TokenClassifierPreprocessor,
    )
    from tfmodels.text import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS))
    keras.utils.set_random_seed(7)

    def encoder(length):
        return BertEncoder(BertConfig(vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=128, max_position_embeddings=length))

    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    ner = BertTokenClassifier(encoder(128), len(tags), dropout=0.0, preprocessor=TokenClassifierPreprocessor(
        BertTokenizer(vocab), tags, sequence_length=128, stride=64))
    ner.predict_entities(["anna lives in paris"])
    export_token_classifier(os.path.join(out, "ner", "1"), ner)
    qa = tfmodels.BertSpanQA(encoder(384), preprocessor=SpanQAPreprocessor(
        BertTokenizer(vocab), sequence_length=384, doc_stride=128, max_query_length=64))
    qa.answer(["who"], ["anna lives in paris"])
    export_span_qa(os.path.join(out, "qa", "1"), qa)


def measure(kind: str, path: str, chars: int, count: int, repeats: int) -> dict:
    result = subprocess.run([sys.executable, "-c", _CHILD, kind, path, str(chars), str(count), str(repeats),
                             " ".join(WORDS)], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row.update(kind=kind, chars=chars, texts=count)
    row["bytes_per_request_byte"] = row["rss_growth_mb"] * 2 ** 20 / max(chars * count, 1)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,8000,32000,100000", help="characters of the one text")
    p.add_argument("--over-limit", type=int, default=1_000_000, help="a text past the limit (refused)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--export-dir", default="", help="reuse (or build once into) this directory")
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    random.seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        out = args.export_dir or scratch
        if not os.path.isdir(os.path.join(out, "qa", "1")):
            build(out)
        for kind in ("ner", "qa"):
            path = os.path.join(out, kind, "1")
            for chars in [int(s) for s in args.sizes.split(",")] + [args.over_limit]:
                rows.append(measure(kind, path, chars, 1, args.repeats))
                print(json.dumps(rows[-1]), flush=True)
            if kind == "ner":  # the most texts a request may send: one window each, 1,024 windows
                rows.append(measure(kind, path, 40, 1024, args.repeats))
                print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for kind in ("ner", "qa"):
        single = [r for r in rows if r["kind"] == kind and r["texts"] == 1 and r["outcome"] == "ok"]
        per_kb = {r["chars"]: r["seconds"] / (r["chars"] / 1000) for r in single}
        largest = max(per_kb)
        summary[f"{kind}_time_per_kb_ratio"] = round(per_kb[largest] / per_kb.get(8000, per_kb[min(per_kb)]), 2)
        summary[f"{kind}_largest_seconds"] = round(next(r["seconds"] for r in single if r["chars"] == largest), 2)
        summary[f"{kind}_largest_rss_growth_mb"] = round(
            next(r["rss_growth_mb"] for r in single if r["chars"] == largest), 1)
        refused = [r for r in rows if r["kind"] == kind and r["outcome"] == "INVALID_ARGUMENT"]
        summary[f"{kind}_over_limit_refused_seconds"] = round(refused[0]["seconds"], 3) if refused else None
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
