"""How the compression benchmark times a model, on either side (our TF runtime, ONNX Runtime, LiteRT).

Standard library and numpy only, so the ONNX Runtime peer (its own virtual environment) times its sessions
with the same code. The host is noisy: `interleaved` alternates the sides round by round in one process
and reports medians.
"""

import statistics
import time
from typing import Callable, Dict


def batch1_ms(call: Callable[[], object], calls: int) -> float:
    """Median milliseconds of `calls` sequential calls of a batch-1 request."""
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return 1000 * statistics.median(seconds)


def rows_per_second(call: Callable[[], object], rows: int, calls: int) -> float:
    """Rows per second over `calls` back-to-back calls of a `rows`-row batch."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return rows * calls / (time.perf_counter() - start)


def interleaved(sides: Dict[str, Dict[str, Callable[[], object]]], *, rounds: int, batch1_calls: int,
                batch_calls: int, batch_rows: int) -> Dict[str, Dict[str, float]]:
    """`{side: {"batch1": call, "batch": call}}` -> `{side: {"p50_ms_batch1", "rows_per_s_batch<rows>"}}`,
    medians over `rounds` rounds; every round times each side once, in turn, after one untimed warm call."""
    for calls in sides.values():
        calls["batch1"]()
        calls["batch"]()
    samples = {name: {"batch1": [], "batch": []} for name in sides}
    for _ in range(rounds):
        for name, calls in sides.items():
            samples[name]["batch1"].append(batch1_ms(calls["batch1"], batch1_calls))
            samples[name]["batch"].append(rows_per_second(calls["batch"], batch_rows, batch_calls))
    return {name: {"p50_ms_batch1": round(statistics.median(s["batch1"]), 3),
                   f"rows_per_s_batch{batch_rows}": round(statistics.median(s["batch"]), 2)}
            for name, s in samples.items()}

