"""The text-generation task's parts on real rows: Transform's tokens and loss mask, the row check, ROUGE through
TFMA, the options and flags, the chat template and the Kubeflow V2 compile. The whole run is the
`text_generation` case of `test_tasks_e2e.py`."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfx_pipeline import row_checks
from tfx_pipeline.hparams import ModelHParams
from tfx_pipeline.tasks import text_generation as tg

TITLE = "Exploring Correlation of Dependency Relation Paths for Answer Extraction"
SUMMARY = "Surface word-level ranking methods struggle with large answer candidate sets."


def _tokenizer():
    return tg.preprocessor(tg.TINY, 8).tokenizer


def _text(ids):
    return _tokenizer().detokenize(tf.ragged.constant([list(ids)])).numpy()[0].decode()


def test_transform_writes_the_models_tokens_and_a_loss_mask_over_the_target_only():
    prefix, suffix = tg.chat_template_parts(tg.preprocessor(tg.TINY, 8))
    options = tg.TextGenerationOptions(encoder=tg.TINY, chat_template=True, prompt_prefix=prefix,
                                       prompt_suffix=suffix)
    hparams = ModelHParams(task=tg.NAME, options=options, max_seq_length=200, batch_size=2, learning_rate=1e-3)
    out = tg.preprocessing_fn({"prompt": tf.constant([[TITLE], ["Short"]]),
                               "target": tf.constant([[SUMMARY], ["x" * 300]])}, hparams)
    ids, padding, labels, mask = (out[k].numpy() for k in (tg.TOKEN_IDS, tg.PADDING_MASK, tg.LABELS, tg.LOSS_MASK))
    assert ids.shape == padding.shape == labels.shape == mask.shape == (2, 200)
    assert ids.dtype == labels.dtype == np.int64 and mask.dtype == np.float32
    np.testing.assert_array_equal(labels[:, :-1], ids[:, 1:])  # the next token
    end = _tokenizer().token_to_id("<|im_end|>")
    real = padding[0].sum()
    assert _text(ids[0, :real]) == prefix + TITLE + suffix + SUMMARY + "<|im_end|>"
    # The loss covers the summary and its end token, nothing of the templated prompt.
    assert _text(labels[0][mask[0] == 1][:-1]) == SUMMARY and labels[0][mask[0] == 1][-1] == end
    assert mask[0].sum() == len(SUMMARY.encode()) + 1
    # Too long: cut at the training length, every target token kept there still in the loss.
    prompt_tokens = int(_tokenizer().tokenize([prefix + "Short" + suffix]).row_lengths()[0])
    assert padding[1].sum() == 200 and mask[1].sum() == 201 - prompt_tokens


def _check(max_seq_length=60, **options):
    config = tg.row_check(tg.TextGenerationOptions(**{"encoder": tg.TINY, "max_seq_length": max_seq_length, **options}))
    return row_checks.check_from_config(config)  # the task's check is found by name, as ExampleValidator does


def test_row_check_names_empty_non_utf8_and_too_long_rows():
    check = _check()
    assert check({"prompt": ["Parsing"], "target": ["It is slow."]}) == []
    assert check({"prompt": ["Parsing"], "target": ["  "]}) == ["target is empty"]
    # ExampleValidator reads bytes that are not UTF-8 as U+FFFD.
    assert check({"prompt": [b"caf\xe9".decode("utf-8", errors="replace")], "target": ["ok"]}) == [
        "prompt is not valid UTF-8"]
    # The tiny decoder's tokens are bytes: 30 + 31 = 61 positions, one more than the training length.
    assert check({"prompt": ["p" * 30], "target": ["t" * 30]}) == []
    assert check({"prompt": ["p" * 30], "target": ["t" * 31]}) == [
        "prompt + target are 61 tokens, longer than the training length of 60 (--max-seq-length)"]
    # The chat template's tokens count too.
    templated = _check(prompt_prefix="<|im_start|>user\n", prompt_suffix="<|im_end|>\n")
    assert templated({"prompt": ["p" * 30], "target": ["t" * 30]})[0].startswith("prompt + target are 68 tokens")


def test_rouge_through_tfma_equals_rouge_score():
    import pandas as pd
    import tensorflow_model_analysis as tfma

    from tfmodels.metrics import rouge_scores

    references = ["The parser is slow on long sentences.", "Existing NER systems miss rare entities.",
                  "Lexicons are hard to use in Chinese NER.", "Query expansion needs better term models."]
    predictions = ["The parsers are slow on long inputs.", "NER systems often miss entities that are rare.",
                   "Chinese NER lexicons", "Nothing in common here."]
    spec = tfma.MetricConfig(class_name="RougeScores", module="tfx_pipeline.metrics")
    config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="label", prediction_key="prediction")],
                             metrics_specs=[tfma.MetricsSpec(metrics=[spec])], slicing_specs=[tfma.SlicingSpec()])
    result = tfma.analyze_raw_data(pd.DataFrame({"label": references, "prediction": predictions}), config)
    (_, metrics), = [(k, v) for k, v in result.slicing_metrics if k == ()]
    got = {name: value["doubleValue"] for name, value in metrics[""][""].items()}
    expected = rouge_scores(predictions, references)
    assert 0.2 < expected["rougeL"] < 0.8 and expected["rouge2"] < expected["rouge1"]  # not a trivial case
    for name in ("1", "2", "L"):
        assert got[f"rouge_{name.lower()}"] == pytest.approx(expected[f"rouge{name}"], abs=1e-6)



def test_the_gate_is_rouge_l_and_the_options_are_checked():
    from tfx_pipeline.tasks.base import gate

    assert gate(tg.eval_config(tg.TextGenerationOptions(min_rouge_l=0.25))) == ("rouge_l", 0.25)
    with pytest.raises(ValueError, match="encoder must be tiny, smollm2 or a .gguf file, got 'gpt9'"):
        tg.TextGenerationOptions(encoder="gpt9")
    with pytest.raises(ValueError, match="lora_rank must be >= 0"):
        tg.TextGenerationOptions(lora_rank=-1)
    assert tg.TextGenerationOptions(lora_rank=0).summary() == "decoder smollm2, full fine-tuning"  # the default
    # Transform and Trainer read the options without the gate: a new threshold re-runs the Evaluator only.
    options = tg.TextGenerationOptions(min_rouge_l=0.4, max_seq_length=64)
    assert options.without_gate() == tg.TextGenerationOptions(max_seq_length=64)
    assert tg.TextGenerationOptions.from_json(json.loads(json.dumps(options.to_json()))) == options


def test_chat_template_parts_are_the_models_template_around_the_prompt():
    from tfmodels.models.llama import CausalLMPreprocessor

    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tiny = tg.preprocessor(tg.TINY, 8)
    model_template = CausalLMPreprocessor(tiny.tokenizer, 8, end_token_ids=tiny.end_token_ids,
                                          chat_template="<|im_start|>system\nBe brief.<|im_end|>\n" + template)
    assert tg.chat_template_parts(model_template) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")
    assert tg.chat_template_parts(tiny) == ("<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n")


def test_bad_flags_are_refused_before_anything_runs(tmp_path, capsys):
    from tfx_pipeline.__main__ import main

    for flags, message in ((["--encoder", "gpt9"], "text_generation fine-tunes a decoder"),
                           (["--lora-rank", "-2"], "--lora-rank: must be >= 0")):
        with pytest.raises(SystemExit):
            main(["run", "--root", str(tmp_path), "--data-root", str(tmp_path), "--task", "text_generation", *flags])
        assert message in capsys.readouterr().err


def test_compile_kubeflow_v2_for_text_generation(tmp_path):
    from tfx_pipeline.__main__ import main

    data = tmp_path / "data"
    data.mkdir()
    (data / "papers.csv").write_text(f"prompt,target\n{TITLE},{SUMMARY}\n")
    output = tmp_path / "pipeline.json"
    assert main(["compile", "--engine", "kubeflow-v2", "--output", str(output), "--root", str(tmp_path),
                 "--data-root", str(data), "--task", "text_generation", "--pipeline-name", "writer",
                 "--chat-template", "--max-seq-length", "96"]) == 0
    text = output.read_text()
    assert "RougeScores" in text and "generate_examples" in text and "text_generation_check" in text
    assert "<|im_start|>assistant" in text  # the template's text around a prompt, in the options
