"""The ``FromPreset`` mixin: ``from_preset`` on backbones, tasks, tokenizers and preprocessors.

The loaders live in ``tfmodels.presets``, which imports the model classes; this module imports
none of ours, so the classes can inherit the mixin without an import cycle. ``tfmodels.presets``
installs its loader here when it is imported (``import tfmodels`` does it).
"""

_loader = []


def install_loader(load):
    """Makes ``load(cls, preset, **kwargs)`` the implementation of every ``from_preset``."""
    _loader[:] = [load]


class FromPreset:
    """Mixin of the backbone, task, tokenizer and preprocessor classes: ``from_preset``.

    A task class builds itself from a checkpoint's backbone and tokenizer by overriding
    ``_from_preset_parts(backbone, tokenizer, **kwargs)``; the other roles need nothing.
    """

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """This class's object from a preset name or a local checkpoint (see ``tfmodels.presets``).

        Args:
            preset: a name from ``tfmodels.presets()``, or the path of a ``.keras`` file, a
                Hugging Face folder or a ``.gguf`` file.
            **kwargs: a task's constructor arguments (``num_classes=2``, ``tags=[...]``), a
                preprocessor's (``sequence_length=256``), ``dtype`` for the backbone; a decoder
                takes ``dtype`` and ``sequence_length``; a ``.keras`` file takes none.

        Raises:
            ValueError: an unknown name (the known ones are listed), or a checkpoint that holds
                no object of this class.
        """
        if not _loader:
            raise RuntimeError("from_preset needs `import tfmodels.presets` (import tfmodels does)")
        return _loader[0](cls, preset, **kwargs)

    @classmethod
    def _from_preset_parts(cls, backbone, tokenizer, **kwargs):
        raise ValueError(
            f"{cls.__name__}.from_preset reads only .keras files (a checkpoint gives a backbone "
            "and a tokenizer, not this task's head)"
        )
