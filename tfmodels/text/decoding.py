"""``decode``: the user-facing name of a tokenizer's ``detokenize``, giving Python strings."""


class DecodesText:
    """Mixin of the tokenizers: ``decode(ids)`` -> Python text (``detokenize`` gives tensors)."""

    def decode(self, ids, **kwargs):
        """Token ids -> text, as Hugging Face's ``tokenizer.decode`` gives it.

        Args:
            ids: one sequence of ids (a list or 1-D tensor) or a batch of them (nested lists,
                a 2-D or ragged tensor).
            **kwargs: the tokenizer's ``detokenize`` options (``skip_special_tokens`` for
                ``BytePairTokenizer``).

        Returns:
            a ``str`` for one sequence, a list of ``str`` for a batch (invalid UTF-8 bytes
            become U+FFFD).
        """
        text = self.detokenize(ids, **kwargs).numpy()
        if isinstance(text, bytes):
            return text.decode("utf-8", errors="replace")
        return [t.decode("utf-8", errors="replace") for t in text.tolist()]
