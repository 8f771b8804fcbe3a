"""Interleaved A/B of backend settings: one backend per candidate, load runs alternating between them.

    python -m tools.bench.ab --candidate batch1:WARMSERVE_POOL_BATCH=1 --candidate batch2:WARMSERVE_POOL_BATCH=2 [--rounds 6] [--requests 300]

Each candidate is ``name:VAR=value,VAR=value`` (WARMSERVE_* settings; none =
the defaults). All backends are started first and stay up (idle ones cost
nothing); then every round runs, for each candidate in turn (the order
rotated each round), the bench photo at c=16 (images/s, and the backend's CPU
per image) and at c=1 (p50), loaded by the bench's own lean generator
(:func:`tools.bench.lean_load.zmq_channels`: one thread, one DEALER socket), so
the figures are the bench's. Whatever else the shared machine does then falls
on every candidate alike; the medians over rounds and their ratios to the
first candidate (also round by round: ``paired``) are printed, one JSON line
last. ``--quiet-pct P`` runs a round again when other processes took more
than P% of the machine during any of its runs. Speed lives here, never in
the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from tools import processes
from tools.processes import BACKEND_READY, backend_args

from .lean_load import zmq_channels
from .load import measure_load, warm_up
from .plan import make_plan, photo_jpeg
from .processes import client

log = logging.getLogger("tools.bench")


def parse_candidate(text: str) -> tuple[str, dict[str, str]]:
    """``batch2:WARMSERVE_POOL_BATCH=2,WARMSERVE_EXECUTION=pool`` -> ("batch2", {...}); only WARMSERVE_* variables."""
    name, _, assignments = text.partition(":")
    if not name:
        raise ValueError(f"Expected NAME:VAR=value,... Received: {text!r}")
    env = {}
    for assignment in filter(None, (part.strip() for part in assignments.split(","))):
        key, equals, value = assignment.partition("=")
        if not equals or not key.startswith("WARMSERVE_"):
            raise ValueError(f"Expected WARMSERVE_NAME=value in candidate {name!r}. Received: {assignment!r}")
        env[key] = value
    return name, env


def rotated(names: list[str], round_index: int) -> list[str]:
    """The candidates in the order of one round: each round starts one candidate later."""
    shift = round_index % len(names)
    return names[shift:] + names[:shift]


def summarize_ab(rounds: dict[str, list[dict]]) -> dict:
    """Per candidate, the medians over rounds; and each candidate's ratio to the first one (images/s, p50, CPU)."""
    medians = {}
    for name, runs in rounds.items():
        medians[name] = {
            "ips_c16": round(statistics.median(r["ips_c16"] for r in runs), 2),
            "p50_c1_ms": round(statistics.median(r["p50_c1_ms"] for r in runs), 3),
            "backend_cpu_ms_per_image_c16": round(statistics.median(r["cpu_c16"] for r in runs), 3),
            "rounds_ips_c16": [round(r["ips_c16"], 1) for r in runs],
            "rounds_p50_c1_ms": [round(r["p50_c1_ms"], 2) for r in runs],
        }
        if all("cpu_c1" in r for r in runs):  # the backend's CPU per request at c=1 (what one request's hand-offs cost)
            medians[name]["backend_cpu_ms_per_request_c1"] = round(statistics.median(r["cpu_c1"] for r in runs), 3)
    first_name = next(iter(medians))
    first = medians[first_name]
    for name, row in medians.items():
        row["ips_ratio"] = round(row["ips_c16"] / first["ips_c16"], 4)
        row["p50_diff_ms"] = round(row["p50_c1_ms"] - first["p50_c1_ms"], 3)
        row["cpu_ratio"] = round(row["backend_cpu_ms_per_image_c16"] / first["backend_cpu_ms_per_image_c16"], 4)
        # round by round against the first candidate's run of the same round (run next to it: the same weather)
        pairs = list(zip(rounds[name], rounds[first_name]))
        row["paired_ips_ratio"] = round(statistics.median(mine["ips_c16"] / theirs["ips_c16"] for mine, theirs in pairs), 4)
        row["rounds_faster"] = sum(mine["ips_c16"] > theirs["ips_c16"] for mine, theirs in pairs)
        row["paired_p50_diff_ms"] = round(statistics.median(mine["p50_c1_ms"] - theirs["p50_c1_ms"] for mine, theirs in pairs), 3)
    return medians


def measure_candidate(name: str, generator, pid: int, requests: int, round_index: int) -> dict:
    """One candidate's turn in a round: ``requests`` at c=16, then a third of them at c=1."""
    watch = {"backend": pid}
    busy = measure_load(name, generator, 16, requests, watch)
    lone = measure_load(name, generator, 1, max(1, requests // 3), watch)
    run = {"ips_c16": busy["images_per_s"], "p50_c1_ms": lone["p50_ms"],
           "cpu_c16": busy["cpu_ms_per_request"]["backend"], "cpu_c1": lone["cpu_ms_per_request"]["backend"],
           "others_cpu_pct": max(busy["others_cpu_pct"], lone["others_cpu_pct"])}
    log.info("round %d %s: %.1f images/s @c16 (%.2f ms CPU per image, others %.0f%%), p50 @c1 %.2f ms (%.2f ms CPU)",
             round_index + 1, name, run["ips_c16"], run["cpu_c16"], run["others_cpu_pct"], run["p50_c1_ms"], run["cpu_c1"])
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", action="append", required=True, help="NAME:WARMSERVE_VAR=value,... (two or more)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300, help="requests at c=16 per run (a third of them at c=1)")
    parser.add_argument("--serve-args", default="--execution adaptive", help="extra `serve` flags for every backend")
    parser.add_argument("--quiet-pct", type=float, default=None,
                        help="run a round again (at most 3 x --rounds extra times) when other processes used more than this "
                             "share of the machine's CPU during any of its runs (default: keep every round)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    candidates = dict(parse_candidate(text) for text in args.candidate)
    photo = photo_jpeg()
    plan = make_plan(quick=False)
    rounds: dict[str, list[dict]] = {name: [] for name in candidates}
    with tempfile.TemporaryDirectory(prefix="warmserve-ab-") as tmp:
        children, clients, generators = {}, {}, {}
        try:
            for name, env in candidates.items():
                command = backend_args([], "--bind", "tcp://127.0.0.1:*", *args.serve_args.split())
                children[name] = processes.start(name, command, Path(tmp) / f"{name}.log", env={**processes.tool_env(), **env})
                address = children[name].wait_for(BACKEND_READY).group(1)
                clients[name] = client(address)
                info = clients[name].info()
                log.info("%s: %s, pool_batch=%s (%s)", name, info.get("execution"), info.get("pool_batch"), env or "defaults")
                generators[name] = zmq_channels(address, photo)
                warm_up(generators[name], plan)
            round_index, discarded = 0, 0
            while round_index < args.rounds:
                runs = {name: measure_candidate(name, generators[name], children[name].pid, args.requests, round_index)
                        for name in rotated(list(candidates), round_index)}
                loudest = max(run["others_cpu_pct"] for run in runs.values())
                if args.quiet_pct is not None and loudest > args.quiet_pct and discarded < 3 * args.rounds:
                    discarded += 1
                    log.info("round %d again: other processes used %.0f%% of the machine meanwhile", round_index + 1, loudest)
                    continue
                for name, run in runs.items():
                    rounds[name].append(run)
                round_index += 1
        finally:
            for bench_client in clients.values():
                bench_client.close()
            for child in children.values():
                child.stop()
    summary = summarize_ab(rounds)
    for name, row in summary.items():
        print(f"{name:>12}: {row['ips_c16']:.1f} images/s @c16 (x{row['ips_ratio']:.3f}; paired x{row['paired_ips_ratio']:.3f}, "
              f"faster in {row['rounds_faster']} of {len(rounds[name])} rounds), p50 @c1 {row['p50_c1_ms']:.2f} ms "
              f"({row['p50_diff_ms']:+.2f}; paired {row['paired_p50_diff_ms']:+.2f}), backend CPU {row['backend_cpu_ms_per_image_c16']:.2f} ms/image (x{row['cpu_ratio']:.3f}) "
              f"@c16, {row.get('backend_cpu_ms_per_request_c1', float('nan')):.2f} ms @c1; rounds {row['rounds_ips_c16']}")
    print(json.dumps({"candidates": candidates, "rounds": args.rounds, "requests": args.requests,
                      "discarded_rounds": discarded, "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
