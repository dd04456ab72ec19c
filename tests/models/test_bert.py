import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from testlib import run_model_test

import tfmodels
from tfmodels import (
    BertClassifier,
    BertConfig,
    BertEncoder,
    BertPretrainer,
    BertSpanQA,
    BertTokenClassifier,
)

TINY = dict(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=32,
)


def tiny_config(**overrides):
    return BertConfig(**{**TINY, **overrides})


def test_config_reads_google_and_hf_json(tmp_path):
    google = dict(TINY, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                  type_vocab_size=2, initializer_range=0.02)
    (tmp_path / "bert_config.json").write_text(json.dumps(google))
    hf = dict(google, model_type="bert", layer_norm_eps=1e-7, architectures=["BertModel"], pad_token_id=0)
    (tmp_path / "config.json").write_text(json.dumps(hf))
    assert BertConfig.from_json_file(tmp_path / "bert_config.json") == BertConfig(**google)
    from_hf = BertConfig.from_json_file(tmp_path / "config.json")
    assert from_hf.layer_norm_eps == 1e-7 and from_hf.hidden_size == 32


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"hidden_size": 30}, "divisible"),
        ({"num_hidden_layers": 0}, "num_hidden_layers"),
        ({"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
    ],
)
def test_config_rejects_bad_values(fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**fields)


def test_config_rejects_other_model_types():
    with pytest.raises(ValueError, match="model_type"):
        BertConfig.from_dict(dict(TINY, model_type="roberta"))


def test_encoder_outputs_and_padding_invariance(random_bert_inputs):
    encoder = BertEncoder(tiny_config())
    x = random_bert_inputs(2, 10, 64, pad_from=[6, 10])
    out = encoder(x)
    assert out["sequence_output"].shape == (2, 10, 32) and out["pooled_output"].shape == (2, 32)
    noisy = {k: v.copy() for k, v in x.items()}
    noisy["token_ids"][0, 6:] = 7  # different ids under the padding
    out2 = encoder(noisy)
    np.testing.assert_allclose(out["sequence_output"][0, :6], out2["sequence_output"][0, :6], atol=1e-5)
    np.testing.assert_allclose(out["pooled_output"], out2["pooled_output"], atol=1e-5)
    # Padding a sequence further changes nothing for its real tokens.
    longer = random_bert_inputs(2, 10, 64, pad_from=[6, 10])
    shorter = {k: v[:, :6] for k, v in longer.items()}
    np.testing.assert_allclose(
        encoder(longer)["sequence_output"][0, :6], encoder(shorter)["sequence_output"][0], atol=1e-5
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_pooled_only_matches_the_full_pooled_output_and_gradients(norm_first, random_bert_inputs):
    import tensorflow as tf

    encoder = BertEncoder(tiny_config(norm_first=norm_first))
    x = random_bert_inputs(3, 10, 64, pad_from=[10, 6, 3])
    with tf.GradientTape(persistent=True) as tape:
        full = encoder(x)["pooled_output"]
        fast = encoder(x, pooled_only=True)
        full_loss, fast_loss = tf.reduce_sum(full**2), tf.reduce_sum(fast["pooled_output"] ** 2)
    assert list(fast) == ["pooled_output"]
    np.testing.assert_allclose(fast["pooled_output"], full, atol=1e-5)
    variables = encoder.trainable_variables
    for variable, a, b in zip(
        variables, tape.gradient(full_loss, variables), tape.gradient(fast_loss, variables)
    ):
        a, b = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        assert float(tf.reduce_max(tf.abs(a))) > 0, variable.path  # every weight is still trained
        np.testing.assert_allclose(b, a, atol=1e-5, err_msg=variable.path)
    # The classifier runs the pooled-only path; its logits are the head on the full pooled output.
    classifier = BertClassifier(encoder, num_classes=3)
    head = classifier.get_layer("logits")
    np.testing.assert_allclose(classifier(x), head(full), atol=1e-5)


def _task_data(task, x, rng):
    batch, length = x["token_ids"].shape
    if task is BertClassifier:
        return x, rng.integers(0, 3, batch), None
    if task is BertTokenClassifier:
        return x, rng.integers(0, 4, (batch, length)), x["padding_mask"]
    if task is BertSpanQA:
        return x, {"start_logits": rng.integers(0, 4, batch), "end_logits": rng.integers(4, 8, batch)}, None
    x = dict(x, masked_positions=rng.integers(1, length, (batch, 3)).astype("int32"))
    y = {"mlm_logits": rng.integers(0, 64, (batch, 3)), "nsp_logits": rng.integers(0, 2, batch)}
    return x, y, {"mlm_logits": np.ones((batch, 3)), "nsp_logits": np.ones(batch)}


TASKS = {
    BertClassifier: dict(num_classes=3),
    BertTokenClassifier: dict(num_classes=4),
    BertSpanQA: {},
    BertPretrainer: {},
}


@pytest.mark.parametrize("task", list(TASKS), ids=lambda t: t.__name__)
def test_task_trains_with_xla_and_round_trips(task, random_bert_inputs, tmp_path):
    rng = np.random.default_rng(0)
    x, y, sw = _task_data(task, random_bert_inputs(16, 12, 64, pad_from=[9] * 16), rng)
    model = task(BertEncoder(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)), **TASKS[task])
    model.compile(optimizer=keras.optimizers.Adam(5e-3), jit_compile=True)
    history = model.fit(x, y, sample_weight=sw, batch_size=8, epochs=12, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses  # it learns (memorises) the batch
    model.evaluate(x, y, sample_weight=sw, verbose=0)
    before = model.predict(x, verbose=0)

    path = str(tmp_path / "task.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is task and type(loaded.encoder) is BertEncoder
    after = loaded.predict(x, verbose=0)
    keras.tree.map_structure(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), before, after)
    # The compile settings came back too: training resumes without a new compile().
    loaded.fit(x, y, sample_weight=sw, batch_size=8, epochs=1, verbose=0)

    clone = task.from_config(model.get_config())
    assert clone.get_config() == model.get_config()


def test_fixed_length_batches_do_not_retrace(random_bert_inputs):
    model = BertClassifier(BertEncoder(tiny_config()), num_classes=2)
    model.compile(optimizer="adam", jit_compile=True)
    traces = []
    train_step = model.train_step

    def counting_train_step(data):
        traces.append(keras.tree.map_structure(lambda t: tuple(t.shape), data))  # tracing only
        return train_step(data)

    model.train_step = counting_train_step
    x = random_bert_inputs(24, 16, 64)
    model.fit(x, np.arange(24) % 2, batch_size=8, epochs=1, verbose=0)
    first_epoch_traces = len(traces)  # TF traces twice when the first call creates variables
    model.fit(x, np.arange(24) % 2, batch_size=8, epochs=3, verbose=0)  # 9 more steps, same shapes
    assert len(traces) == first_epoch_traces, traces
    # The counter does see retraces: a new sequence length compiles again.
    model.fit(random_bert_inputs(8, 12, 64), np.arange(8) % 2, batch_size=8, verbose=0)
    assert len(traces) == first_epoch_traces + 1


def test_span_decoding_respects_order_and_length():
    start = np.array([[0.0, 5.0, 0.0, 9.0, 0.0]])
    end = np.array([[0.0, 0.0, 8.0, 0.0, 0.0]])
    # The best start (3) comes after the best end (2): the best valid span is (1, 2).
    np.testing.assert_array_equal(BertSpanQA.best_spans(start, end), [[1, 2]])
    np.testing.assert_array_equal(BertSpanQA.best_spans(start, end, max_answer_length=1), [[3, 3]])


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training(policy, random_bert_inputs):
    keras.config.set_dtype_policy(policy)
    model = BertClassifier(BertEncoder(tiny_config()), num_classes=2)
    assert model.encoder.embeddings.compute_dtype == policy.split("_")[1]
    assert model.encoder.embeddings.token_embedding.embeddings.dtype == "float32"
    optimizer = keras.optimizers.Adam(3e-3)
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, jit_compile=True)
    x = random_bert_inputs(16, 8, 64)
    history = model.fit(x, np.arange(16) % 2, batch_size=8, epochs=5, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x, verbose=0).dtype == np.float32


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from tfmodels import BertConfig, BertEncoder, BertClassifier
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64)
            model = BertClassifier(BertEncoder(config), num_classes=2)
            model.compile(optimizer=keras.optimizers.Adam(3e-3))
        rng = np.random.default_rng(0)
        x = {"token_ids": rng.integers(1, 64, (32, 8)).astype("int32"),
             "segment_ids": np.zeros((32, 8), "int32"), "padding_mask": np.ones((32, 8), "int32")}
        ds = tf.data.Dataset.from_tensor_slices((x, np.arange(32) % 2)).batch(16)
        h = model.fit(ds, epochs=6, verbose=0).history["loss"]
        assert h[-1] < h[0], h
        print("REPLICAS", strategy.num_replicas_in_sync, "LOSS", h[0], h[-1])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REPLICAS 2" in result.stdout


def test_public_api_names():
    for name in ["BertConfig", "BertEncoder", "BertClassifier", "BertPretrainer",
                 "BertTokenClassifier", "BertSpanQA"]:
        assert hasattr(tfmodels, name)
    from tfmodels.checkpoints import load_google_bert, load_hf_bert  # noqa: F401


def _harness_inputs(random_bert_inputs):
    return random_bert_inputs(2, 8, 64, pad_from=[5, 8])


# 5 embedding weights, 16 per block, 2 pooler weights.
ENCODER_WEIGHTS = 5 + 16 * TINY["num_hidden_layers"] + 2


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_harness(norm_first, random_bert_inputs):
    run_model_test(
        BertEncoder,
        init_kwargs={"config": tiny_config(norm_first=norm_first)},
        input_data=_harness_inputs(random_bert_inputs),
        expected_output_shape={"sequence_output": (2, 8, 32), "pooled_output": (2, 32)},
        expected_num_trainable_weights=ENCODER_WEIGHTS + 2 * norm_first,  # + final LayerNorm
    )


@pytest.mark.parametrize(
    "task, kwargs, shape, options",
    [
        # The heads compute in float32 on purpose; per-token heads do not read the pooled
        # output, so the pooler gets no gradient there.
        (BertClassifier, dict(num_classes=3), (2, 3), dict(float32_layers=("logits",))),
        (BertTokenClassifier, dict(num_classes=4), (2, 8, 4),
         dict(float32_layers=("logits",), unused_weights=("pooler",))),
        (BertSpanQA, {}, {"start_logits": (2, 8), "end_logits": (2, 8)},
         dict(float32_layers=("span_head",), unused_weights=("pooler",))),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_task_harness(task, kwargs, shape, options, random_bert_inputs):
    run_model_test(
        task,
        init_kwargs=lambda: dict(encoder=BertEncoder(tiny_config()), **kwargs),
        input_data=_harness_inputs(random_bert_inputs),
        expected_output_shape=shape,
        expected_num_trainable_weights=ENCODER_WEIGHTS + 2,
        output_dtype="float32",  # logits
        **options,
    )


def test_pretrainer_harness(random_bert_inputs):
    x = dict(_harness_inputs(random_bert_inputs), masked_positions=np.array([[1, 2], [3, 4]], "int32"))
    run_model_test(
        BertPretrainer,
        init_kwargs=lambda: dict(encoder=BertEncoder(tiny_config())),
        input_data=x,
        expected_output_shape={"mlm_logits": (2, 2, 64), "nsp_logits": (2, 2)},
        # MLM transform (2) + LayerNorm (2) + output bias (1); NSP dense (2); the MLM
        # projection is the token embedding itself.
        expected_num_trainable_weights=ENCODER_WEIGHTS + 5 + 2,
        output_dtype="float32",
    )


def _variables_made_while_tracing(call):
    """Names of the variables `call()` creates inside a `tf.function` trace (each one forces a second trace)."""
    import tensorflow as tf

    made = []

    def creator(next_creator, **kwargs):
        if tf.inside_function():
            made.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        call()
    return made


@pytest.mark.parametrize("data", ["arrays", "dataset"])
def test_first_fit_and_evaluate_trace_their_step_once(data, random_bert_inputs):
    """The optimizer's slots and the metrics' variables exist before the first trace (tfmodels.utils.tracing):
    Keras alone makes them inside it, and tf.function then traces the whole step again."""
    import tensorflow as tf

    x, y = random_bert_inputs(8, 16, 64), np.arange(8) % 2

    def compiled():
        model = BertClassifier(BertEncoder(tiny_config()), num_classes=2)
        model.compile(optimizer="adam", metrics=["accuracy"])
        return model

    def data_for(model):
        if data == "arrays":
            return dict(x=x, y=y, batch_size=4)
        return dict(x=tf.data.Dataset.from_tensor_slices((x, y)).batch(4))

    model = compiled()
    assert _variables_made_while_tracing(lambda: model.fit(**data_for(model), epochs=1, verbose=0)) == []
    fresh = compiled()
    assert _variables_made_while_tracing(lambda: fresh.evaluate(**data_for(fresh), verbose=0)) == []
    # Keras' own fit, on the same model class, still makes them in the trace: the build is what prevents it.
    plain = compiled()
    made = _variables_made_while_tracing(lambda: keras.Model.fit(plain, **data_for(plain), epochs=1, verbose=0))
    assert any("momentum" in name for name in made), made
