"""Speed of ELECTRE II (crm_store/domain/electre.py): ranking 500 and 2,000 random alternatives x 6 criteria.

What it builds (deterministic, seed 20240601 unless ``--seed``): for each size, an ``n x 6`` matrix of
order-like criteria: customer value 0-100 (max), margin 0-500 (max), slack to the promised date 0-14
days (min), stock readiness 0/1/2 (max: none, part, all in stock), age 0-72 hours (max) and a channel
bonus 0/1 (max), with weights 3, 2, 3, 2, 1, 1, concordance thresholds [0.6, 0.75] and discordance
thresholds [0.25, 0.5]. The three-level and two-level criteria make many ties, so circuits and
multi-member classes occur, as they do in a real queue.

What it times (``time.perf_counter`` for wall time, ``time.process_time`` for CPU time of this process,
garbage collector left on): ``electre2(problem)`` (matrices, relations, both distillations, the final
pre-order) over ``--repeat`` runs per size, reporting the median and the worst; validation
(``Electre2Problem.build``) and the JSON answer (``to_json``, whose strong/weak pair lists grow with
n squared) are timed once each, apart.

Target: a ranking of 500 well under a second (PASS under 0.25 s median wall time). 2,000 is the size
the docs name as the batch limit; it is reported, not judged. It prints a table, PASS/MISS and a final
JSON line with every figure; it exits 0 whatever the figures.

    .venv/bin/python bench/electre.py
    .venv/bin/python bench/electre.py --sizes 500 1000 2000 --repeat 7
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_store.domain.electre import Electre2Problem, electre2  # noqa: E402

CRITERIA = ["customer value", "margin", "slack days", "stock readiness", "age hours", "channel"]
DIRECTIONS = ["max", "max", "min", "max", "max", "max"]
SCALES = [[0, 100], [0, 500], [0, 14], [0, 2], [0, 72], [0, 1]]
WEIGHTS = [3, 2, 3, 2, 1, 1]
TARGET_500_S = 0.25


def build(n: int, rng: np.random.Generator) -> Electre2Problem:
    x = np.column_stack([
        rng.uniform(0, 100, n).round(1),
        rng.gamma(2.0, 60.0, n).clip(0, 500).round(2),
        rng.integers(0, 15, n).astype(float),
        rng.choice([0.0, 1.0, 2.0], n, p=[0.1, 0.2, 0.7]),
        rng.uniform(0, 72, n).round(1),
        rng.choice([0.0, 1.0], n, p=[0.8, 0.2]),
    ])
    return Electre2Problem.build(
        [f"order-{i}" for i in range(n)], x, WEIGHTS, DIRECTIONS, SCALES, [0.6, 0.75], [0.25, 0.5], CRITERIA
    )


def run(n: int, repeat: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed + n)
    t0 = time.perf_counter()
    problem = build(n, rng)
    build_s = time.perf_counter() - t0
    walls, cpus = [], []
    result = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = electre2(problem)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert result is not None
    w0, c0 = time.perf_counter(), time.process_time()
    answer = result.to_json()
    json_wall, json_cpu = time.perf_counter() - w0, time.process_time() - c0
    exp = answer["explanation"]
    return {
        "n": n,
        "criteria": len(CRITERIA),
        "runs": repeat,
        "rank_wall_median_s": statistics.median(walls),
        "rank_wall_max_s": max(walls),
        "rank_cpu_median_s": statistics.median(cpus),
        "rank_cpu_max_s": max(cpus),
        "build_s": build_s,
        "json_wall_s": json_wall,
        "json_cpu_s": json_cpu,
        "levels": len(answer["ranking"]),
        "descending_classes": len(answer["descending"]),
        "strong_pairs": len(answer["strong"]),
        "weak_pairs": len(answer["weak"]),
        "incomparable_pairs": exp["incomparable_pairs"],
        "circuits": len(exp["circuits"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

    rows = [run(n, args.repeat, args.seed) for n in args.sizes]
    print(f"ELECTRE II, {len(CRITERIA)} criteria, {args.repeat} runs per size "
          f"(Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()})")
    print(f"{'n':>6} {'rank wall p50':>14} {'max':>8} {'rank CPU p50':>13} {'max':>8} {'to_json':>9} "
          f"{'levels':>7} {'strong':>8} {'weak':>8} {'incomp.':>8} {'circuits':>8}")
    for r in rows:
        print(f"{r['n']:>6} {r['rank_wall_median_s']:>13.3f}s {r['rank_wall_max_s']:>7.3f}s {r['rank_cpu_median_s']:>12.3f}s "
              f"{r['rank_cpu_max_s']:>7.3f}s {r['json_wall_s']:>8.3f}s {r['levels']:>7} {r['strong_pairs']:>8} "
              f"{r['weak_pairs']:>8} {r['incomparable_pairs']:>8} {r['circuits']:>8}")
    verdicts = {}
    for r in rows:
        if r["n"] == 500:
            ok = r["rank_wall_median_s"] < TARGET_500_S
            verdicts["rank_500_under_0.25s"] = ok
            print(f"{'PASS' if ok else 'MISS'}: ranking 500 alternatives, median {r['rank_wall_median_s']:.3f} s "
                  f"wall ({r['rank_cpu_median_s']:.3f} s CPU), target under {TARGET_500_S} s")
    print(json.dumps({"bench": "electre2", "rows": rows, "verdicts": verdicts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
