"""examples.text_vae: its flags, and the --smoke run end to end (MiniLM, Rotten Tomatoes)."""

import json

import numpy as np
import pytest

from tfmodels.examples import text_vae

KEYS = ("recon_nll", "kl", "elbo_ppl", "lm_ppl", "active_units", "probe_acc_latent",
        "probe_acc_minilm")


def test_a_bad_flag_value_is_named(capsys):
    with pytest.raises(SystemExit) as exit_info:
        text_vae.main(["--latent-dim", "0"])
    assert exit_info.value.code == 2
    assert "argument --latent-dim: must be > 0, got 0" in capsys.readouterr().err


def test_linear_probe_separates_separable_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5))
    y = (x[:, 0] - 0.5 * x[:, 3] > 0).astype(int)
    assert text_vae.linear_probe(x[:300], y[:300], x[300:], y[300:]) > 0.95
    assert 0.3 < text_vae.linear_probe(x[:300], rng.integers(0, 2, 300), x[300:], y[300:]) < 0.7


@pytest.mark.e2e
def test_smoke_run_prints_one_json_object_with_the_numbers(capsys, tmp_path):
    output = tmp_path / "result.json"
    text_vae.main(["--smoke", "--output", str(output)])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(KEYS) <= set(result)
    assert np.isfinite(result["elbo_ppl"]) and np.isfinite(result["lm_ppl"])
    # The bound includes the KL, which is positive, so it is above exp(recon per token).
    assert result["kl"] > 0 and result["elbo_ppl"] > 1
    assert 0 <= result["active_units"] <= 8
    for key in ("probe_acc_latent", "probe_acc_minilm"):
        assert 0 <= result[key] <= 1
    saved = json.loads(output.read_text())
    assert saved["history"]["vae"]["recon_nll"] and len(saved["examples"]["interpolation"]) == 5
