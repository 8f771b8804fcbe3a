"""The paired rounds: both sides of each ratio target measured seconds apart, round after round, so the host's drift cancels.

Four targets of issue 9 compare two figures: the service's p50 at c=1 and the
HTTP API's with the in-process request, the service's images/s at c=16 with the
pipeline limit, the HTTP API's with the service's. The sections take those
figures minutes apart (the limit first, in its own child process; the service
and the HTTP API later), and this machine, a shared virtual machine, drifts by
5-30% over minutes: a ratio then moves from run to run with the host. Here,
with one backend and one dashboard up, each round measures every side once:

* a: the in-process request, N requests (decode + preprocess + forward at batch 1 on the backend's model with
  the backend's defaults, what the limit reports as ``request_p50_ms``) in a child process that stays up
  across rounds (:mod:`tools.bench.inprocess`), so the bench process never imports a model runtime;
* b: the service at c=1, N requests; c: the HTTP API at c=1, N requests (the lean generator, :mod:`tools.bench.lean_load`);
* d: the service at c=16, K requests; e: the HTTP API at c=16, K requests;
* f: the pipeline limit: one window of the busy-cores limit's best config (:class:`tools.bench.busy.BusyCores`,
  whose children also stay up), the backend and the dashboard idle meanwhile.

The steps run one after another in two halves, ``c a b`` and ``f d e``, so both
sides of each compared pair (c-a, a-b, f-d, d-e) run next to each other,
seconds apart. The order rotates without parting a pair (:func:`round_order`):
every other round runs backwards (``e d f b a c``: each side of a pair runs first
in half the rounds, so a trend within a round falls on both alike) and every
two rounds the halves swap (``f d e c a b``). Each round gives its own
ratios (and differences, in ms); a target takes their median over rounds and
shows their range. A step that cannot run (``--skip-http``; no busy-cores limit
on TensorFlow) is left out with its reason, and the targets that need it fall
back to the sections' figures (:mod:`tools.bench.targets`).

The arithmetic (:func:`round_order`, :func:`round_comparisons`,
:func:`summarize_rounds`) is pure and tested in tests/unit/test_bench_paired.py.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from tools.processes import Child, ProcessError

from .busy import START_DELAY_S, BusyConfig, BusyCores, config_of, make_schedule, summarize_busy
from .inprocess import InProcessRequests
from .lean_load import Channels, http_channels, zmq_channels
from .load import run_load, summarize, warm_up
from .meter import CpuMeter
from .plan import PAIRED_CONCURRENCY, BenchError, Plan
from .stats import percentile

log = logging.getLogger("tools.bench")

#: the steps, by the letter the report writes them with
STEP_LETTERS = {"inprocess": "a", "service_c1": "b", "http_c1": "c", "service_c16": "d", "http_c16": "e", "limit": "f"}
#: the order of round 1, in two halves: every compared pair is side by side (c-a, a-b; f-d, d-e) and stays so in every round
HALVES = (("http_c1", "inprocess", "service_c1"), ("limit", "service_c16", "http_c16"))
#: the figure each step gives its round (the service at c=16 and the limit also give their CPU per image: :data:`CPU_FIGURES`)
FIGURE_OF = {"inprocess": "inprocess_p50_ms", "service_c1": "service_c1_p50_ms", "http_c1": "http_c1_p50_ms",
             "service_c16": "service_c16_ips", "http_c16": "http_c16_ips", "limit": "limit_ips"}
CPU_FIGURES = {"service_c16": "service_c16_cpu_ms_per_image", "limit": "limit_core_ms_per_image"}
RATIO, DIFFERENCE = "ratio", "difference"
#: each round's comparisons: name -> (numerator figure, denominator figure, ratio or difference)
COMPARISONS = {
    "service_c1_ratio": ("service_c1_p50_ms", "inprocess_p50_ms", RATIO),
    "service_c1_extra_ms": ("service_c1_p50_ms", "inprocess_p50_ms", DIFFERENCE),
    "http_c1_extra_ms": ("http_c1_p50_ms", "inprocess_p50_ms", DIFFERENCE),
    "service_c16_vs_limit": ("service_c16_ips", "limit_ips", RATIO),
    "http_c16_vs_service": ("http_c16_ips", "service_c16_ips", RATIO),
    #: reported, not a target: CPU per image, the backend's at c=16 over the limit's (other processes' load moves it little)
    "service_c16_cpu_vs_limit": ("service_c16_cpu_ms_per_image", "limit_core_ms_per_image", RATIO),
}

PAIRED_DEFINITION = (
    "paired rounds = after the sections, with the backend and the dashboard up, {rounds} rounds, each measuring one after "
    "another (a step whose section was skipped is left out): a, the in-process request ({n} requests, decode + preprocess "
    "+ forward @1 on the backend's model with its defaults, in a child process that stays up across rounds); b, the "
    "service at c=1 ({n} requests); c, the HTTP API at c=1 ({n}); d, the service at c=16 ({k}); e, the HTTP API at c=16 "
    "({k}); f, the pipeline limit (one {window:g} s window of {config}, in child processes that stay up; the backend and "
    "the dashboard idle). The rounds run c a b f d e, e d f b a c, f d e c a b, b a c e d f, and again: both sides of each "
    "compared pair run next to each other, seconds apart, and each runs first in every other round. Each round gives its "
    "own ratios: service / in-process p50 (and the difference in ms), HTTP - in-process p50, service c=16 / limit, HTTP "
    "c=16 / service c=16; the four targets take the median over rounds and show the range, so the host's drift over "
    "minutes, which falls on both sides of a pair alike, cancels. Also per round: the backend's CPU per image at c=16 over "
    "the limit's core-ms per image (CPU time, which other processes' load moves far less than images/s)"
)


def round_order(halves: Sequence[Sequence[str]], round_index: int) -> list[str]:
    """The steps in the order of one round: every other round runs backwards, and every two rounds the halves swap.

    With the halves (c a b) and (f d e): c a b f d e, e d f b a c, f d e c a b, b a c e d f, then again.
    Both sides of each compared pair always run next to each other, each runs first in every other round,
    and each half runs first in every other pair of rounds.
    """
    kept = [list(half) for half in halves if half]
    if not kept:
        return []
    shift = (round_index // 2) % len(kept)
    order = [step for half in kept[shift:] + kept[:shift] for step in half]
    return order[::-1] if round_index % 2 else order


def round_comparisons(figures: dict) -> dict:
    """The comparisons (:data:`COMPARISONS`) of one round's figures; those missing a side (or dividing by 0) are left out."""
    out = {}
    for name, (numerator, denominator, kind) in COMPARISONS.items():
        top, bottom = figures.get(numerator), figures.get(denominator)
        if top is None or bottom is None or (kind == RATIO and not bottom):
            continue
        out[name] = round(top / bottom, 4) if kind == RATIO else round(top - bottom, 3)
    return out


def summarize_rounds(rounds: Sequence[dict]) -> dict:
    """Over rounds (each ``{"figures", "comparisons"}``): the median of every figure and comparison, and every
    comparison's per-round values and range ``[min, max]``; a name missing from a round is left out of that round."""
    medians: dict[str, float] = {}
    per_round: dict[str, list[float]] = {}
    for key, names in (("figures", [*FIGURE_OF.values(), *CPU_FIGURES.values()]), ("comparisons", COMPARISONS)):
        for name in names:
            found = [r[key][name] for r in rounds if name in r.get(key, {})]
            if found:
                medians[name] = round(statistics.median(found), 4)
                if key == "comparisons":
                    per_round[name] = found
    return {"medians": medians, "per_round": per_round,
            "ranges": {name: [min(found), max(found)] for name, found in per_round.items()}}


def letters(order: Sequence[str]) -> str:
    """``c a b f d e``: a round's order as the report writes it."""
    return " ".join(STEP_LETTERS[step] for step in order)


def bench_paired(model_args: Sequence[str], photo: bytes, plan: Plan, limit: dict, backend: Child, address: str,
                 http_url: str | None, no_http: str, log_dir: Path, work_dir: Path, watch: dict[str, int] | None = None) -> dict:
    """The paired rounds against the backend at ``address`` and the HTTP API at ``http_url`` (None: ``no_http`` says why);
    ``{"skipped": reason}`` if they cannot run."""
    started = time.perf_counter()
    skipped: dict[str, str] = {}
    if http_url is None:
        skipped.update(http_c1=no_http, http_c16=no_http)
    busy_limit = limit.get("busy_limit") or {}
    config = config_of(busy_limit)
    if config is None:
        skipped["limit"] = busy_limit.get("skipped") or "no busy-cores limit in this run"
    try:
        with contextlib.ExitStack() as stack:
            stderr = stack.enter_context(open(log_dir / "paired.log", "wb"))
            photo_path = work_dir / "paired-photo.jpg"
            photo_path.write_bytes(photo)
            inprocess = stack.enter_context(InProcessRequests(list(model_args), photo_path, work_dir / "paired-model.tflite", stderr))
            busy = None
            if "limit" not in skipped:
                busy = busy_cores(inprocess.ready, photo_path, config, stderr)
                if isinstance(busy, str):
                    skipped["limit"], busy = busy, None
                else:
                    stack.enter_context(busy)
            halves = [[step for step in half if step not in skipped] for half in HALVES]
            steps = [step for half in halves for step in half]
            service, http = zmq_channels(address, photo), http_channels(http_url, photo) if http_url else None
            for channels in filter(None, (service, http)):  # connections, sockets and the servers' threads get going
                warm_up(channels, plan)
            measure = step_measures(plan, inprocess, busy, service, http, backend.pid)
            rounds = run_rounds(halves, measure, plan, {**(watch or {}), "backend": backend.pid})
            runtime = inprocess.ready.get("runtime") or "?"
    except (BenchError, ProcessError, OSError) as exc:
        log.warning("The paired rounds failed: %s", exc)
        return {"skipped": f"the paired rounds failed: {str(exc).splitlines()[0][:300]}"}
    definition = PAIRED_DEFINITION.format(rounds=plan.paired_rounds, n=plan.paired_requests_c1, k=plan.paired_requests_concurrent,
                                          window=plan.busy_window_s, config=config.label if config else "the best config")
    others = [r["others_cpu_pct"] for r in rounds]
    return {"runtime": runtime, "rounds": rounds, **summarize_rounds(rounds), "steps": [STEP_LETTERS[s] + " " + s for s in steps],
            "skipped_steps": skipped, "requests_c1": plan.paired_requests_c1, "requests_concurrent": plan.paired_requests_concurrent,
            "concurrency": PAIRED_CONCURRENCY, "limit_config": config.label if config else None, "window_s": plan.busy_window_s,
            "others_cpu_pct": round(statistics.median(others), 1), "seconds": round(time.perf_counter() - started, 1),
            "definition": definition}


def busy_cores(ready: dict, photo_path: Path, config: BusyConfig, stderr: IO[bytes]) -> BusyCores | str:
    """The busy-cores children for the limit's step, on the flatbuffer the in-process child wrote; or why there are none."""
    spec = ready.get("busy")
    if not spec:
        return f"the model runs on {ready.get('runtime', '?')}: no flatbuffer for the busy-cores children"
    return BusyCores(Path(spec["flatbuffer"]), photo_path, [config], preprocess_mode=spec["preprocess_mode"],
                     input_size=tuple(spec["input_size"]), max_bytes=int(spec["max_bytes"]), max_pixels=int(spec["max_pixels"]),
                     stderr=stderr)


def step_measures(plan: Plan, inprocess: InProcessRequests, busy: BusyCores | None, service: Channels,
                  http: Channels | None, backend_pid: int) -> dict[str, Callable[[], tuple[dict, int]]]:
    """Per step, a call that measures it once: ({figure: value}, errors). The service at c=16 and the limit also give
    their CPU per image (the backend's, all its threads; the limit's processes'), which other processes' load moves
    far less than images/s."""
    def load(channels: Channels, concurrency: int, requests: int) -> dict:
        summary = summarize(run_load(channels, concurrency, requests))
        if not summary["requests"]:
            raise BenchError(f"No request answered at c={concurrency} in a paired round: {summary.get('first_errors')}")
        return summary

    def p50(figure: str, channels: Channels, requests: int) -> tuple[dict, int]:
        summary = load(channels, 1, requests)
        return {figure: summary["p50_ms"]}, summary["errors"]

    def images_per_s(figure: str, channels: Channels, requests: int, cpu_figure: str | None = None) -> tuple[dict, int]:
        meter = CpuMeter({"backend": backend_pid})
        summary = load(channels, PAIRED_CONCURRENCY, requests)
        figures = {figure: summary["images_per_s"]}
        backend_cpu_s = meter.reading()["cpu_s"].get("backend")
        if cpu_figure and backend_cpu_s is not None:
            figures[cpu_figure] = 1000.0 * backend_cpu_s / summary["requests"]
        return figures, summary["errors"]

    def limit_window() -> tuple[dict, int]:
        slots = make_schedule(1, 1, time.time() + START_DELAY_S, plan.busy_warmup_s, plan.busy_window_s)
        window = summarize_busy(busy.configs, slots, busy.run(slots))
        return {"limit_ips": window["images_per_s"], "limit_core_ms_per_image": window["core_ms_per_image"]}, 0

    n, k = plan.paired_requests_c1, plan.paired_requests_concurrent
    measures = {
        "inprocess": lambda: ({"inprocess_p50_ms": percentile(inprocess.latencies_ms(n), 50)}, 0),
        "service_c1": lambda: p50("service_c1_p50_ms", service, n),
        "service_c16": lambda: images_per_s("service_c16_ips", service, k, "service_c16_cpu_ms_per_image"),
    }
    if http is not None:
        measures.update(http_c1=lambda: p50("http_c1_p50_ms", http, n), http_c16=lambda: images_per_s("http_c16_ips", http, k))
    if busy is not None:
        measures["limit"] = limit_window
    return measures


def run_rounds(halves: Sequence[Sequence[str]], measure: dict[str, Callable[[], tuple[dict, int]]], plan: Plan,
               watch: dict[str, int]) -> list[dict]:
    """``plan.paired_rounds`` rounds of every step in the order :func:`round_order` gives; each round's figures,
    comparisons and noise."""
    rounds = []
    for index in range(plan.paired_rounds):
        order = round_order(halves, index)
        meter, started = CpuMeter(watch), time.perf_counter()
        figures, errors = {}, 0
        for step in order:
            values, failed = measure[step]()
            figures.update((name, round(float(value), 3)) for name, value in values.items() if value is not None)
            errors += failed
        reading = meter.reading()
        comparisons = round_comparisons(figures)
        rounds.append({"round": index + 1, "order": letters(order), "figures": figures, "comparisons": comparisons,
                       "errors": errors, "others_cpu_pct": reading["others_cpu_pct"], "seconds": round(time.perf_counter() - started, 2)})
        log.info("paired round %d/%d (%s): %s; %s; others' CPU %.0f%%%s", index + 1, plan.paired_rounds, letters(order),
                 ", ".join(f"{name} {value:g}" for name, value in figures.items()),
                 ", ".join(f"{name} {value:g}" for name, value in comparisons.items()), reading["others_cpu_pct"],
                 f", {errors} errors" if errors else "")
    return rounds
