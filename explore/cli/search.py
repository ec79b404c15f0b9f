"""``xpusim search`` (Optuna co-design search) and ``xpusim sweep`` (dense grids)."""

from __future__ import annotations

import argparse
from pathlib import Path

from arch.base import strict_json

__all__ = ["add_parser", "run_search", "run_sweep"]


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="co-design search (Optuna): chip x model shape x deployment")
    p.add_argument("space", type=Path, help="search space TOML")
    p.add_argument("--n-trials", type=int, help="total finished trials of the study")
    p.add_argument("--storage", help="a .journal path (default OUT/study.journal), sqlite:///F, "
                   "or postgresql://...")  # fmt: skip
    p.add_argument("--study-name", help="resume or create this study (default: the space's)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the storage")
    p.add_argument("--confirm", type=int, default=0, help="serving-simulate the N best designs")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="output folder (default xpusim-search/STUDY)")
    s = sub.add_parser("sweep", help="dense grid over a space through the vectorized kernels")
    s.add_argument("space", type=Path)
    s.add_argument("--out", type=Path, required=True, help="CSV (.csv) or Parquet (.parquet)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--max-points", type=int, default=None, metavar="N",
                   help="refuse grids of more points (default 5,000,000: memory)")  # fmt: skip


def run_sweep(args: argparse.Namespace) -> int:
    from explore.search.sweep import run_sweep as sweep_to_file

    return sweep_to_file(args.space, args.out, as_json=args.json, max_points=args.max_points)


def _check_counts(args: argparse.Namespace) -> None:
    """Counts on the command line, before any file is read or written."""
    from arch.base import ConfigError

    for flag, value, low, what in (("--n-trials", args.n_trials, 1, "finished trials"),
                                   ("--workers", args.workers, 1, "worker processes"),
                                   ("--confirm", args.confirm, 0, "designs to serve"),
                                   ("--seed", args.seed, 0, "seed")):  # fmt: skip
        if value is not None and value < low:
            raise ConfigError(f"{flag} {value}: give {low} or more ({what})")


def run_search(args: argparse.Namespace) -> int:
    from explore.report.progress import progress
    from explore.search.output import confirm, confirm_lines, print_pareto, write_outputs
    from explore.search.space import check_study_name, load_space
    from explore.search.study import search

    _check_counts(args)
    if args.study_name is not None:  # before it names the default --out folder
        check_study_name(args.study_name, "--study-name")
    space = load_space(args.space)
    out = args.out or Path("xpusim-search") / (args.study_name or space.name)
    n_trials = args.n_trials or space.n_trials
    with progress(n_trials, "trials", enabled=not args.json) as advance:
        res = search(space, storage=args.storage, study_name=args.study_name,
                     n_trials=args.n_trials, seed=args.seed, workers=args.workers, out=out,
                     progress=advance)  # fmt: skip
    files = write_outputs(res, res.space, out, res.study)
    if args.confirm:
        with progress(min(args.confirm, len(res.pareto)), "confirming designs (serving)",
                      enabled=not args.json) as advance:  # fmt: skip
            res.confirmed = confirm(res, res.space, out, args.confirm, progress=advance)
    if args.json:
        print(strict_json(res.to_json()))
        return 0
    print_pareto(res)
    for line in confirm_lines(res.confirmed):
        print(line)
    print(f"{res.n_trials_complete} trials ({res.n_trials_done_here} here, "
          f"{res.n_trials_done_here / max(res.wall_s, 1e-9):.1f}/s); wrote {len(files)} files "
          f"to {out}")  # fmt: skip
    return 0
