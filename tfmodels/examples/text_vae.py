"""Sentence VAE vs autoencoder vs language model on Rotten Tomatoes sentences (MiniLM encoder).

Trains, on the same sentences in the same run, a TextVAE (KL annealing + free bits), a plain
TextAutoencoder and the same decoder as a language model (no latent); reports on held-out
sentences the reconstruction NLL, KL, ELBO perplexity bound, LM perplexity, active units, token
accuracy, and a linear probe of sentiment on the codes vs on mean-pooled MiniLM embeddings. The
pretrained all-MiniLM-L6-v2 encoder is frozen; its WordPiece vocabulary is the decoder's.

    python -m tfmodels.examples.text_vae [--train-sentences 6000] [--epochs 4] [--smoke]

The last line printed is one JSON object.
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfmodels.checkpoints import load_hf_bert  # noqa: E402
from tfmodels.datasets import minilm_path  # noqa: E402
from tfmodels.examples.quickstart import load_reviews, minilm_preprocessor  # noqa: E402
from tfmodels.models.autoencoder import TextAutoencoder, TextVAE  # noqa: E402
from tfmodels.utils import cli, logs  # noqa: E402

SMOKE = dict(train_sentences=96, test_sentences=64, sequence_length=16, epochs=1, hidden_size=32,
             num_layers=1, intermediate_size=64, latent_dim=8, batch_size=32,
             jit_compile=False)  # 3 steps per model: XLA's compiles would take most of the run


def linear_probe(train_x, train_y, test_x, test_y, l2=1e-3, steps=500, learning_rate=0.5):
    """Held-out accuracy of L2-regularized logistic regression on standardized features
    (full-batch gradient descent in numpy: a linear probe, nothing to tune)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    w, b = np.zeros(train_x.shape[1]), 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(train_x @ w + b)))
        w -= learning_rate * (train_x.T @ (p - train_y) / len(train_y) + l2 * w)
        b -= learning_rate * float(np.mean(p - train_y))
    return float(np.mean(((test_x @ w + b) > 0) == test_y))


def mean_pooled_embeddings(encoder, preprocessor, texts, batch_size=64, jit_compile=True):
    """Sentence embeddings as sentence-transformers makes them: the mean over real tokens."""

    @tf.function(jit_compile=jit_compile)
    def pool(x):
        sequence = encoder(x)["sequence_output"]
        mask = tf.cast(x["padding_mask"], sequence.dtype)[:, :, None]
        return tf.reduce_sum(sequence * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)

    return np.concatenate([pool(preprocessor(tf.constant(texts[i:i + batch_size]))).numpy()
                           for i in range(0, len(texts), batch_size)])


def run(train_sentences=6000, test_sentences=500, sequence_length=32, epochs=4, batch_size=32,
        latent_dim=32, hidden_size=128, num_layers=2, intermediate_size=256, free_bits=0.1,
        beta=1.0, learning_rate=1e-3, seed=0, output=None, jit_compile=True):
    keras.utils.set_random_seed(seed)
    texts, labels = load_reviews("rotten_tomatoes", seed)
    if train_sentences + test_sentences > len(texts):
        raise ValueError(f"asked for {train_sentences}+{test_sentences} sentences, Rotten "
                         f"Tomatoes has {len(texts)}")
    train_x, train_y = list(texts[:train_sentences]), labels[:train_sentences]
    test_x, test_y = list(texts[-test_sentences:]), labels[-test_sentences:]
    preprocessor = minilm_preprocessor(sequence_length + 1)  # [CLS] tokens [SEP]: decoder L + 1
    encoder = load_hf_bert(minilm_path())
    steps = epochs * (train_sentences // batch_size)
    decoder = dict(preprocessor=preprocessor, latent_dim=latent_dim, hidden_size=hidden_size,
                   num_layers=num_layers, num_heads=4, intermediate_size=intermediate_size,
                   max_length=sequence_length, seed=seed)
    models = {
        # KL weight rises over the first half of training; free bits per dimension.
        "vae": TextVAE(encoder, kl_anneal_steps=max(steps // 2, 1), free_bits=free_bits,
                       beta=beta, **decoder),
        "ae": TextAutoencoder(encoder, **decoder),
        "lm": TextAutoencoder(None, use_latent=False, vocab_size=encoder.config.vocab_size,
                              **decoder),
    }
    histories, scores, seconds = {}, {}, {}
    for name, model in models.items():
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
                      jit_compile=jit_compile)
        start = time.time()
        history = model.fit(train_x, batch_size=batch_size, epochs=epochs, shuffle=True,
                            verbose=0)
        seconds[name] = round(time.time() - start, 1)
        histories[name] = {k: [round(float(v), 4) for v in vs] for k, vs in history.history.items()}
        scores[name] = model.score(test_x)
        print(f"{name}: trained {steps} steps in {seconds[name]} s; held-out {scores[name]}")

    vae, ae = models["vae"], models["ae"]
    minilm_train = mean_pooled_embeddings(encoder, preprocessor, train_x, jit_compile=jit_compile)
    minilm_test = mean_pooled_embeddings(encoder, preprocessor, test_x, jit_compile=jit_compile)
    probes = {
        "probe_acc_latent": linear_probe(vae.encode(train_x), train_y, vae.encode(test_x), test_y),
        "probe_acc_ae": linear_probe(ae.encode(train_x), train_y, ae.encode(test_x), test_y),
        "probe_acc_minilm": linear_probe(minilm_train, train_y, minilm_test, test_y),
    }
    examples = {
        "reconstructions": list(zip(test_x[:3], vae.decode(vae.encode(test_x[:3])))),
        "prior_samples": vae.sample(3, seed=seed),
        "interpolation": vae.interpolate(test_x[0], test_x[1], steps=5),
    }
    for title, rows in examples.items():
        print(f"{title}:")
        for row in rows:
            print(f"  {row}")
    result = {
        "data": f"rotten_tomatoes sentences: {train_sentences} train, {test_sentences} held out",
        "encoder": "all-MiniLM-L6-v2, frozen, mean-pooled",
        "decoder": f"{num_layers} layers, width {hidden_size}, latent {latent_dim}",
        "epochs": epochs,
        "steps": steps,
        "free_bits": free_bits,
        "recon_nll": round(scores["vae"]["recon_nll"], 3),
        "kl": round(scores["vae"]["kl"], 3),
        "elbo_ppl": round(scores["vae"]["elbo_ppl"], 2),
        "lm_ppl": round(scores["lm"]["elbo_ppl"], 2),
        "ae_recon_ppl": round(scores["ae"]["elbo_ppl"], 2),
        "active_units": scores["vae"]["active_units"],
        "ae_active_units": scores["ae"]["active_units"],
        "token_accuracy": round(scores["vae"]["token_accuracy"], 4),
        "ae_token_accuracy": round(scores["ae"]["token_accuracy"], 4),
        "lm_token_accuracy": round(scores["lm"]["token_accuracy"], 4),
        **{k: round(v, 4) for k, v in probes.items()},
        "train_seconds": seconds,
    }
    if output:
        with open(output, "w") as f:
            json.dump({**result, "history": histories, "examples": examples}, f, indent=1)
    print(json.dumps(result))
    return result, models, histories


def main(argv=None):
    parser = cli.parser(__doc__.splitlines()[0])
    parser.add_argument("--train-sentences", type=int, default=6000, help="training sentences")
    parser.add_argument("--test-sentences", type=int, default=500, help="held-out sentences")
    parser.add_argument("--sequence-length", type=int, default=32, help="decoder tokens")
    parser.add_argument("--epochs", type=int, default=4, help="passes over the sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size")
    parser.add_argument("--latent-dim", type=int, default=32, help="size of the code")
    parser.add_argument("--hidden-size", type=int, default=128, help="decoder width")
    parser.add_argument("--num-layers", type=int, default=2, help="decoder layers")
    parser.add_argument("--free-bits", type=float, default=0.1, help="nats per latent dimension")
    parser.add_argument("--output", help="write the result (with curves and examples) here")
    parser.add_argument("--smoke", action="store_true", help="a tiny, quick run")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's C++ logs")
    args = cli.require_positive(parser, parser.parse_args(argv), [
        "train_sentences", "test_sentences", "sequence_length", "epochs", "batch_size",
        "latent_dim", "hidden_size", "num_layers"])
    if argv is None:
        logs.quiet(args.verbose)
    settings = dict(train_sentences=args.train_sentences, test_sentences=args.test_sentences,
                    sequence_length=args.sequence_length, epochs=args.epochs,
                    batch_size=args.batch_size, latent_dim=args.latent_dim,
                    hidden_size=args.hidden_size, num_layers=args.num_layers)
    if args.smoke:
        settings.update(SMOKE)
    return run(**settings, free_bits=args.free_bits, output=args.output)[0]


if __name__ == "__main__":
    main()
