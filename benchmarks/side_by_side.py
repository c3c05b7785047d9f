"""Side-by-side timing shared by the kernel benchmarks: implementations alternate within one process."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def alternate(impl: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds of each implementation over ``rounds`` rounds, the order reversed every other round
    (so that neither always runs first after the other's memory traffic). Call each once before, untimed,
    to compile or load its kernels."""
    times: dict[str, list[float]] = {k: [] for k in impl}
    for r in range(rounds):
        for k in (list(impl) if r % 2 == 0 else list(impl)[::-1]):
            t = time.perf_counter()
            impl[k]()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}
