"""Sentence autoencoders: a BERT encoder pooled to a latent code, a Transformer decoder reading it.

``TextAutoencoder`` (deterministic codes) and ``TextVAE`` (Bowman et al., 2016: a Gaussian
posterior, the reparameterisation trick, reconstruction + beta * KL with KL annealing; free bits
of Kingma et al., 2016). With ``use_latent=False`` the same decoder is a plain language model
(zero memory), the baseline whose perplexity the VAE's ELBO bound is compared with.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tfmodels import generation
from tfmodels.layers.dense import Dense
from tfmodels.layers.embedding import TransformerEmbedding, embedding_table
from tfmodels.layers.layer_norm import LayerNorm
from tfmodels.layers.transformer_decoder import TransformerDecoderBlock
from tfmodels.models.bert.task import RawInputTask, _as_strings

# -- the VAE's pieces, as plain functions (tested against closed forms) --------------------------


def gaussian_kl(mean, log_var):
    """``KL(N(mean, exp(log_var)) || N(0, I))`` per latent dimension: ``[batch, latent]``."""
    return 0.5 * (ops.square(mean) + ops.exp(log_var) - 1.0 - log_var)


def kl_weight(step, beta=1.0, anneal_steps=0):
    """Linear KL annealing (Bowman et al., 2016): ``beta * min(1, step / anneal_steps)``; ``beta``
    throughout when ``anneal_steps`` is 0."""
    if not anneal_steps:
        return ops.convert_to_tensor(float(beta))
    return float(beta) * ops.minimum(1.0, ops.cast(step, "float32") / float(anneal_steps))


def free_bits_kl(kl_per_dim, free_bits=0.0):
    """The KL term with free bits (Kingma et al., 2016): ``sum_j max(free_bits, mean_batch KL_j)``.

    A dimension whose batch-average KL is below ``free_bits`` nats costs a constant (no gradient
    pushes it further towards the prior); ``free_bits=0`` is the plain batch-mean KL.
    """
    per_dim = ops.mean(kl_per_dim, axis=0)
    if free_bits:
        per_dim = ops.maximum(per_dim, float(free_bits))
    return ops.sum(per_dim)


def active_units(posterior_means, threshold=0.01):
    """Active units (Burda et al., 2016): dimensions whose posterior mean varies over the data,
    ``Cov_x(E_q[z_u | x]) > threshold``. ``posterior_means`` is ``[examples, latent]``."""
    return int(np.sum(np.var(np.asarray(posterior_means, np.float64), axis=0) > threshold))


# -- the model ------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="tfmodels")
class TextAutoencoder(RawInputTask, keras.Model):
    """A sentence autoencoder: BERT encoder -> latent code -> Transformer decoder.

    The encoder (e.g. the pretrained all-MiniLM-L6-v2 ``BertEncoder``) is mean-pooled over real
    tokens and projected to the code: ``latent_dim`` values, or for the VAE (``variational=True``)
    a mean and a log-variance from which ``z = mean + exp(log_var / 2) * eps`` is drawn. The code is
    projected to ``memory_slots`` vectors that the decoder's cross-attention reads; the decoder is
    trained with teacher forcing on the encoder's own WordPiece ids (``[CLS] tokens [SEP]``: the
    ``[CLS]`` starts a sentence, ``[SEP]`` ends it), with its output tied to its token embedding.

    Loss per sentence: reconstruction NLL (summed over tokens) + ``kl_weight(step) *`` the KL
    term with free bits (``free_bits_kl``), the weight rising linearly over ``kl_anneal_steps``
    training steps to ``beta``. The plain autoencoder has no KL term; with ``use_latent=False`` the
    decoder reads a zero memory (no encoder): a decoder-only language model of the same size.

    With a ``BertPreprocessor`` of ``sequence_length = max_length + 1`` (``fit`` on raw strings),
    ``compile`` / ``fit`` / ``evaluate`` work as usual (no labels: the text is the target) and
    report ``recon_nll``, ``kl`` (nats per sentence) and ``token_accuracy``. ``encode(texts)``
    gives posterior means; ``decode(codes)`` runs ``tfmodels.generation``'s one XLA decoding loop
    (the model implements its cached-decoding protocol with the codes as inputs); ``sample(n)``
    decodes prior draws; ``interpolate(a, b, steps)`` decodes codes on the line between two
    texts'; ``score(texts)`` gives the held-out numbers (``recon_nll``, ``kl``, ``elbo_ppl``,
    ``token_accuracy``, ``active_units``).

    Args:
        encoder: a ``BertEncoder``; ``None`` only with ``use_latent=False``.
        preprocessor: a ``tfmodels.text.BertPreprocessor`` over the encoder's vocabulary, or None.
        latent_dim: size of the code.
        variational: a VAE (Gaussian posterior, KL term) or a plain autoencoder.
        use_latent: False for the language-model baseline (zero memory, no encoder).
        hidden_size, num_layers, num_heads, intermediate_size: the decoder's size.
        max_length: longest decoded sequence (start token included).
        memory_slots: vectors the code is projected to for cross-attention.
        dropout: decoder dropout.
        beta: the KL weight after annealing.
        kl_anneal_steps: training steps over which the KL weight rises from 0 (0: no annealing).
        free_bits: nats per latent dimension below which the KL costs nothing more.
        train_encoder: fine-tune the encoder (False: frozen).
        vocab_size: decoder vocabulary; defaults to the encoder's.
        start_token_id, end_token_id, pad_token_id: decoder ids; default to the preprocessor
            tokenizer's ``[CLS]``, ``[SEP]``, ``[PAD]`` (101, 102, 0 in MiniLM's vocabulary).
        seed: seed of the posterior samples.

    Example:
    >>> import numpy as np
    >>> from tfmodels.models.bert import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=32))
    >>> vae = TextVAE(encoder, latent_dim=4, hidden_size=16, num_layers=1, num_heads=2,
    ...               intermediate_size=32, max_length=8, start_token_id=2, end_token_id=3,
    ...               pad_token_id=0)
    >>> ids = np.array([[2, 5, 6, 3, 0, 0, 0, 0, 0]], "int32")
    >>> inputs = {"token_ids": ids, "segment_ids": 0 * ids, "padding_mask": (ids > 0) * 1}
    >>> vae(inputs)["logits"].shape
    TensorShape([1, 8, 30])
    >>> generation.generate(vae, np.zeros((2, 4), "float32"), max_new_tokens=5).shape
    TensorShape([2, 5])
    """

    VARIATIONAL = False

    def __init__(
        self,
        encoder=None,
        preprocessor=None,
        latent_dim=32,
        variational=None,
        use_latent=True,
        hidden_size=128,
        num_layers=2,
        num_heads=4,
        intermediate_size=512,
        max_length=64,
        memory_slots=4,
        dropout=0.1,
        beta=1.0,
        kl_anneal_steps=0,
        free_bits=0.0,
        train_encoder=False,
        vocab_size=None,
        start_token_id=None,
        end_token_id=None,
        pad_token_id=None,
        seed=None,
        **kwargs,
    ):
        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if isinstance(preprocessor, dict):
            preprocessor = keras.saving.deserialize_keras_object(preprocessor)
        super().__init__(**kwargs)
        variational = self.VARIATIONAL if variational is None else bool(variational)
        if use_latent and encoder is None:
            raise ValueError("an autoencoder needs an encoder (a BertEncoder); only "
                             "use_latent=False (the language-model baseline) runs without one")
        if vocab_size is None:
            if encoder is None:
                raise ValueError("vocab_size is needed when there is no encoder")
            vocab_size = encoder.config.vocab_size
        for name, value in (("latent_dim", latent_dim), ("memory_slots", memory_slots),
                            ("max_length", max_length), ("num_layers", num_layers)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if free_bits < 0 or beta < 0 or kl_anneal_steps < 0:
            raise ValueError(f"beta, kl_anneal_steps and free_bits must be >= 0, got {beta}, "
                             f"{kl_anneal_steps}, {free_bits}")
        self.encoder = encoder
        self.preprocessor = preprocessor
        self.latent_dim = int(latent_dim)
        self.variational = variational
        self.use_latent = bool(use_latent)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_size = int(intermediate_size)
        self.max_length = int(max_length)
        self.memory_slots = int(memory_slots)
        self.dropout = float(dropout)
        self.beta = float(beta)
        self.kl_anneal_steps = int(kl_anneal_steps)
        self.free_bits = float(free_bits)
        self.train_encoder = bool(train_encoder)
        self.vocab_size = int(vocab_size)
        self._token_ids = {"start": start_token_id, "end": end_token_id, "pad": pad_token_id}
        self.seed = seed
        if encoder is not None and not train_encoder:
            encoder.trainable = False
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.recon_tracker = keras.metrics.Mean(name="recon_nll")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.accuracy_tracker = keras.metrics.Mean(name="token_accuracy")
        self._build_layers()

    def _build_layers(self):
        # Every shape follows from the arguments, so the model is built now (and on load).
        hidden_shape = (None, None, self.hidden_size)
        if self.use_latent:
            pooled_shape = (None, self.encoder.config.hidden_size)
            self.latent_mean = Dense(self.latent_dim, name="latent_mean", dtype=self.dtype_policy)
            self.latent_mean.build(pooled_shape)
            self.latent_log_var = None
            if self.variational:
                self.latent_log_var = Dense(self.latent_dim, name="latent_log_var",
                                            dtype=self.dtype_policy)
                self.latent_log_var.build(pooled_shape)
            self.latent_to_memory = Dense(self.memory_slots * self.hidden_size,
                                          name="latent_to_memory", dtype=self.dtype_policy)
            self.latent_to_memory.build((None, self.latent_dim))
        self.token_embedding = TransformerEmbedding(
            self.vocab_size, self.hidden_size, max_sequence_length=self.max_length,
            scale_embeddings=True, use_layer_norm=False, dropout=self.dropout,
            initializer=keras.initializers.RandomNormal(stddev=self.hidden_size**-0.5),
            name="decoder_embedding", dtype=self.dtype_policy,
        )
        self.token_embedding.build((None, None))
        self.decoder_blocks = []
        for i in range(self.num_layers):
            block = TransformerDecoderBlock(
                num_heads=self.num_heads, intermediate_size=self.intermediate_size,
                activation="gelu", dropout=self.dropout, norm_first=True,
                name=f"decoder_block_{i}", dtype=self.dtype_policy,
            )
            block.build(hidden_shape, hidden_shape)
            self.decoder_blocks.append(block)
        self.decoder_norm = LayerNorm(epsilon=1e-6, name="decoder_norm", dtype=self.dtype_policy)
        self.decoder_norm.build(hidden_shape)
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                           initializer="zeros")
        self.built = True

    # -- token ids ----------------------------------------------------------------------------------

    def _token_id(self, which):
        if self._token_ids[which] is not None:
            return int(self._token_ids[which])
        if self.preprocessor is None:
            raise ValueError(f"{which}_token_id is needed when there is no preprocessor")
        tokenizer = self.preprocessor.tokenizer
        return int({"start": tokenizer.cls_token_id, "end": tokenizer.sep_token_id,
                    "pad": tokenizer.pad_token_id}[which])

    @property
    def end_token_ids(self):
        return (self._token_id("end"),)

    @property
    def pad_token_id(self):
        return self._token_id("pad")

    @property
    def banned_token_ids(self):
        return (self._token_id("pad"), self._token_id("start"))

    # -- encoder side --------------------------------------------------------------------------------

    def posterior(self, inputs, training=None):
        """``(mean, log_var)`` of the code, each ``[batch, latent_dim]`` (``log_var`` None for the
        plain autoencoder), from the encoder mean-pooled over real tokens."""
        outputs = self.encoder(
            {name: inputs[name] for name in ("token_ids", "segment_ids", "padding_mask")},
            training=bool(training) and self.train_encoder,
        )
        sequence = outputs["sequence_output"]
        mask = ops.cast(inputs["padding_mask"], sequence.dtype)[:, :, None]
        pooled = ops.sum(sequence * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
        log_var = self.latent_log_var(pooled) if self.variational else None
        return self.latent_mean(pooled), log_var

    def reparameterize(self, mean, log_var):
        """``mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``: a sample differentiable in both."""
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps

    # -- decoder side --------------------------------------------------------------------------------

    def memory(self, codes):
        """``[batch, memory_slots, hidden]`` vectors the decoder attends to (zeros without a latent)."""
        codes = ops.convert_to_tensor(codes, dtype=self.compute_dtype)
        if not self.use_latent:
            shape = (ops.shape(codes)[0], self.memory_slots, self.hidden_size)
            return ops.zeros(shape, dtype=self.compute_dtype)
        memory = self.latent_to_memory(codes)
        return ops.reshape(memory, (-1, self.memory_slots, self.hidden_size))

    def _logits(self, x):
        x = self.decoder_norm(x)
        table = embedding_table(self.token_embedding.token_embedding, x.dtype)
        logits = ops.einsum("btd,vd->btv", x, table) + ops.cast(self.output_bias, x.dtype)
        return ops.cast(logits, "float32")

    def decode_logits(self, decoder_ids, memory, training=None):
        """Teacher-forced decoder pass: ``[batch, length, vocab]`` float32 logits."""
        x = self.token_embedding(decoder_ids, training=training)
        padding_mask = ops.not_equal(decoder_ids, self.pad_token_id)
        for block in self.decoder_blocks:
            x = block(x, memory, decoder_padding_mask=padding_mask, training=training)
        return self._logits(x)

    def call(self, inputs, training=None):
        """``inputs``: the packed ``[CLS] tokens [SEP]`` dict (``max_length + 1`` long). Returns
        ``logits`` ``[batch, max_length, vocab]`` for the targets ``token_ids[:, 1:]`` given the
        code sampled from the posterior (its mean for the plain autoencoder), and the posterior's
        ``z_mean`` and ``z_log_var`` (zeros where there are none)."""
        token_ids = ops.cast(inputs["token_ids"], "int32")
        batch = ops.shape(token_ids)[0]
        zeros = ops.zeros((batch, self.latent_dim), dtype=self.compute_dtype)
        mean, log_var = zeros, zeros
        if self.use_latent:
            mean, log_var = self.posterior(inputs, training)
            if log_var is None:
                log_var, codes = zeros, mean
            else:
                codes = self.reparameterize(mean, log_var)
        else:
            codes = zeros
        logits = self.decode_logits(token_ids[:, :-1], self.memory(codes), training)
        return {"logits": logits, "z_mean": mean, "z_log_var": log_var}

    # -- the objective -------------------------------------------------------------------------------

    def loss_terms(self, inputs, outputs):
        """Per sentence: reconstruction NLL (nats, summed over tokens), KL per dimension
        ``[batch, latent]``, real target tokens and correctly predicted ones."""
        labels = ops.cast(inputs["token_ids"], "int32")[:, 1:]
        weights = ops.cast(ops.not_equal(labels, self.pad_token_id), "float32")
        logits = outputs["logits"]
        nll = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), labels), "float32") * weights
        if self.variational and self.use_latent:
            kl = gaussian_kl(ops.cast(outputs["z_mean"], "float32"),
                             ops.cast(outputs["z_log_var"], "float32"))
        else:
            kl = ops.zeros(ops.shape(outputs["z_mean"]), dtype="float32")
        return {"recon_nll": ops.sum(nll * weights, axis=1), "kl": kl,
                "tokens": ops.sum(weights, axis=1), "correct": ops.sum(correct, axis=1)}

    def current_kl_weight(self, training=True):
        """The annealed KL weight at the optimizer's step (``beta`` outside training)."""
        if not training or self.optimizer is None:
            return kl_weight(0, self.beta, 0)
        return kl_weight(self.optimizer.iterations, self.beta, self.kl_anneal_steps)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        terms = self.loss_terms(x, y_pred)
        loss = ops.mean(terms["recon_nll"])
        if self.variational and self.use_latent:
            loss += self.current_kl_weight(training) * free_bits_kl(terms["kl"], self.free_bits)
        self.recon_tracker.update_state(terms["recon_nll"])
        self.kl_tracker.update_state(ops.sum(terms["kl"], axis=1))
        self.accuracy_tracker.update_state(
            ops.sum(terms["correct"]) / ops.maximum(ops.sum(terms["tokens"]), 1.0),
            sample_weight=ops.sum(terms["tokens"]))
        return loss

    def compile(self, optimizer="auto", **kwargs):
        """``keras.Model.compile``; ``"auto"``: AdamW(1e-3). The loss is the model's own."""
        if optimizer == "auto":
            optimizer = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=0.01)
        kwargs.setdefault("loss", None)
        super().compile(optimizer=optimizer, **kwargs)

    def default_loss(self):
        return None

    # -- raw text in, codes and text out ---------------------------------------------------------

    def _pack(self, texts):
        if self.preprocessor is None:
            raise ValueError(f"{type(self).__name__} needs a preprocessor for raw text")
        return self.preprocessor(_as_strings(texts))

    def _batches(self, texts, batch_size):
        texts = _as_strings(texts)
        for start in range(0, int(texts.shape[0]), batch_size):
            yield self._pack(texts[start:start + batch_size])

    def encode(self, texts, batch_size=64):
        """Codes of ``texts`` (posterior means for the VAE): numpy ``[n, latent_dim]``."""
        if not self.use_latent:
            raise ValueError("a language model (use_latent=False) has no codes")
        fn = self._compiled("encode", lambda x: self.posterior(x)[0])
        return np.concatenate([ops.convert_to_numpy(fn(x)) for x in self._batches(texts, batch_size)])

    def decode(self, codes, max_new_tokens=None, sampler="greedy", **options):
        """Texts decoded from ``codes`` ``[n, latent_dim]`` by ``tfmodels.generation`` (greedy,
        ``"top_k"``, ``"top_p"`` or ``"beam"`` with their options, ``seed``, ``temperature``)."""
        codes = np.asarray(codes, np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.latent_dim:
            raise ValueError(f"codes must be [n, {self.latent_dim}], got shape {codes.shape}")
        max_new_tokens = max_new_tokens or self.max_length
        tokens = generation.generate(self, codes, sampler, max_new_tokens, **options).numpy()
        return self.detokenize(tokens)

    def detokenize(self, tokens):
        """Generated ids ``[n, length]`` -> strings, cut at the end token."""
        end = self._token_id("end")
        rows = []
        for row in np.asarray(tokens):
            row = row.tolist()
            row = row[:row.index(end)] if end in row else row
            rows.append([t for t in row if t not in self.banned_token_ids])
        texts = self.preprocessor.tokenizer.detokenize(tf.ragged.constant(rows, tf.int32,
                                                                          inner_shape=None))
        return [t.decode("utf-8") for t in texts.numpy()]

    def sample(self, n, seed=0, sampler="greedy", **options):
        """``n`` sentences decoded from codes drawn from the prior ``N(0, I)``."""
        codes = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        return self.decode(codes.astype(np.float32), sampler=sampler, **options)

    def interpolate(self, a, b, steps=5, **options):
        """Sentences decoded from ``steps`` codes evenly spaced from ``a``'s code to ``b``'s."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2 (both ends), got {steps}")
        start, end = self.encode([a, b])
        weights = np.linspace(0.0, 1.0, steps)[:, None]
        return self.decode(((1 - weights) * start + weights * end).astype(np.float32), **options)

    def score(self, texts, batch_size=64):
        """Held-out numbers as papers report them, over all ``texts``: ``recon_nll`` and ``kl``
        (nats per sentence; one posterior sample per sentence), ``elbo_ppl`` =
        ``exp((recon + kl) / tokens)`` (an upper bound on perplexity; the plain perplexity for the
        language model), ``token_accuracy`` (teacher-forced), ``tokens`` and, with a latent,
        ``active_units``."""
        fn = self._compiled("score", lambda x: self.loss_terms(x, self(x, training=False)))
        sums = {"recon_nll": 0.0, "kl": 0.0, "tokens": 0.0, "correct": 0.0}
        count = 0
        for x in self._batches(texts, batch_size):
            terms = fn(x)
            count += int(terms["tokens"].shape[0])
            for name in sums:
                sums[name] += float(np.sum(ops.convert_to_numpy(terms[name])))
        result = {
            "recon_nll": sums["recon_nll"] / count,
            "kl": sums["kl"] / count,
            "elbo_ppl": float(np.exp((sums["recon_nll"] + sums["kl"]) / sums["tokens"])),
            "token_accuracy": sums["correct"] / sums["tokens"],
            "tokens": int(sums["tokens"]),
        }
        if self.use_latent:
            result["active_units"] = active_units(self.encode(texts, batch_size))
        return result

    def _compiled(self, name, fn):
        functions = self.__dict__.setdefault("_compiled_functions", {})
        if name not in functions:
            functions[name] = tf.function(fn, jit_compile=True, reduce_retracing=True)
        return functions[name]

    # -- the cached-decoding protocol (tfmodels.generation) ---------------------------------------

    def decoding_init(self, codes, max_new_tokens):
        """``codes`` ``[batch, latent_dim]`` -> the start token's logits, per-layer self-attention
        caches (``max_new_tokens`` positions) and the cross-attention keys/values of the memory."""
        if max_new_tokens > self.max_length:
            raise ValueError(f"max_new_tokens {max_new_tokens} > max_length {self.max_length}")
        memory = self.memory(codes)
        batch = ops.shape(memory)[0]
        head_dim = self.hidden_size // self.num_heads
        shape = (batch, 2, max_new_tokens, self.num_heads, head_dim)
        self_caches = tuple(ops.zeros(shape, dtype=memory.dtype) for _ in self.decoder_blocks)
        cross_caches = tuple(b.compute_cross_attention_cache(memory) for b in self.decoder_blocks)
        start = ops.full((batch, 1), self._token_id("start"), dtype="int32")
        logits, self_caches = self._cached_step(start, 0, self_caches, cross_caches)
        return logits, self_caches, cross_caches

    def decoding_step(self, token_ids, step, cache, context):
        """Runs the token generated at ``step`` (decoder position ``step + 1``)."""
        return self._cached_step(ops.cast(token_ids, "int32")[:, None], step + 1, cache, context)

    def _cached_step(self, token_ids, index, self_caches, cross_caches):
        x = self.token_embedding(token_ids, start_index=index)
        new_caches = []
        for block, self_cache, cross_cache in zip(self.decoder_blocks, self_caches, cross_caches):
            x, self_cache = block(x, self_attention_cache=self_cache,
                                  self_attention_cache_update_index=index,
                                  cross_attention_cache=cross_cache)
            new_caches.append(self_cache)
        return self._logits(x)[:, 0], tuple(new_caches)

    # -- config ------------------------------------------------------------------------------------

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "latent_dim": self.latent_dim,
            "variational": self.variational,
            "use_latent": self.use_latent,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "max_length": self.max_length,
            "memory_slots": self.memory_slots,
            "dropout": self.dropout,
            "beta": self.beta,
            "kl_anneal_steps": self.kl_anneal_steps,
            "free_bits": self.free_bits,
            "train_encoder": self.train_encoder,
            "vocab_size": self.vocab_size,
            "start_token_id": self._token_ids["start"],
            "end_token_id": self._token_ids["end"],
            "pad_token_id": self._token_ids["pad"],
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfmodels")
class TextVAE(TextAutoencoder):
    """A ``TextAutoencoder`` with ``variational=True``: a Gaussian posterior over the code, the
    reparameterisation trick, and reconstruction + annealed ``beta`` * KL with free bits.

    Args:
        encoder, preprocessor, latent_dim, ...: as ``TextAutoencoder`` (every argument but
            ``variational``, which defaults to True here).

    Example:
    >>> from tfmodels.models.bert import BertConfig, BertEncoder
    >>> encoder = BertEncoder(BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1,
    ...                                  num_attention_heads=2, intermediate_size=32))
    >>> TextVAE(encoder, latent_dim=4, hidden_size=16, num_heads=2, kl_anneal_steps=100,
    ...         free_bits=0.1, start_token_id=2, end_token_id=3, pad_token_id=0).variational
    True
    """

    VARIATIONAL = True
