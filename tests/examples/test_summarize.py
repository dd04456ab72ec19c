import json

import numpy as np

from tfmodels.examples import summarize
from tfmodels.examples.generate import tiny_causal_lm


def test_smoke_run_scores_three_systems_on_the_same_papers(tmp_path, capsys):
    output = tmp_path / "result.json"
    result = summarize.main(["--smoke", "--output", str(output)])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert json.loads(output.read_text()) == result
    assert result["test_papers"] == 2 and result["train_papers"] == 2
    assert set(result["rouge"]) == {"lead_sentence", "zero_shot", "lora"}
    # The lead sentence shares words with the references; every score is a percentage.
    assert result["rouge"]["lead_sentence"]["rouge1"] > 0
    for scores in result["rouge"].values():
        assert set(scores) == {"rouge1", "rouge2", "rougeL"}
        assert all(0 <= v <= 100 for v in scores.values())
    # Only the rank-8 adapters trained: per block, query 16 -> 2 heads x 8 and value 16 -> 1 x 8.
    assert result["lora"]["trainable_weights"] == 2 * ((16 * 8 + 8 * 16) + (16 * 8 + 8 * 8))
    assert np.isfinite(result["lora"]["loss_last_epoch"])
    assert result["command"] == "python -m tfmodels.examples.summarize --smoke --output " + str(
        output)


def test_rouge_is_100_for_the_reference_and_0_for_unrelated_text():
    scores = summarize.rouge(["The parser is slow.", "zzz"], ["The parser is slow.", "Fast."])
    assert scores == {"rouge1": 50.0, "rouge2": 50.0, "rougeL": 50.0}


def test_truncate_tokens_keeps_the_first_tokens():
    tokenizer = tiny_causal_lm().preprocessor.tokenizer  # one token per byte
    assert summarize.truncate_tokens(tokenizer, "abcdef", 4) == "abcd"
    assert summarize.truncate_tokens(tokenizer, "abc", 4) == "abc"


def test_generate_after_enable_lora_uses_the_adapters():
    """Regression: a decode function traced before enable_lora must not be reused after it."""
    model = tiny_causal_lm()
    x = {"token_ids": np.array([[5, 6, 7, 8]], "int32"), "padding_mask": np.ones((1, 4), "int32")}
    before = model.generate(x, 4, jit_compile=False)
    model.enable_lora(4)
    rng = np.random.default_rng(0)
    for variable in model.backbone.lora_weights().values():
        variable.assign(rng.normal(size=variable.shape) * 3)
    after = model.generate(x, 4, jit_compile=False)
    first = int(np.argmax(model(x)[0, -1]))
    assert after[0, 0] == first and not np.array_equal(before, after)
