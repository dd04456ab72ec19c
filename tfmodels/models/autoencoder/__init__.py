"""Sentence autoencoders and VAEs on a BERT encoder and a Transformer decoder."""

from tfmodels.models.autoencoder.text_autoencoder import (
    TextAutoencoder,
    TextVAE,
    active_units,
    free_bits_kl,
    gaussian_kl,
    kl_weight,
)

__all__ = ["TextAutoencoder", "TextVAE", "active_units", "free_bits_kl", "gaussian_kl", "kl_weight"]
