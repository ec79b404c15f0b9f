"""Speed of co-design search and dense sweeps, each beside a baseline measured in the same run.

    python benchmarks/search.py [--json] [--trials N] [--workers W]

* ``trials_per_s``: a multi-objective NSGA-II study of ``--trials`` trials (default 2,000) over
  the SRAM-vs-HBM decode space (examples/search_sram_vs_hbm_70b.toml) with the analytic screen,
  ``--workers`` processes (default 2 = the cores of the CI machine) on one journal file.
* ``trials_per_s_one_worker``: the same study with one process, as the baseline.
* ``evaluate_point_s``: the analytic screen of one point alone (no Optuna, no storage).
* ``sweep_points_per_s``: examples/sweep_decode_chip_70b.toml (1.7M points) through the
  vectorized kernels; ``sweep_write_s``: writing them as CSV.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explore.search.objectives import evaluate_point  # noqa: E402
from explore.search.space import load_space  # noqa: E402
from explore.search.study import search  # noqa: E402
from explore.search.sweep import sweep, write  # noqa: E402

SPACE = ROOT / "examples" / "search_sram_vs_hbm_70b.toml"
SWEEP = ROOT / "examples" / "sweep_decode_chip_70b.toml"


def _study(trials: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        res = search(SPACE, n_trials=trials, workers=workers, out=tmp, study_name="bench")
        assert res.n_trials_complete == trials
        return trials / res.wall_s


def _point_s() -> float:
    sp = load_space(SPACE)
    params = {"chip.peak_bf16_flops_per_s": 5e14, "chip.sram_bytes": 256e6,
              "chip.hbm_stacks": 6, "chip.hbm_gen": "hbm3e", "deploy.chips": 8,
              "deploy.batch": 32}  # fmt: skip
    evaluate_point(sp.base, params)
    times = []
    for _ in range(30):
        t = time.perf_counter()
        evaluate_point(sp.base, params)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args()
    out = {"trials": args.trials, "workers": args.workers, "evaluate_point_s": _point_s()}
    out["trials_per_s_one_worker"] = _study(args.trials, 1)
    out["trials_per_s"] = _study(args.trials, args.workers)
    out["speedup_workers"] = out["trials_per_s"] / out["trials_per_s_one_worker"]
    if not args.no_sweep:
        res = sweep(SWEEP)
        out["sweep_points"] = res.n_points
        out["sweep_points_per_s"] = res.n_points / res.wall_s
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write(res, Path(tmp) / "sweep.csv")
            out["sweep_write_s"] = time.perf_counter() - t
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for k, v in out.items():
        print(f"{k:28s} {v:,.4g}" if isinstance(v, float) else f"{k:28s} {v}")


if __name__ == "__main__":
    main()
