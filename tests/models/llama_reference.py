"""A plain numpy Llama forward pass in Hugging Face's convention, the yardstick for our decoder.

Weights are a dict of Hugging Face Llama names and layouts (``model.embed_tokens.weight``
``[vocab, width]``, ``model.layers.{i}.self_attn.q_proj.weight`` ``[out, in]``, ...), exactly what
``DecoderBackbone.assign_hf_llama_weights`` takes. RoPE rotates halves (``rotate_half``), as
``transformers``' LlamaModel does; everything is computed in float64 so the reference's own
rounding never hides a difference.

Import it from a test as ``from models.llama_reference import llama_logits`` (``tests`` is on
pytest's ``pythonpath``).
"""

import numpy as np


def rms_norm(x, weight, eps):
    variance = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(variance + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, positions, theta):
    """``x``: ``[batch, heads, seq, head_dim]``; ``positions``: ``[batch, seq]``."""
    head_dim = x.shape[-1]
    inverse_frequencies = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions[..., None].astype(np.float64) * inverse_frequencies  # [batch, seq, dim/2]
    angles = np.concatenate([angles, angles], axis=-1)[:, None]  # [batch, 1, seq, head_dim]
    return x * np.cos(angles) + rotate_half(x) * np.sin(angles)


def silu(x):
    return x / (1.0 + np.exp(-x))


def num_layers(weights):
    return 1 + max(int(name.split(".")[2]) for name in weights if name.startswith("model.layers."))


def llama_hidden_states(
    weights,
    token_ids,
    num_heads,
    num_kv_heads,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    padding_mask=None,
):
    """Final-normed hidden states ``[batch, seq, width]`` (float64).

    Args:
        weights: ``{hf_name: np.ndarray}``.
        token_ids: int ``[batch, seq]``.
        num_heads, num_kv_heads: query heads and key/value heads (grouped-query attention).
        rope_theta: RoPE base.
        rms_norm_eps: RMSNorm epsilon.
        padding_mask: optional ``[batch, seq]`` of 0/1; pads are never attended to, and each
            row's RoPE positions count from its first real token (left padding).
    """
    w = {name: np.asarray(value, np.float64) for name, value in weights.items()}
    token_ids = np.asarray(token_ids)
    batch, length = token_ids.shape
    if padding_mask is None:
        padding_mask = np.ones((batch, length), np.int64)
    padding_mask = np.asarray(padding_mask).astype(bool)
    positions = np.maximum(np.cumsum(padding_mask, axis=1) - 1, 0)
    causal = np.tril(np.ones((length, length), bool))
    allowed = causal[None] & padding_mask[:, None, :]  # [batch, query, key]
    # A query that sees no key at all (a pad before any real token) attends to itself only.
    allowed |= np.eye(length, dtype=bool)[None] & ~allowed.any(-1, keepdims=True)

    h = w["model.embed_tokens.weight"][token_ids]
    width = h.shape[-1]
    head_dim = width // num_heads
    group = num_heads // num_kv_heads

    def heads(x, count):
        return x.reshape(batch, length, count, head_dim).transpose(0, 2, 1, 3)

    for i in range(num_layers(w)):
        p = f"model.layers.{i}."
        x = rms_norm(h, w[p + "input_layernorm.weight"], rms_norm_eps)
        q = heads(x @ w[p + "self_attn.q_proj.weight"].T, num_heads)
        k = heads(x @ w[p + "self_attn.k_proj.weight"].T, num_kv_heads)
        v = heads(x @ w[p + "self_attn.v_proj.weight"].T, num_kv_heads)
        q, k = apply_rope(q, positions, rope_theta), apply_rope(k, positions, rope_theta)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim)
        scores = np.where(allowed[:, None], scores, -np.inf)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = scores / scores.sum(-1, keepdims=True)
        context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
        h = h + context @ w[p + "self_attn.o_proj.weight"].T
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], rms_norm_eps)
        gate = silu(x @ w[p + "mlp.gate_proj.weight"].T)
        h = h + (gate * (x @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(h, w["model.norm.weight"], rms_norm_eps)


def llama_logits(weights, token_ids, **config):
    """Logits ``[batch, seq, vocab]`` (float64) of every position; ``config`` as for
    ``llama_hidden_states``. Uses ``lm_head.weight`` when present, else the tied embedding."""
    hidden = llama_hidden_states(weights, token_ids, **config)
    head = weights.get("lm_head.weight", weights["model.embed_tokens.weight"])
    return hidden @ np.asarray(head, np.float64).T


def greedy_continuation(weights, token_ids, max_new_tokens, end_token_ids=(), **config):
    """Greedy decoding of one prompt (1-D ``token_ids``) without a cache: the new token ids,
    stopping after an end token."""
    ids = list(np.asarray(token_ids).tolist())
    new = []
    for _ in range(max_new_tokens):
        logits = llama_logits(weights, np.array([ids]), **config)[0, -1]
        token = int(np.argmax(logits))
        new.append(token)
        ids.append(token)
        if token in end_token_ids:
            break
    return new


def random_llama_weights(
    vocab_size=61,
    width=16,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate=24,
    tied=True,
    seed=0,
    dtype=np.float32,
):
    """Random weights in Hugging Face Llama names/layouts for a tiny config (norm scales near 1,
    matrices scaled so activations stay O(1) through the blocks)."""
    rng = np.random.default_rng(seed)
    head_dim = width // num_heads

    def matrix(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(dtype)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(width)).astype(dtype)

    weights = {"model.embed_tokens.weight": rng.standard_normal((vocab_size, width)).astype(dtype)}
    for i in range(num_layers):
        p = f"model.layers.{i}."
        weights[p + "input_layernorm.weight"] = norm()
        weights[p + "self_attn.q_proj.weight"] = matrix(num_heads * head_dim, width)
        weights[p + "self_attn.k_proj.weight"] = matrix(num_kv_heads * head_dim, width)
        weights[p + "self_attn.v_proj.weight"] = matrix(num_kv_heads * head_dim, width)
        weights[p + "self_attn.o_proj.weight"] = matrix(width, num_heads * head_dim)
        weights[p + "post_attention_layernorm.weight"] = norm()
        weights[p + "mlp.gate_proj.weight"] = matrix(intermediate, width)
        weights[p + "mlp.up_proj.weight"] = matrix(intermediate, width)
        weights[p + "mlp.down_proj.weight"] = matrix(width, intermediate)
    weights["model.norm.weight"] = norm()
    if not tied:
        weights["lm_head.weight"] = matrix(vocab_size, width)
    return weights
