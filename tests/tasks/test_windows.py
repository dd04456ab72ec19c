"""Windows with a stride and max-context selection (tfmodels.text.windows) against run_squad's loop."""

import pytest

from tfmodels.text.windows import max_context, window_starts


def _run_squad_windows(num_tokens, window_size, stride):
    """google-research/bert run_squad.py: the doc_spans loop and _check_is_max_context."""
    spans, start = [], 0
    while start < num_tokens:
        length = min(num_tokens - start, window_size)
        spans.append((start, length))
        if start + length == num_tokens:
            break
        start += min(length, stride)
    spans = spans or [(0, 0)]

    def is_max(index, position):
        best_score, best = None, None
        for i, (s, n) in enumerate(spans):
            if not s <= position <= s + n - 1:
                continue
            score = min(position - s, s + n - 1 - position) + 0.01 * n
            if best_score is None or score > best_score:
                best_score, best = score, i
        return best == index

    masks = [
        [p < n and is_max(i, s + p) for p in range(window_size)] for i, (s, n) in enumerate(spans)
    ]
    return [s for s, _ in spans], masks


@pytest.mark.parametrize(
    "num_tokens,window_size,stride",
    [(0, 4, 2), (1, 4, 2), (4, 4, 2), (5, 4, 2), (10, 4, 3), (17, 5, 2), (30, 8, 8), (9, 3, 1)],
)
def test_windows_and_max_context_match_run_squad(num_tokens, window_size, stride):
    starts, masks = _run_squad_windows(num_tokens, window_size, stride)
    assert window_starts(num_tokens, window_size, stride).numpy().tolist() == starts
    chosen = max_context(num_tokens, window_size, stride).numpy()
    assert chosen.tolist() == masks
    assert chosen.sum() == num_tokens  # every token scored exactly once


def test_last_token_covered():
    starts = window_starts(1000, 128, 64).numpy()
    assert starts[-1] + 128 >= 1000 and starts[-1] < 1000


@pytest.mark.parametrize("window_size,stride", [(0, 1), (4, 0), (4, 5)])
def test_bad_settings(window_size, stride):
    with pytest.raises(ValueError, match="window_size|stride"):
        window_starts(10, window_size, stride)
