"""How loud the machine was: other processes' CPU share during a measurement, CPU time per process, and retries.

The machine may be shared: every measurement records how much CPU other
processes took meanwhile (``others_cpu_pct``, a warning above
:data:`~tools.bench.plan.NOISY_PCT`), and :func:`quietest` measures a disturbed
one again, keeping the quieter try.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from .plan import NOISY_PCT

log = logging.getLogger("tools.bench")


class CpuMeter:
    """Share of the machine's CPU used by processes outside the bench's own tree since the meter started,
    and the CPU time of the bench itself and of named processes (backend, dashboard) meanwhile.

    The bench cannot make a shared machine quiet, but it can say how loud it
    was: (all CPU busy time) - (the bench's and its children's CPU time), as a
    percentage of wall time x cores. Steal time (the hypervisor) is reported apart.
    """

    def __init__(self, watch: dict[str, int] | None = None) -> None:
        self._watch = dict(watch or {})
        self._start = self._snapshot()

    def _snapshot(self) -> dict:
        import psutil

        times = psutil.cpu_times()
        own_times = os.times()
        snapshot = {
            "t": time.perf_counter(),
            "busy": sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq")),
            "steal": getattr(times, "steal", 0.0),
            "bench": own_times.user + own_times.system,
            "tree": own_times.user + own_times.system + own_times.children_user + own_times.children_system,
        }
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child_times = child.cpu_times()
                cpu = child_times.user + child_times.system
                snapshot["tree"] += cpu + child_times.children_user + child_times.children_system
                for name, pid in self._watch.items():
                    if child.pid == pid:
                        snapshot[name] = cpu
        return snapshot

    def reading(self) -> dict:
        """``others_cpu_pct`` and ``steal_pct`` (percent of all cores), ``cpu_s`` per watched process and the bench."""
        start, end = self._start, self._snapshot()
        capacity = max(1e-9, (end["t"] - start["t"]) * (os.cpu_count() or 1))
        others = max(0.0, (end["busy"] - start["busy"]) - (end["tree"] - start["tree"]))
        cpu_s = {name: round(end[name] - start[name], 4) for name in ("bench", *self._watch) if name in start and name in end}
        return {
            "others_cpu_pct": round(100.0 * others / capacity, 1),
            "steal_pct": round(100.0 * (end["steal"] - start["steal"]) / capacity, 1),
            "cpu_s": cpu_s,
        }


def noisy(label: str, reading: dict, threshold_pct: float = NOISY_PCT) -> dict:
    """Log a warning when other processes used a noticeable share of the machine during a measurement."""
    if reading["others_cpu_pct"] > threshold_pct:
        log.warning("%s: other processes used %.0f%% of the machine's CPU meanwhile; its numbers are disturbed",
                    label, reading["others_cpu_pct"])
    return reading


def disturbance(label: str, meter: CpuMeter) -> dict:
    """Just how much other processes used the machine since ``meter`` started (logged if noticeable)."""
    reading = noisy(label, meter.reading())
    reading.pop("cpu_s", None)
    return reading


def quietest(label: str, measure: Callable[[], dict], attempts: int) -> dict:
    """Run ``measure`` (a dict with ``others_cpu_pct``) again while other processes disturbed it, up to
    ``attempts`` times; keep the least disturbed try and record every try's disturbance."""
    tries: list[dict] = []
    for attempt in range(1, attempts + 1):
        tries.append(measure())
        if tries[-1]["others_cpu_pct"] <= NOISY_PCT:
            break
        if attempt < attempts:
            log.warning("%s: measuring again (try %d of %d)", label, attempt + 1, attempts)
    best = min(tries, key=lambda t: t["others_cpu_pct"])
    if len(tries) > 1:
        best["others_cpu_pct_per_try"] = [t["others_cpu_pct"] for t in tries]
    return best


def memory_mb(pid: int) -> dict:
    """Resident memory of a process and its children (psutil), and the process's peak (VmHWM) where Linux gives it."""
    import psutil

    process = psutil.Process(pid)
    rss = process.memory_info().rss + sum(child.memory_info().rss for child in process.children(recursive=True))
    result = {"rss_mb": round(rss / 2**20, 1)}
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                result["peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    return result


def loadavg() -> str:
    """The 1/5/15-minute load averages as text, or ``?``."""
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "?"
