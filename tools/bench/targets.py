"""The targets of issue 9 ("What it must reach"): each a figure of one bench run with a PASS / MISS / SKIP verdict.

:func:`evaluate_targets` reads a results dict (see :mod:`tools.bench.report`
for its shape) and returns one :class:`Target` row per target, then the extra
rows (``extra=True``) that are reported but are not targets: the HTTP API's
tail, the service against the arithmetic pipeline limit (parts timed alone)
and its CPU per image against the busy-cores limit's, and the monolith /
TensorFlow service / LiteRT service comparisons that separate "persistent
process" from "faster runtime" (verdict ``INFO``). The service's throughput
target compares with the pipeline limit measured with every core busy
(:mod:`tools.bench.busy`), or the arithmetic one where a run has none.
The four ratio targets (service and HTTP API at c=1 against the in-process
request, the service at c=16 against that limit, the HTTP API against the
service) take the paired rounds (:mod:`tools.bench.paired`: both sides measured
seconds apart, the median of each round's own ratio); the same ratios from the
sections' figures, taken minutes apart, are reported beside them. Where the
paired rounds lack a ratio, the target falls back to the sections' figures and
says why. Every row names the runtime that served each side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from .stats import measured_limit, run_at

PASS, MISS, SKIP, INFO = "PASS", "MISS", "SKIP", "INFO"
#: the thresholds of issue 9
FORWARD_OVERHEAD_MAX = 1.15
REQUEST_GOAL_MS = 6.0
SERVICE_LATENCY_RATIO_MAX, SERVICE_LATENCY_SLACK_MS = 1.10, 1.0
HTTP_LATENCY_SLACK_MS = 2.0
THROUGHPUT_RATIO_MIN = 0.85
#: the thresholds as the tables print them
SERVICE_LATENCY_THRESHOLD = f"<= {SERVICE_LATENCY_RATIO_MAX:.2f} or <= +{SERVICE_LATENCY_SLACK_MS:g} ms"
HTTP_LATENCY_THRESHOLD = f"<= +{HTTP_LATENCY_SLACK_MS:g} ms"
THROUGHPUT_THRESHOLD = f">= {THROUGHPUT_RATIO_MIN:.2f}"
TAIL_RATIO_MAX = 2.5
START_MAX_S = 2.0
RSS_MAX_MB = 350.0
CAMERA_DECODE_MAX_MS = 12.0
#: issue 9's absolute aims for the chelsea PNG over HTTP (half the latency and twice the throughput of the peers)
PNG_HTTP_P50_AIM_MS = 11.0
PNG_HTTP_IPS_AIM = 175.0
MB = 1e6
MIB = 2**20
#: the rows of :func:`evaluate_targets`, in order: the ten targets, then the extra rows
TARGET_KEYS = ("forward", "request", "service_latency", "http_latency", "service_throughput", "http_throughput",
               "service_tail", "start", "rss", "camera_decode")
#: the four ratio targets read the paired rounds; each also reported from the sections' figures (the ``_unpaired`` rows)
PAIRED_KEYS = ("service_latency", "http_latency", "service_throughput", "http_throughput")
EXTRA_KEYS = (*(f"{key}_unpaired" for key in PAIRED_KEYS), "http_tail", "http_png_latency", "http_png_throughput", "service_throughput_arithmetic",
              "service_client_threads_throughput", "service_cpu_vs_busy",
              "monolith_vs_tensorflow_service", "monolith_vs_service", "tensorflow_vs_litert_latency",
              "litert_vs_tensorflow_throughput")


@dataclass(frozen=True)
class Target:
    """One row: what is compared, the threshold, what was measured, the verdict, and whether it is only reported."""

    name: str
    target: str
    measured: float | None
    status: str
    detail: str = ""
    extra: bool = False
    #: a short stable name (``service_latency``) for code and tests; the name above carries the runtimes
    key: str = ""

    def measured_text(self) -> str:
        if self.measured is None:
            return "-"
        return f"{self.measured:.0f}" if abs(self.measured) >= 1000 else f"{self.measured:.3g}"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def _verdict(value: float | None, threshold: float, at_least: bool) -> str:
    if value is None:
        return SKIP
    ok = value >= threshold if at_least else value <= threshold
    return PASS if ok else MISS


def _skip(name: str, target: str, *parts: tuple[str, object], extra: bool = False) -> Target:
    missing = [label for label, value in parts if value is None]
    return Target(name, target, None, SKIP, "no data: " + ", ".join(missing), extra)


def _get(run: dict | None, key: str):
    return None if run is None else run.get(key)


def runtime_label(section: dict | None, default: str = "?") -> str:
    """The runtime that served a section (``litert``, ``tensorflow``), or ``default``."""
    return (section or {}).get("runtime") or default


def evaluate_targets(results: dict) -> list[Target]:
    """Every target of issue 9 from this one run, then the extra (reported) rows."""
    limit = results.get("limit") or {}
    service, http = results.get("service") or {}, results.get("http") or {}
    request_p50 = limit.get("request_p50_ms")
    service1, service16 = run_at(service, 1), run_at(service, 16)
    http1, http16 = run_at(http, 1), run_at(http, 16)
    rt, rt_http, rt_limit = runtime_label(service), runtime_label(http), runtime_label(limit)

    paired = results.get("paired") or {}
    unpaired = {
        "service_latency": service_latency_target(_get(service1, "p50_ms"), request_p50, rt),
        "http_latency": http_latency_target(_get(http1, "p50_ms"), request_p50, rt_http),
        "service_throughput": service_limit_target(f"service [{rt}] images/s @c16", _get(service16, "images_per_s"), limit),
        "http_throughput": _throughput(f"HTTP API [{rt_http}] images/s @c16 / service [{rt}] images/s @c16",
                                       _get(http16, "images_per_s"), _get(service16, "images_per_s"), "service"),
    }
    chosen = {key: with_pairing(paired_target(key, paired, rt, rt_http, limit), unpaired[key], paired, key) for key in PAIRED_KEYS}
    targets = [
        forward_target(limit),
        request_target(request_p50, rt_limit),
        *(chosen[key][0] for key in PAIRED_KEYS),
        tail_target(f"service [{rt}] p99 / p50 @c16", service16),
        start_target(results.get("startup") or {}),
        rss_target(service),
        camera_target(limit.get("camera_decode") or {}),
        *(chosen[key][1] for key in PAIRED_KEYS),
        tail_target(f"HTTP API [{rt_http}] p99 / p50 @c16", http16, extra=True),
        *png_aims(http, rt_http),
        arithmetic_limit_row(f"service [{rt}] images/s @c16 / pipeline limit (arithmetic: parts timed alone)",
                             _get(service16, "images_per_s"), limit),
        client_threads_row(f"service [{rt}] images/s @c16 via BackendClient, 16 threads (as the dashboard calls it)",
                           service.get("client_threads"), limit),
        cpu_per_image_row(f"backend [{rt}] CPU ms per image @c16 / cheapest core-ms per image, all cores busy", service16, limit),
        *comparison_rows(results),
    ]
    return [replace(_with_section_reason(t, key, results), key=key) for t, key in zip(targets, TARGET_KEYS + EXTRA_KEYS, strict=True)]


#: the sections a row needs, where a section may be skipped (its SKIP then says why)
SECTIONS_OF = {
    "http_latency": ("http",), "http_throughput": ("http",), "http_tail": ("http",),
    "http_latency_unpaired": ("http",), "http_throughput_unpaired": ("http",),
    "http_png_latency": ("http",), "http_png_throughput": ("http",),
    "monolith_vs_tensorflow_service": ("monolith", "service_tf"), "monolith_vs_service": ("monolith",),
    "tensorflow_vs_litert_latency": ("service_tf",), "litert_vs_tensorflow_throughput": ("service_tf",),
}


def _with_section_reason(target: Target, key: str, results: dict) -> Target:
    """A SKIP caused by a skipped section says why the section was skipped."""
    if target.status != SKIP:
        return target
    reasons = [(results.get(section) or {}).get("skipped") for section in SECTIONS_OF.get(key, ())]
    reasons = [reason for reason in reasons if reason]
    if not reasons:
        return target
    return replace(target, detail="skipped: " + "; ".join(reasons))


# -- the paired rounds (tools/bench/paired.py) ----------------------------------------------------------


@dataclass(frozen=True)
class PairedComparison:
    """One comparison over the paired rounds: its median, its range and how many rounds gave it."""

    median: float
    low: float
    high: float
    rounds: int


#: the paired rounds' steps each ratio target needs (where one was left out, its reason says why the target is not paired)
PAIRED_STEPS = {"service_latency": ("inprocess", "service_c1"), "http_latency": ("inprocess", "http_c1"),
                "service_throughput": ("service_c16", "limit"), "http_throughput": ("http_c16", "service_c16")}
UNPAIRED_NOTE = "sections run minutes apart"


def paired_comparison(paired: dict, name: str) -> PairedComparison | None:
    """A comparison's median and range over the paired rounds (``paired["medians"]``, ``["ranges"]``), or None."""
    median, span = (paired.get("medians") or {}).get(name), (paired.get("ranges") or {}).get(name)
    if median is None or not span:
        return None
    rounds = len((paired.get("per_round") or {}).get(name, [])) or len(paired.get("rounds", []))
    return PairedComparison(float(median), float(span[0]), float(span[1]), rounds)


def not_paired_reason(paired: dict, key: str) -> str:
    """Why a ratio target could not use the paired rounds: they did not run, or the step it needs was left out."""
    if not paired:
        return "no paired rounds in this run"
    if paired.get("skipped"):
        return str(paired["skipped"])
    left_out = paired.get("skipped_steps") or {}
    reasons = [f"{step} left out ({left_out[step]})" for step in PAIRED_STEPS[key] if left_out.get(step)]
    return "; ".join(reasons) or "no paired figures for it"


def paired_target(key: str, paired: dict, runtime: str, http_runtime: str, limit: dict) -> Target | None:
    """A ratio target from the paired rounds: the median over rounds of each round's own ratio (or difference), with the
    medians of both sides and the per-round range in its detail; None where the rounds do not have it."""
    medians = paired.get("medians") or {}
    if key == "service_latency":
        ratio, extra = paired_comparison(paired, "service_c1_ratio"), paired_comparison(paired, "service_c1_extra_ms")
        if ratio is None or extra is None:
            return None
        return Target(f"service [{runtime}] p50 @c1 / in-process request p50 (paired rounds)", SERVICE_LATENCY_THRESHOLD,
                      ratio.median, _service_latency_verdict(ratio.median, extra.median),
                      f"{medians['service_c1_p50_ms']:.2f} ms vs {medians['inprocess_p50_ms']:.2f} ms ({_rounds_text(ratio)}); "
                      f"per round {ratio.low:.2f}..{ratio.high:.2f}x, {extra.low:+.2f}..{extra.high:+.2f} ms (median {extra.median:+.2f} ms)")
    if key == "http_latency":
        extra = paired_comparison(paired, "http_c1_extra_ms")
        if extra is None:
            return None
        return Target(f"HTTP API [{http_runtime}] p50 @c1 - in-process request p50 (ms; paired rounds)", HTTP_LATENCY_THRESHOLD,
                      extra.median, _verdict(extra.median, HTTP_LATENCY_SLACK_MS, at_least=False),
                      f"{medians['http_c1_p50_ms']:.2f} ms vs {medians['inprocess_p50_ms']:.2f} ms ({_rounds_text(extra)}); "
                      f"per round {extra.low:+.2f}..{extra.high:+.2f} ms")
    if key == "service_throughput":
        config = f"; limit: {paired['limit_config']}" if paired.get("limit_config") else ""
        return _paired_throughput(f"service [{runtime}] images/s @c16 / pipeline limit (measured, all cores busy; paired rounds)",
                                  paired_comparison(paired, "service_c16_vs_limit"), medians.get("service_c16_ips"),
                                  medians.get("limit_ips"), config)
    if key == "http_throughput":
        return _paired_throughput(f"HTTP API [{http_runtime}] images/s @c16 / service [{runtime}] images/s @c16 (paired rounds)",
                                  paired_comparison(paired, "http_c16_vs_service"), medians.get("http_c16_ips"),
                                  medians.get("service_c16_ips"))
    raise ValueError(f"Expected one of {PAIRED_KEYS}. Received: {key!r}")


def _rounds_text(comparison: PairedComparison) -> str:
    return f"medians of {comparison.rounds} paired rounds"


def _paired_throughput(name: str, ratio: PairedComparison | None, measured_ips: float, reference_ips: float,
                       note: str = "") -> Target | None:
    """A throughput target from the median of the rounds' own ratios (None where the rounds do not have it)."""
    if ratio is None:
        return None
    return Target(name, THROUGHPUT_THRESHOLD, ratio.median, _verdict(ratio.median, THROUGHPUT_RATIO_MIN, at_least=True),
                  f"{measured_ips:.1f} vs {reference_ips:.1f} images/s ({_rounds_text(ratio)}{note}); "
                  f"per round {ratio.low:.3f}..{ratio.high:.3f}")


def _service_latency_verdict(ratio: float, extra_ms: float) -> str:
    """Within 1.10x of the in-process request, or within +1 ms of it: either passes."""
    return PASS if ratio <= SERVICE_LATENCY_RATIO_MAX or extra_ms <= SERVICE_LATENCY_SLACK_MS else MISS


def unpaired_name(name: str) -> str:
    """``... p50 (ms)`` -> ``... p50 (ms; sections run minutes apart)``; ``... p50`` -> ``... p50 (sections run minutes apart)``."""
    return f"{name[:-1]}; {UNPAIRED_NOTE})" if name.endswith(")") else f"{name} ({UNPAIRED_NOTE})"


def with_pairing(paired: Target | None, unpaired: Target, rounds: dict, key: str) -> tuple[Target, Target]:
    """(the target row, its extra row): the paired target, and the sections' figures reported beside it; or, where
    the paired rounds lack it, the sections' figures as the target (saying why) and an extra row that says so."""
    extra_name = unpaired_name(unpaired.name)
    if paired is not None:
        return paired, replace(unpaired, name=extra_name, extra=True)
    why = not_paired_reason(rounds, key)
    fallback = replace(unpaired, detail=f"{unpaired.detail}; not paired: {why}" if unpaired.detail else f"not paired: {why}")
    return fallback, Target(extra_name, unpaired.target, None, SKIP, f"not paired ({why}): the target above is this one", True)


def forward_target(limit: dict) -> Target:
    name = "backend forward @1 / plain LiteRT interpreter (same flatbuffer, all cores, interleaved)"
    target = f"<= {FORWARD_OVERHEAD_MAX:.2f}"
    versus = limit.get("forward_vs_plain") or {}
    if versus.get("skipped"):
        return Target(name, target, None, SKIP, versus["skipped"])
    backend_ms, plain_ms = versus.get("backend_ms"), versus.get("plain_ms")
    ratio = _ratio(backend_ms, plain_ms)
    if ratio is None:
        return _skip(name, target, ("backend forward", backend_ms), ("plain interpreter", plain_ms))
    detail = (f"[{runtime_label(limit)}] {backend_ms:.2f} ms vs plain {plain_ms:.2f} ms (median of {versus.get('pairs', '?')} pairs; "
              f"{versus.get('backend_threads', '?')} vs {versus.get('plain_threads', '?')} threads)")
    return Target(name, target, ratio, _verdict(ratio, FORWARD_OVERHEAD_MAX, at_least=False), detail)


def request_target(request_p50: float | None, runtime: str) -> Target:
    name = f"in-process request [{runtime}] p50 (ms; decode + preprocess + forward @1, chelsea photo)"
    target = f"goal <= {REQUEST_GOAL_MS:g} ms"
    if request_p50 is None:
        return _skip(name, target, ("in-process request", request_p50))
    return Target(name, target, request_p50, _verdict(request_p50, REQUEST_GOAL_MS, at_least=False), f"{request_p50:.2f} ms (p50)")


def service_latency_target(service_p50: float | None, request_p50: float | None, runtime: str) -> Target:
    """Within 1.10x of the in-process request, or within +1 ms of it (either passes)."""
    name = f"service [{runtime}] p50 @c1 / in-process request p50"
    ratio = _ratio(service_p50, request_p50)
    if ratio is None:
        return _skip(name, SERVICE_LATENCY_THRESHOLD, ("service", service_p50), ("in-process request", request_p50))
    extra_ms = service_p50 - request_p50
    return Target(name, SERVICE_LATENCY_THRESHOLD, ratio, _service_latency_verdict(ratio, extra_ms),
                  f"{service_p50:.2f} ms vs {request_p50:.2f} ms ({extra_ms:+.2f} ms)")


def http_latency_target(http_p50: float | None, request_p50: float | None, runtime: str) -> Target:
    """At most 2 ms more than the in-process request (a difference, in ms)."""
    name = f"HTTP API [{runtime}] p50 @c1 - in-process request p50 (ms)"
    if http_p50 is None or request_p50 is None:
        return _skip(name, HTTP_LATENCY_THRESHOLD, ("HTTP API", http_p50), ("in-process request", request_p50))
    extra_ms = http_p50 - request_p50
    return Target(name, HTTP_LATENCY_THRESHOLD, extra_ms, _verdict(extra_ms, HTTP_LATENCY_SLACK_MS, at_least=False),
                  f"{http_p50:.2f} ms vs {request_p50:.2f} ms ({extra_ms:+.2f} ms)")


def _throughput(name: str, measured_ips: float | None, reference_ips: float | None, reference: str, extra: bool = False,
                note: str = "") -> Target:
    ratio = _ratio(measured_ips, reference_ips)
    if ratio is None:
        return _skip(name, THROUGHPUT_THRESHOLD, ("measured", measured_ips), (reference, reference_ips), extra=extra)
    return Target(name, THROUGHPUT_THRESHOLD, ratio, _verdict(ratio, THROUGHPUT_RATIO_MIN, at_least=True),
                  f"{measured_ips:.1f} vs {reference_ips:.1f} images/s{note}", extra)


def service_limit_target(name: str, service_ips: float | None, limit: dict) -> Target:
    """The service at c=16 against the pipeline limit measured with every core busy (the arithmetic one where the run has none)."""
    limit_ips, how = measured_limit(limit)
    best = (limit.get("busy_limit") or {}).get("best")
    note = f" (limit: {best})" if best and how.startswith("measured") else ""
    return _throughput(f"{name} / pipeline limit ({how})", service_ips, limit_ips, "limit", note=note)


def arithmetic_limit_row(name: str, service_ips: float | None, limit: dict) -> Target:
    """Reported beside the target: the service against the limit summed from parts timed alone (where the target used
    the measured one; otherwise the target row above already is this comparison)."""
    if not (limit.get("busy_limit") or {}).get("images_per_s"):
        return Target(name, THROUGHPUT_THRESHOLD, None, SKIP, "no measured limit in this run: the target above is this one", True)
    return _throughput(name, service_ips, limit.get("pipeline_limit_ips"), "arithmetic limit", extra=True)


def client_threads_row(name: str, run: dict | None, limit: dict) -> Target:
    """Reported beside the target: the service at c=16 loaded through the client library from 16 threads (each
    reply wakes a thread that queues for the GIL: the load generator takes more of the shared cores than the lean one)."""
    limit_ips, how = measured_limit(limit)
    return _throughput(f"{name} / pipeline limit ({how})", _get(run, "images_per_s"), limit_ips, "limit", extra=True)


def cpu_per_image_row(name: str, service16: dict | None, limit: dict) -> Target:
    """Reported: the backend's CPU per image at c=16 against the cheapest busy-cores config's, both with every core working
    (CPU time, so it holds on a shared machine where the images/s of both drop with what else runs)."""
    backend_ms = ((service16 or {}).get("cpu_ms_per_request") or {}).get("backend")
    busy = limit.get("busy_limit") or {}
    busy_ms = busy.get("cheapest_core_ms_per_image") or busy.get("core_ms_per_image")
    ratio = _ratio(backend_ms, busy_ms)
    if ratio is None:
        return _skip(name, "reported", ("backend CPU per image", backend_ms), ("busy-cores core-ms per image", busy_ms), extra=True)
    return Target(name, "reported", ratio, INFO, f"{backend_ms:.2f} vs {busy_ms:.2f} core-ms per image", extra=True)


def tail_target(name: str, run: dict | None, extra: bool = False) -> Target:
    target = f"<= {TAIL_RATIO_MAX:g}"
    p99, p50 = _get(run, "p99_ms"), _get(run, "p50_ms")
    ratio = _ratio(p99, p50)
    if ratio is None:
        return _skip(name, target, ("p99", p99), ("p50", p50), extra=extra)
    return Target(name, target, ratio, _verdict(ratio, TAIL_RATIO_MAX, at_least=False), f"p99 {p99:.1f} ms, p50 {p50:.1f} ms", extra)


def start_target(startup: dict) -> Target:
    name = f"backend [{runtime_label(startup)}] start to ready, cached model (s; spawn to 'Backend ready on')"
    target = f"<= {START_MAX_S:g} s"
    median = startup.get("median_s")
    if median is None:
        return _skip(name, target, ("start to ready", median))
    starts = ", ".join(f"{s:.2f}" for s in startup.get("starts_s", []))
    detail = f"median of {len(startup.get('starts_s', []))} starts ({starts} s); first start {startup.get('first_start_s', 0):.2f} s"
    return Target(name, target, median, _verdict(median, START_MAX_S, at_least=False), detail)


def rss_target(service: dict) -> Target:
    """The LiteRT backend's resident memory after the loads (the larger of after-service and after-HTTP), in MB (10^6 bytes)."""
    runtime = runtime_label(service)
    name = f"backend [{runtime}] RSS after the loads (MB)"
    target = f"<= {RSS_MAX_MB:g} MB"
    readings = [service.get(key) for key in ("rss_mb", "rss_after_http_mb") if service.get(key) is not None]
    if not readings:
        return _skip(name, target, ("backend RSS", None))
    if runtime != "litert":
        return Target(name, target, None, SKIP, f"the backend served on {runtime}, not LiteRT ({service.get('runtime_reason', '')})")
    mb = max(readings) * MIB / MB
    return Target(name, target, mb, _verdict(mb, RSS_MAX_MB, at_least=False), f"{mb:.0f} MB = {max(readings):.0f} MiB")


def camera_target(camera: dict) -> Target:
    name = "12 MP camera JPEG decode + preprocess p50 (ms)"
    target = f"<= {CAMERA_DECODE_MAX_MS:g} ms"
    if camera.get("skipped"):
        return Target(name, target, None, SKIP, camera["skipped"])
    p50 = camera.get("p50_ms")
    if p50 is None:
        return _skip(name, target, ("camera decode", p50))
    size = f", {camera['bytes'] / MB:.1f} MB file" if camera.get("bytes") else ""
    return Target(name, target, p50, _verdict(p50, CAMERA_DECODE_MAX_MS, at_least=False), f"{p50:.2f} ms (p50{size})")


def png_aims(http: dict, runtime: str) -> list[Target]:
    """Issue 9's absolute aims (reported, with a verdict): the chelsea PNG over HTTP, p50 at c=1 and images/s at c=16."""
    png1, png16 = run_at({"runs": http.get("png_runs", [])}, 1), run_at({"runs": http.get("png_runs", [])}, 16)
    p50, ips = _get(png1, "p50_ms"), _get(png16, "images_per_s")
    latency_name, latency_aim = f"HTTP API [{runtime}] p50 @c1, chelsea PNG (ms)", f"aim <= {PNG_HTTP_P50_AIM_MS:g} ms"
    throughput_name, throughput_aim = f"HTTP API [{runtime}] images/s @c16, chelsea PNG", f"aim >= {PNG_HTTP_IPS_AIM:g}"
    return [
        _skip(latency_name, latency_aim, ("PNG p50", p50), extra=True) if p50 is None else
        Target(latency_name, latency_aim, p50, _verdict(p50, PNG_HTTP_P50_AIM_MS, at_least=False), f"{p50:.2f} ms (p50)", True),
        _skip(throughput_name, throughput_aim, ("PNG images/s", ips), extra=True) if ips is None else
        Target(throughput_name, throughput_aim, ips, _verdict(ips, PNG_HTTP_IPS_AIM, at_least=True), f"{ips:.1f} images/s", True),
    ]


def comparison_rows(results: dict) -> list[Target]:
    """Reported, not targets: persistent process (monolith vs TensorFlow service) and faster runtime (TensorFlow vs LiteRT service)."""
    service, service_tf = results.get("service") or {}, results.get("service_tf") or {}
    monolith = results.get("monolith") or {}
    # the monolith always runs TensorFlow, and the second service is started with --runtime tensorflow
    rt, rt_tf, rt_mono = runtime_label(service), runtime_label(service_tf, "tensorflow"), runtime_label(monolith, "tensorflow")
    p50, p50_tf = _get(run_at(service, 1), "p50_ms"), _get(run_at(service_tf, 1), "p50_ms")
    ips, ips_tf = _get(run_at(service, 16), "images_per_s"), _get(run_at(service_tf, 16), "images_per_s")
    monolith_ms = monolith.get("median_wall_ms")
    rows = [
        (f"monolith [{rt_mono}] per request / service [{rt_tf}] p50 @c1 (persistent process)", monolith_ms, p50_tf, "ms"),
        (f"monolith [{rt_mono}] per request / service [{rt}] p50 @c1", monolith_ms, p50, "ms"),
        (f"service [{rt_tf}] p50 @c1 / service [{rt}] p50 @c1 (faster runtime)", p50_tf, p50, "ms"),
        (f"service [{rt}] images/s @c16 / service [{rt_tf}] images/s @c16 (faster runtime)", ips, ips_tf, "images/s"),
    ]
    out = []
    for name, numerator, denominator, unit in rows:
        ratio = _ratio(numerator, denominator)
        if ratio is None:
            out.append(_skip(name, "reported", ("numerator", numerator), ("denominator", denominator), extra=True))
        else:
            out.append(Target(name, "reported", ratio, INFO, f"{numerator:.2f} vs {denominator:.2f} {unit}", extra=True))
    return out


def targets_as_dicts(targets: Sequence[Target]) -> list[dict]:
    return [asdict(t) for t in targets]
