"""Moved to ``tfmodels.export.seq2seq``; this name stays so existing imports keep working."""

from tfmodels.export.seq2seq import Translator, export_translator

__all__ = ["Translator", "export_translator"]
