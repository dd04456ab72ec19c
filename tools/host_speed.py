"""How fast this host runs Python right now: a fixed interpreter workload, timed for about a second.

The test suite's time on a shared host moves by tens of percent from one hour to the next as neighbours load
it (one translate pipeline run took 69 s, then 108 s fifty minutes later, with no change in between that
slows it). `make test` prints this
score at its start and end, so that two CI times are compared together with the host speed each ran at.
Most of the suite's time is single-threaded Python (tracing, TFX orchestration, Beam), hence the workload.

Usage: python tools/host_speed.py  ->  one line, "<score> k loops/s (tools/host_speed.py)"
"""

import statistics
import time


def _loop(n: int) -> int:
    total, table = 0, {}
    for i in range(n):
        key = f"k{i % 97}"
        table[key] = table.get(key, 0) + i
        total += len(key) * (i & 7)
    return total + len(table)


def score(rounds: int = 5, loops: int = 300_000) -> float:
    """Median loops per second over `rounds` timed runs (thousands)."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        _loop(loops)
        rates.append(loops / (time.perf_counter() - start) / 1e3)
    return statistics.median(rates)


if __name__ == "__main__":
    print(f"{score():.0f} k loops/s (tools/host_speed.py)")
