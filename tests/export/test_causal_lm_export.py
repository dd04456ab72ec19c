"""tfmodels.export.export_causal_lm: a tiny random CausalLM with its BPE tokenizer, exported for TF Serving.

Checks the `generate` / `sample` contract against `CausalLM.generate`, seeded per-row sampling, the errors
for bad input, the warmup file, loading where `tensorflow_text` cannot be imported, `python -m
serving.server` over gRPC and REST with batching, and the example's --smoke path.
"""

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf

from tfmodels import generation
from tfmodels.examples.generate import tiny_causal_lm
from tfmodels.export import read_warmup_requests, signatures
from tfmodels.export.causal_lm import export_causal_lm

MODEL_NAME = "lm"
MAX_NEW = 6
PROMPTS = ["Hello there", "A", "Un café, s'il vous plaît"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(export_dir, model, loaded SavedModel)."""
    model = tiny_causal_lm(seed=1, sequence_length=32)
    export_dir = str(tmp_path_factory.mktemp("export") / MODEL_NAME / "1")
    export_causal_lm(model, export_dir, max_new_tokens=MAX_NEW, warmup_prompts=PROMPTS[:2],
                     model_name=MODEL_NAME)
    return export_dir, model, tf.saved_model.load(export_dir)


def _expected(model, prompts, limits, **options):
    """(completions, token counts) from the model itself: ids up to the first end token."""
    inputs = model.preprocessor.generate_preprocess(prompts)
    ids = generation.generate(model, inputs, options.pop("sampler", "greedy"), MAX_NEW,
                              row_max_new_tokens=limits, **options).numpy()
    counts = [int(np.argmax(np.isin(row, model.end_token_ids))) if np.isin(row, model.end_token_ids).any()
              else len(row) for row in ids]
    texts = [model.preprocessor.tokenizer.detokenize(tf.constant([row[:n]]))[0].numpy()
             .decode("utf-8", errors="replace") for row, n in zip(ids, counts)]
    return texts, counts


def _call(loaded, signature, **inputs):
    out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return ([t.decode("utf-8") for t in out[signatures.COMPLETION_OUTPUT].numpy()],
            out[signatures.NUM_GENERATED_TOKENS_OUTPUT].numpy().tolist())


def test_generate_gives_the_models_greedy_completions(exported):
    _, model, loaded = exported
    limits = [MAX_NEW, 2, 4]
    texts, counts = _call(loaded, signatures.GENERATE_SIGNATURE, prompt=PROMPTS, max_new_tokens=limits)
    assert (texts, counts) == _expected(model, PROMPTS, limits)
    assert all(n <= limit for n, limit in zip(counts, limits))
    # The same as CausalLM.generate on strings (end token and prompt dropped).
    assert texts[0] == model.generate(PROMPTS[0], MAX_NEW)
    spec = loaded.signatures[signatures.GENERATE_SIGNATURE].structured_input_signature[1]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in spec.items()} == {
        signatures.PROMPT_INPUT: (tf.string, [None]), signatures.MAX_NEW_TOKENS_INPUT: (tf.int32, [None])}


def test_sample_is_seeded_per_row(exported):
    _, model, loaded = exported
    inputs = dict(prompt=PROMPTS, max_new_tokens=[MAX_NEW] * 3, temperature=[1.5, 2.0, 0.7],
                  top_p=[1.0, 0.9, 0.5], seed=np.array([7, 8, 9], "int64"))
    first = _call(loaded, signatures.SAMPLE_SIGNATURE, **inputs)
    assert first == _call(loaded, signatures.SAMPLE_SIGNATURE, **inputs)
    assert first == _expected(model, PROMPTS, [MAX_NEW] * 3, sampler=generation.TopP(),
                              seed=np.array([7, 8, 9], "int64"), temperature=[1.5, 2.0, 0.7],
                              top_p=[1.0, 0.9, 0.5])
    # Row 1 alone decodes as it did next to the others.
    alone = _call(loaded, signatures.SAMPLE_SIGNATURE, prompt=PROMPTS[1:2], max_new_tokens=[MAX_NEW],
                  temperature=[2.0], top_p=[0.9], seed=np.array([8], "int64"))
    assert alone == ([first[0][1]], [first[1][1]])


@pytest.mark.parametrize("signature, inputs, message", [
    ("generate", dict(prompt=["ok", ""], max_new_tokens=[2, 2]), "prompt must not be empty"),
    ("generate", dict(prompt=[b"\xff\xfe bad"], max_new_tokens=[2]), "prompt is not valid UTF-8"),
    ("generate", dict(prompt=["x" * 40], max_new_tokens=[2]), "longer than the context of 32 tokens"),
    ("generate", dict(prompt=["ok"], max_new_tokens=[0]), r"max_new_tokens must be in \[1, 6\]"),
    ("generate", dict(prompt=["ok"], max_new_tokens=[7]), r"max_new_tokens must be in \[1, 6\]"),
    ("generate", dict(prompt=["ok", "a"], max_new_tokens=[2]), "max_new_tokens needs one value per prompt"),
    ("sample", dict(prompt=["ok"], max_new_tokens=[2], temperature=[0.0], top_p=[0.9],
                    seed=np.array([1], "int64")), "temperature must be > 0"),
    ("sample", dict(prompt=["ok"], max_new_tokens=[2], temperature=[1.0], top_p=[1.5],
                    seed=np.array([1], "int64")), r"top_p must be in \(0, 1\]"),
])
def test_bad_input_is_an_invalid_argument_error_naming_it(exported, signature, inputs, message):
    _, _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _call(loaded, signature, **inputs)


def test_warmup_file_has_both_signatures(exported):
    export_dir, _, _ = exported
    requests = [log.predict_log.request for log in read_warmup_requests(export_dir)]
    assert [r.model_spec.signature_name for r in requests] == [
        signatures.GENERATE_SIGNATURE, signatures.SAMPLE_SIGNATURE]
    assert all(r.model_spec.name == MODEL_NAME for r in requests)
    assert set(requests[1].inputs) == {signatures.PROMPT_INPUT, signatures.MAX_NEW_TOKENS_INPUT,
                                       signatures.TEMPERATURE_INPUT, signatures.TOP_P_INPUT,
                                       signatures.SEED_INPUT}


def test_loads_and_generates_without_tensorflow_text(exported):
    export_dir, _, loaded = exported
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["tensorflow_text"] = None  # any import of it now fails
        import tensorflow as tf
        loaded = tf.saved_model.load({export_dir!r})
        out = loaded.signatures["generate"](prompt=tf.constant({PROMPTS!r}),
                                            max_new_tokens=tf.constant([{MAX_NEW}] * 3))
        print(json.dumps([t.decode() for t in out["completion"].numpy()]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    expected, _ = _call(loaded, signatures.GENERATE_SIGNATURE, prompt=PROMPTS, max_new_tokens=[MAX_NEW] * 3)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


@pytest.mark.e2e
def test_served_over_grpc_and_rest_with_batching(exported, tmp_path):
    """`python -m serving.server --enable_batching`: concurrent gRPC Predict requests (merged by the
    batcher) and REST answer as the SavedModel does; bad input is INVALID_ARGUMENT / HTTP 400."""
    import grpc

    from serving.client import GrpcClient, RestClient, RestError
    from serving.process import ServerProcess

    export_dir, _, loaded = exported
    expected, counts = _call(loaded, signatures.GENERATE_SIGNATURE, prompt=PROMPTS,
                             max_new_tokens=[MAX_NEW] * 3)
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 4 }\nbatch_timeout_micros { value: 50000 }\n"
                      "num_batch_threads { value: 1 }\n")
    args = [f"--model_base_path={os.path.dirname(export_dir)}", f"--model_name={MODEL_NAME}",
            "--enable_batching", f"--batching_parameters_file={params}"]
    with ServerProcess(args, model_name=MODEL_NAME, rest=True, start_timeout=600).start() as server, \
            GrpcClient(server.grpc_target, timeout=300) as client:
        rest = RestClient(server.rest_url, timeout=300)

        def predict(i):
            out = client.predict(MODEL_NAME, {"prompt": np.array([PROMPTS[i].encode()]),
                                              "max_new_tokens": np.array([MAX_NEW], "int32")},
                                 signature_name=signatures.GENERATE_SIGNATURE)
            return out["completion"][0].decode(), int(out["num_generated_tokens"][0])

        with ThreadPoolExecutor(3) as pool:
            assert list(pool.map(predict, range(3))) == list(zip(expected, counts))
        outputs = rest.predict(MODEL_NAME, inputs={"prompt": PROMPTS[:1], "max_new_tokens": [MAX_NEW]},
                               signature_name=signatures.GENERATE_SIGNATURE)
        assert outputs["completion"] == expected[:1]
        with pytest.raises(RestError) as rest_error:
            rest.predict(MODEL_NAME, inputs={"prompt": [""], "max_new_tokens": [MAX_NEW]},
                         signature_name=signatures.GENERATE_SIGNATURE)
        assert rest_error.value.status == 400 and "prompt must not be empty" in str(rest_error.value)
        with pytest.raises(grpc.RpcError) as grpc_error:
            client.predict(MODEL_NAME, {"prompt": np.array([b"ok"]), "max_new_tokens": np.array([99], "int32")},
                           signature_name=signatures.GENERATE_SIGNATURE)
        assert grpc_error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_new_tokens must be in" in grpc_error.value.details()


def test_example_smoke_run_prints_a_completion(capsys):
    from tfmodels.examples import generate as example

    result = example.main(["Hello", "--smoke", "--chat", "--max-new-tokens", "4"])
    assert result["prompt"].endswith("<|im_start|>assistant\n")
    assert result["completion"] == example.tiny_causal_lm().generate(result["prompt"], 4)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result


@pytest.mark.e2e
def test_example_smoke_run_exports_the_same_completion(tmp_path):
    from tfmodels.examples import generate as example

    result = example.main(["Hello", "--smoke", "--max-new-tokens", "4", "--sampler", "top_p",
                           "--export-dir", str(tmp_path / "lm" / "1")])
    assert result["export_matches_greedy"], result


@pytest.mark.e2e
def test_int8_weights_export_like_float(tmp_path):
    """A model quantized first (``model.quantize("int8")``) exports int8 kernels that generate as it does."""
    model = tiny_causal_lm(seed=2, sequence_length=16)
    model.quantize("int8")
    export_dir = export_causal_lm(model, str(tmp_path / "lm" / "1"), max_new_tokens=4, warmup_prompts=())
    loaded = tf.saved_model.load(export_dir)
    texts, counts = _call(loaded, signatures.GENERATE_SIGNATURE, prompt=PROMPTS[:2], max_new_tokens=[4, 4])
    inputs = model.preprocessor.generate_preprocess(PROMPTS[:2])
    ids = generation.generate(model, inputs, "greedy", MAX_NEW, row_max_new_tokens=[4, 4]).numpy()
    assert texts == model.preprocessor.generate_postprocess(ids)
    assert any(v.dtype == tf.int8 for v in loaded.variables)
