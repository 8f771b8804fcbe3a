"""The pipeline limit measured with every core busy: child processes decode and forward side by side, counted together.

Issue 9 holds the service (images/s at c=16) to "the best forward per image
plus decode, spread over the cores". Summing parts timed one at a time
(:func:`~tools.bench.stats.pipeline_limit_ips`) counts each part on an
otherwise idle machine; with every core working, caches and memory are
shared and both parts run slower. So this module measures the spread itself:

* ``cores`` child PROCESSES (no GIL between them), each with its own plain
  1-thread LiteRT interpreter on the backend's flatbuffer, each running
  decode + preprocess + forward of the bench photo back to back: batch 1, and
  batch b (decode b photos, forward once; b = the best batch of the forward table);
* for comparison, one process with one ``cores``-thread interpreter (decode, then forward);

all started together (each says ready; then one schedule with absolute start
times goes to all), each config in its own time slot: an untimed warm-up,
then a counted window. Configs are interleaved over a few rounds, the order
rotated each round. A process's rate is the images of the iterations that
ended inside the window over the time from the first one's start to the
last one's end; a slot's rate is the sum over its processes; a config's, the
median over rounds. The best config's rate is the measured pipeline limit.
Each config also reports its CPU cost (core-ms per image, every thread of its
processes): what an image costs when every core works, comparable to the
backend's CPU per image under load, and far less at the mercy of other
processes than the wall-clock rate. The cheapest config's cost gives a second
reading of the limit, ``cores x 1000 / core-ms per image`` (``cpu_limit_ips``):
on a quiet machine the two agree; on a shared one the CPU reading still holds
while the wall-clock one drops with whatever else runs.

The parent side is :func:`measure_busy_limit` (on :class:`BusyCores`, which the
bench's paired stage also keeps up across its rounds); the children run
``python -m tools.bench.busy --worker`` and speak JSON lines on stdin/stdout
(no pickle; :class:`tools.bench.processes.LineChild`), one schedule a line. The schedule and the arithmetic are pure functions, tested in
tests/unit/test_bench_busy.py.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("tools.bench")

#: seconds between the parent's go and the first slot (every child reads the schedule before it starts)
START_DELAY_S = 0.3
#: seconds between slots: the last iteration of a slot may run past its end
SLOT_GAP_S = 0.05
#: children must say ready within this (they import numpy and LiteRT and warm each interpreter up)
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class BusyConfig:
    """``processes`` processes, each with an interpreter of ``threads`` threads, decoding and forwarding ``batch`` photos a step."""

    processes: int
    threads: int
    batch: int

    @property
    def label(self) -> str:
        return (f"{self.processes} process{'es' if self.processes > 1 else ''} x {self.threads} thread"
                f"{'s' if self.threads > 1 else ''}, batch {self.batch}")


@dataclass(frozen=True)
class Slot:
    """One config's turn: every process runs from ``start``; iterations wholly in [``count_from``, ``end``] count."""

    config: int
    round: int
    start: float
    count_from: float
    end: float


def busy_configs(cores: int, best_batch: int) -> list[BusyConfig]:
    """The configs to measure: ``cores`` 1-thread processes at batch 1 and at ``best_batch``; one ``cores``-thread process."""
    if cores < 1 or best_batch < 1:
        raise ValueError(f"Expected cores >= 1 and best_batch >= 1. Received: cores={cores}, best_batch={best_batch}")
    configs = [BusyConfig(cores, 1, 1)]
    if best_batch != 1:
        configs.append(BusyConfig(cores, 1, best_batch))
    if cores > 1:
        configs.append(BusyConfig(1, cores, 1))
    return configs


def make_schedule(configs: int, rounds: int, start: float, warmup_s: float, window_s: float,
                  gap_s: float = SLOT_GAP_S) -> list[Slot]:
    """``rounds`` rounds of every config back to back from ``start``; each round starts one config later than the last."""
    if configs < 1 or rounds < 1 or window_s <= 0 or warmup_s < 0:
        raise ValueError(f"Expected configs, rounds >= 1, window_s > 0, warmup_s >= 0. Received: "
                         f"{configs}, {rounds}, {window_s}, {warmup_s}")
    slots, at = [], start
    for round_index in range(rounds):
        for offset in range(configs):
            slots.append(Slot((round_index + offset) % configs, round_index, at, at + warmup_s, at + warmup_s + window_s))
            at += warmup_s + window_s + gap_s
    return slots


def window_rate(iterations: Sequence[tuple[float, float, int, float, float]], count_from: float, end: float) -> dict:
    """``{"images", "span_s", "images_per_s", "cpu_s"}`` of the iterations that end inside (count_from, end].

    An iteration is (wall start, wall end, images, process CPU s at start, at end), back to back; the span
    runs from the first counted one's start (it may have begun in the warm-up: a large batch may take
    longer than a short window) to the last one's end, and ``cpu_s`` is the process's CPU time over the
    same iterations (all its threads).
    """
    inside = [it for it in iterations if count_from < it[1] <= end]
    if not inside:
        return {"images": 0, "span_s": 0.0, "images_per_s": 0.0, "cpu_s": 0.0}
    span = inside[-1][1] - inside[0][0]
    images = sum(it[2] for it in inside)
    return {"images": images, "span_s": round(span, 4), "images_per_s": round(images / span, 3) if span > 0 else 0.0,
            "cpu_s": round(inside[-1][4] - inside[0][3], 4)}


def summarize_busy(configs: Sequence[BusyConfig], slots: Sequence[Slot], per_process: Sequence[Sequence[dict]]) -> dict:
    """Per config: the summed images/s of its processes in each round, their median; the best config; its rate.

    ``per_process[p][k]`` is process p's :func:`window_rate` in slot k (all zero where p sat it out).
    """
    rounds: list[list[float]] = [[] for _ in configs]
    core_ms: list[list[float]] = [[] for _ in configs]
    for index, slot in enumerate(slots):
        rounds[slot.config].append(round(sum(float(process[index]["images_per_s"]) for process in per_process), 2))
        images = sum(int(process[index]["images"]) for process in per_process)
        if images:
            core_ms[slot.config].append(1000.0 * sum(float(process[index].get("cpu_s", 0.0)) for process in per_process) / images)
    rows = []
    for config, rates, costs in zip(configs, rounds, core_ms):
        rows.append({**asdict(config), "label": config.label, "images_per_s": round(statistics.median(rates), 2) if rates else None,
                     "rounds_images_per_s": rates, "core_ms_per_image": round(statistics.median(costs), 3) if costs else None})
    measured = [row for row in rows if row["images_per_s"]]
    if not measured:
        raise ValueError("Expected at least one config with images counted. Received: none (is the window too short?)")
    best = max(measured, key=lambda row: row["images_per_s"])
    summary = {"configs": rows, "best": best["label"], "images_per_s": best["images_per_s"], "core_ms_per_image": best["core_ms_per_image"]}
    costed = [row for row in rows if row["core_ms_per_image"]]
    if costed:  # the cheapest way to run the pipeline with every core busy, and what all cores reach at that cost
        cheapest = min(costed, key=lambda row: row["core_ms_per_image"])
        cores = max(config.processes * config.threads for config in configs)
        summary.update(cheapest=cheapest["label"], cheapest_core_ms_per_image=cheapest["core_ms_per_image"],
                       cpu_limit_ips=round(cores * 1000.0 / cheapest["core_ms_per_image"], 2))
    return summary


# -- the parent -----------------------------------------------------------------------------------


class BusyCores:
    """The children, each set up for every config it takes part in, running one schedule after another until closed.

    ``measure_busy_limit`` gives them one schedule of every config over a few
    rounds; the bench's paired stage (:mod:`tools.bench.paired`) keeps them up
    and gives them one window of the best config per round, idle (blocked on
    their input) in between.
    """

    def __init__(self, flatbuffer_path: Path, photo_path: Path, configs: Sequence[BusyConfig], *, preprocess_mode: str,
                 input_size: tuple[int, int], max_bytes: int, max_pixels: int, stderr=None) -> None:
        from .processes import LineChild

        self.configs = list(configs)
        spec = {"flatbuffer": str(flatbuffer_path), "photo": str(photo_path), "preprocess": preprocess_mode,
                "input_size": list(input_size), "max_bytes": max_bytes, "max_pixels": max_pixels,
                "configs": [asdict(config) for config in self.configs]}
        self.children: list = []
        try:
            for index in range(max(config.processes for config in self.configs)):
                child = LineChild(["-m", "tools.bench.busy", "--worker"], "a busy-cores child", stderr=stderr)
                self.children.append(child)
                child.send({**spec, "index": index})
            for child in self.children:
                child.expect("ready", READY_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def run(self, slots: Sequence[Slot]) -> list[list[dict]]:
        """Every child runs ``slots``; per child, its :func:`window_rate` in each slot."""
        for child in self.children:
            child.send({"slots": [asdict(slot) for slot in slots]})
        timeout = slots[-1].end - time.time() + READY_TIMEOUT_S
        return [child.expect("slots", timeout)["slots"] for child in self.children]

    def close(self) -> None:
        for child in self.children:
            child.stop()

    def __enter__(self) -> BusyCores:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def measure_busy_limit(flatbuffer: bytes, photo: bytes, *, preprocess_mode: str, input_size: tuple[int, int],
                       max_bytes: int, max_pixels: int, cores: int, best_batch: int,
                       rounds: int, warmup_s: float, window_s: float) -> dict:
    """Start ``cores`` children, give them one schedule, and return :func:`summarize_busy` plus how it was measured."""
    configs = busy_configs(cores, best_batch)
    with tempfile.TemporaryDirectory(prefix="warmserve-busy-") as tmp:
        model_path, photo_path = Path(tmp, "model.tflite"), Path(tmp, "photo.jpg")
        model_path.write_bytes(flatbuffer)
        photo_path.write_bytes(photo)
        with BusyCores(model_path, photo_path, configs, preprocess_mode=preprocess_mode, input_size=input_size,
                       max_bytes=max_bytes, max_pixels=max_pixels) as busy:
            slots = make_schedule(len(configs), rounds, time.time() + START_DELAY_S, warmup_s, window_s)
            per_process = busy.run(slots)
    summary = summarize_busy(configs, slots, per_process)
    for row in summary["configs"]:
        log.info("busy cores, %s: %s images/s (rounds %s), %s core-ms per image", row["label"], row["images_per_s"],
                 row["rounds_images_per_s"], row["core_ms_per_image"])
    return {**summary, "rounds": rounds, "warmup_s": warmup_s, "window_s": window_s, "processes": cores}


def config_of(busy_limit: dict, label: str | None = None) -> BusyConfig | None:
    """The config a measured busy-cores limit names (its best one unless ``label``), or None where it has none."""
    label = label or busy_limit.get("best")
    for row in busy_limit.get("configs", []):
        if row.get("label") == label:
            return BusyConfig(int(row["processes"]), int(row["threads"]), int(row["batch"]))
    return None


# -- the child ------------------------------------------------------------------------------------


def worker_main() -> int:
    """``--worker``: read the spec, set up, say ready; then for each schedule it is sent, run it and print the rates."""
    import numpy as np

    from model_backend.imaging import decode_image
    from model_backend.models.preprocessing import PREPROCESSORS

    from .limit import PlainInterpreter

    spec = json.loads(sys.stdin.readline())
    index, size = int(spec["index"]), tuple(spec["input_size"])
    content, photo = Path(spec["flatbuffer"]).read_bytes(), Path(spec["photo"]).read_bytes()
    preprocess = PREPROCESSORS[spec["preprocess"]]
    configs = [BusyConfig(**config) for config in spec["configs"]]

    def step(engine: PlainInterpreter, batch: int) -> None:
        arrays = [preprocess(decode_image(photo, size, max_bytes=spec["max_bytes"], max_pixels=spec["max_pixels"]))
                  for _ in range(batch)]
        engine.run(arrays[0][np.newaxis] if batch == 1 else np.stack(arrays))

    engines: dict[int, PlainInterpreter] = {}
    for number, config in enumerate(configs):
        if index < config.processes:
            engines[number] = PlainInterpreter(content, config.threads)
            engines[number].resize(config.batch)
            for _ in range(3):
                step(engines[number], config.batch)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:  # one schedule a line, until the parent closes the input
        rates = []
        for slot in (Slot(**slot) for slot in json.loads(line)["slots"]):
            engine, batch = engines.get(slot.config), configs[slot.config].batch
            if engine is None:  # not in this config: leave the core to the others
                time.sleep(max(0.0, slot.end - time.time()))
                rates.append(window_rate([], slot.count_from, slot.end))
                continue
            time.sleep(max(0.0, slot.start - time.time()))
            iterations = []
            while (started := time.time()) < slot.end:
                cpu_started = time.process_time()
                step(engine, batch)
                iterations.append((started, time.time(), batch, cpu_started, time.process_time()))
            rates.append(window_rate(iterations, slot.count_from, slot.end))
        print(json.dumps({"slots": rates}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--worker"]:
        sys.exit("usage: python -m tools.bench.busy --worker (a child of the bench's limit; see the module doc)")
    sys.exit(worker_main())
