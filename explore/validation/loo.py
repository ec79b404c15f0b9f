"""Out-of-sample errors of the calibrated predictions (``xpusim validate --loo``) and the
residual bands every headline answer carries (``arch/presets/efficiency/intervals.toml``).

What is out of sample:

* **rows the fit does not use** (most end-to-end rows): their error with the full fit.
* **LOO** (leave one out) for the in-sample rows that are not microbenchmarks (board power,
  the public per-user speed of static chips, the TTFT and end-to-end rows that fit an engine's
  factors; 24 rows at present): the calibration rerun without the row, then the row
  predicted. Microbenchmark rows (~170) are reported **in-sample only**, so
  labelled (a refit per row would take an hour; they are not headline numbers).
* **LOFO** (leave one family out), for each family with end-to-end, API or power rows: the whole
  calibration rerun without any row of that family (it then takes the cross-family derived
  defaults, as a new family would); its non-microbenchmark rows predicted.

How a refit runs. :func:`calibrate_blocks` is :func:`explore.validation.calibrate.calibrate`
split into blocks: calibrate's rounds (fit, derive the cross-family defaults, refit), but each
round calls ``calibrate.fit`` once per block of rows that share a fitted table (a chip family;
families whose rows fit one engine table together, e.g. Hopper and Ampere through their TTFT
rows, form one block). A row is predicted with its own family's and engine's factors, so the
joint least squares is the sum of independent block problems coupled only through the derived
defaults (medians over families). Rounds stop at the fixed point (the derived defaults a fit
gives agree to 0.1 % with those it used). A refit starts from the full fit's derived defaults
and reuses the full fit of every block whose rows are unchanged and whose derived defaults agree
to that tolerance, so it costs about one fit of the held-out row's block (the Hopper block is
the slow one) instead of a full calibration (finite differences over every parameter at once).
Fits read the priors alone; predictions read the factors exactly as ``calibrate`` would write
them (``render_fitted``), loaded in place of the stored ``fitted.toml``, so the stored file
never leaks into an out-of-sample prediction. No randomness: the same rows give the same
numbers with any number of workers (each refit starts from the same full fit and keeps its own
fits to itself).

Residuals (``intervals.toml``): ``r = ln(measured / predicted)`` of the out-of-sample
predictions, oriented as the headline kind (per-user speed is 1 / TPOT, so its residual is
negated). Log space because errors are ratios (a 2x slow and a 2x fast chip are equally
wrong) and a band on TPOT inverts exactly into one on tokens/s per user. Per family and kind:
p10 and p90 (numpy's linear percentiles) and the n they rest on; with fewer than
:data:`MIN_OWN` residuals the family takes the pooled entry (all families) and says so.
"""

from __future__ import annotations

import math
import os
import time
import tomllib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from arch.base import ConfigError
from arch.efficiency import use_fitted
from explore.validation.calibrate import (
    MAX_ROUNDS,
    ROOT,
    derived_defaults,
    fit,
    informed,
    render_fitted,
    ttft_engines,
)
from explore.validation.cases import Case, build_cases, load_rows, shipped_measurements
from explore.validation.validate import metric_class
from sim.intervals import INTERVALS

__all__ = [
    "INTERVALS",
    "KINDS",
    "MIN_OWN",
    "LooReport",
    "LooRow",
    "calibrate_blocks",
    "intervals",
    "loo",
    "out_of_sample",
    "render_intervals",
    "summary",
    "write_intervals",
]

MIN_OWN = 3  # fewer own residuals of a kind: the family takes the pooled band
# validation metric -> (headline kind, orientation): per-user speed is 1 / TPOT
KINDS: dict[str, tuple[str, int]] = {
    "throughput_output_tokens_per_s": ("throughput", 1),
    "decode_throughput_tokens_per_s_per_node": ("throughput", 1),
    "ttft_ms": ("ttft", 1),
    "ttft_ms_mean": ("ttft", 1),
    "decode_step_ms": ("tpot", 1),
    "decode_tokens_per_s_per_user": ("tpot", -1),
    "e2e_latency_s": ("e2e", 1),
    "accelerator_power_w_avg": ("power", 1),
}
KIND_ORDER = ("throughput", "ttft", "tpot", "e2e", "power")
METHOD = {
    "loo": "refit without the row (calibrate's rounds, per-family blocks) for the in-sample "
    "rows that are not microbenchmarks; microbenchmark rows: in-sample error only; rows the "
    "fit does not use: their full-fit error",
    "lofo": "refit without every row of the family (it takes the cross-family derived "
    "defaults); its non-microbenchmark rows predicted",
    "residual": "ln(measured / predicted), out of sample, oriented as the kind (per-user speed "
    "negated: it is 1 / TPOT)",
}


# --------------------------------------------------------------------------- block calibration


def _blocks(cases: list[Case], ttft: frozenset[str]) -> list[list[Case]]:
    """The rows the fit uses, grouped so that no fitted table (a family, an engine table, the
    global one) spans two groups: a family's rows stay together and an engine fitted on several
    families' rows joins them. Rows keep their order."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    used = [(c, informed(c, ttft)) for c in cases]
    for c, tables in used:
        for table, _ in tables:
            parent[root(table)] = root(c.family)
    out: dict[str, list[Case]] = defaultdict(list)
    for c, tables in used:
        if tables:
            out[root(c.family)].append(c)
    return [out[k] for k in sorted(out)]


def _uses(block: list[Case], ttft: frozenset[str], derived: dict[str, float]) -> tuple:
    """The derived defaults a block's fit can read: those its families do not fit."""
    params = {p for c in block for p in informed(c, ttft)}
    fams = sorted({c.family for c in block})
    return tuple((fam, f, v) for fam in fams for f, v in sorted(derived.items())
                 if (fam, f) not in params)  # fmt: skip


def _close(a: dict, b: dict, rel: float = 1e-3) -> bool:
    """Same keys, values equal to ``rel`` (calibrate's convergence tolerance)."""
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=rel) for k in a)


def _lookup(memo: dict, base: dict, key: tuple):
    """A block fit for ``key`` (row ids, derived defaults used): an exact entry, else one of
    the full fit's (``base``, the same in every process) for the same rows whose derived
    defaults agree to calibrate's tolerance; None if neither."""
    if key in memo:
        return memo[key]
    ids, uses = key
    want = {k[:2]: k[2] for k in uses}
    for (b_ids, b_uses), value in base.items():
        if b_ids == ids and _close({k[:2]: k[2] for k in b_uses}, want):
            return value
    return None


def calibrate_blocks(
    cases: list[Case],
    memo: dict | None = None,
    *,
    start: dict[str, float] | None = None,
    base: dict | None = None,
) -> tuple[dict, dict[str, float]]:
    """``calibrate(cases)[0]`` computed block by block (see the module docstring), and the
    derived defaults its last round used. Rounds stop at the fixed point: when the derived
    defaults a round's fit gives agree to 0.1 % with those it used (calibrate stops when two
    successive fits agree to 0.1 %). ``start``: the derived defaults of the first round (a refit
    starts from the full fit's, the fixed point it moves away from only a little); ``memo``
    ({(row ids, derived used): block fit}) carries fits between rounds; ``base``: the full
    fit's memo, reused for a block whose rows are the same and whose derived defaults agree."""
    memo = {} if memo is None else memo
    ttft = ttft_engines(cases)
    blocks = _blocks(cases, ttft)
    derived = dict(start or {})
    fitted: dict = {}
    for _ in range(MAX_ROUNDS):
        fitted = {}
        for block in blocks:
            key = (tuple(c.id for c in block), _uses(block, ttft, derived))
            found = _lookup(memo, base or {}, key)
            if found is None:
                with use_fitted({}):
                    found = memo[key] = fit(block, derived)[0]
            fitted.update(found)
        new = {f: v for f, (v, _) in derived_defaults(fitted).items()}
        if _close(new, derived):
            break
        derived = new
    return fitted, derived


def _predict(cases: list[Case], fitted: dict) -> dict[str, float | None]:
    """{id: prediction} with the factors ``fitted`` as calibrate would write them."""
    table = tomllib.loads(render_fitted(fitted, {}, []))
    out: dict[str, float | None] = {}
    with use_fitted(table):
        for c in cases:
            try:
                v = c.predict({})
            except ConfigError:
                v = None
            out[c.id] = v if v is not None and math.isfinite(v) else None
    return out


# --------------------------------------------------------------------------- the refits


def loo_ids(cases: list[Case]) -> list[str]:
    """Rows that get a true leave-one-out refit: in-sample and not microbenchmarks."""
    ttft = ttft_engines(cases)
    return [c.id for c in cases if informed(c, ttft) and c.cls != "microbenchmark"]


def lofo_families(cases: list[Case]) -> list[str]:
    return sorted({c.family for c in cases if c.cls != "microbenchmark"})


_STATE: dict = {}  # per process: the cases, the full fit's memo and its derived defaults


def _init(measurements: Path | None, only: bool, base: dict, start: dict) -> None:
    """A worker process: rebuild the cases (a Case's predictor is a closure, it does not
    pickle) and take the full fit's memo and derived defaults."""
    cases, _ = build_cases(load_rows(measurements, only=only))
    _STATE.update(cases=cases, base=base, start=start)


def _task(task: tuple[str, str]) -> tuple[tuple[str, str], dict[str, float | None]]:
    """("full", ""), ("loo", row id) or ("lofo", family) -> the predictions it yields. A refit
    starts from the full fit (its derived defaults and block fits) and keeps its own fits to
    itself, so its result does not depend on which process ran it or what ran before."""
    what, key = task
    cases: list[Case] = _STATE["cases"]
    if what == "loo":
        kept, shown = [c for c in cases if c.id != key], [c for c in cases if c.id == key]
    elif what == "lofo":
        kept = [c for c in cases if c.family != key]
        shown = [c for c in cases if c.family == key and c.cls != "microbenchmark"]
    else:
        memo: dict = {}
        fitted, derived = calibrate_blocks(cases, memo)
        _STATE.update(base=memo, start=derived)
        return task, _predict(cases, fitted)
    fitted, _ = calibrate_blocks(kept, {}, start=_STATE["start"], base=_STATE["base"])
    return task, _predict(shown, fitted)


def _run(tasks: list[tuple[str, str]], workers: int, rebuild) -> dict:
    """Every task's predictions, in ``workers`` processes when ``rebuild`` (measurements, only)
    says how they get the cases, else here in order; all start from the full fit's memo."""
    if workers <= 1 or len(tasks) <= 1 or rebuild is None:
        return dict(_task(t) for t in tasks)
    ctx = get_context("spawn")  # a fresh interpreter: no fork of numba or BLAS thread pools
    init = (*rebuild, _STATE["base"], _STATE["start"])
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=ctx, initializer=_init,
                             initargs=init) as pool:  # fmt: skip
        return dict(pool.map(_task, tasks))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LooRow:
    """One validation row: the full-fit prediction, the out-of-sample one (``loo``: a refit
    without it, or the full fit when the fit does not use it; None for microbenchmark rows,
    in-sample only) and the leave-one-family-out one."""

    id: str
    family: str
    cls: str
    metric: str
    measured: float
    in_sample: bool
    full: float | None
    loo: float | None
    loo_method: str  # refit | not_fitted | in_sample_only
    lofo: float | None

    @property
    def group(self) -> str:
        """Headline kind for end-to-end, API and power rows; the microbenchmark class else."""
        return KINDS[self.metric][0] if self.metric in KINDS and self.cls != "microbenchmark" \
            else metric_class(self)  # fmt: skip

    def pct(self, which: str) -> float | None:
        p = getattr(self, which)
        return None if p is None else 100.0 * (p - self.measured) / self.measured

    def residual(self) -> float | None:
        """ln(measured / out-of-sample prediction), oriented as its kind; None if none."""
        if self.loo is None or self.loo <= 0 or self.measured <= 0 or self.metric not in KINDS:
            return None
        return KINDS[self.metric][1] * math.log(self.measured / self.loo)

    def to_dict(self) -> dict:
        return {**self.__dict__, "group": self.group, "pct_error_full": self.pct("full"),
                "pct_error_loo": self.pct("loo"), "pct_error_lofo": self.pct("lofo"),
                "residual": self.residual()}  # fmt: skip


@dataclass(frozen=True)
class LooReport:
    rows: list[LooRow]
    wall_s: float
    workers: int
    sources: list[str]


def _row(c: Case, preds: dict, ttft: frozenset[str]) -> LooRow:
    full = preds[("full", "")].get(c.id)
    fitted = bool(informed(c, ttft))
    if not fitted:
        loo, how = full, "not_fitted"
    elif c.cls == "microbenchmark":
        loo, how = None, "in_sample_only"
    else:
        loo, how = preds[("loo", c.id)].get(c.id), "refit"
    lofo = preds.get(("lofo", c.family), {}).get(c.id)
    return LooRow(c.id, c.family, c.cls, c.metric, c.measured, fitted, full, loo, how, lofo)


def _sources(measurements: Path | None, only: bool) -> list[str]:
    """The rows a run rests on, named as ``fitted.toml`` names them."""
    shipped = [] if only else [f"{p.relative_to(ROOT)} (shipped)" for p in shipped_measurements()]
    return shipped + ([f"{measurements} (--measurements)"] if measurements else [])


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def out_of_sample(
    cases: list[Case], *, workers: int = 1, rebuild: tuple[Path | None, bool] | None = None
) -> list[LooRow]:
    """The full fit, a leave-one-out refit per in-sample non-microbenchmark row and a
    leave-one-family-out refit per family with such rows; one :class:`LooRow` per case.
    ``rebuild`` ((measurements, only), the rows ``cases`` were built from) lets ``workers``
    processes share the refits; without it they run here."""
    _STATE.clear()
    _STATE.update(cases=cases)
    preds = dict([_task(("full", ""))])
    tasks = [("loo", i) for i in loo_ids(cases)] + [("lofo", f) for f in lofo_families(cases)]
    preds |= _run(tasks, workers, rebuild)
    ttft = ttft_engines(cases)
    return [_row(c, preds, ttft) for c in cases]


def loo(
    measurements: Path | None = None, *, only: bool = False, workers: int | None = None
) -> LooReport:
    """:func:`out_of_sample` on the shipped rows (+ ``measurements``; ``only``: just those)."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give a positive integer")
    t0 = time.perf_counter()
    cases, _ = build_cases(load_rows(measurements, only=only))
    rows = out_of_sample(cases, workers=workers, rebuild=(measurements, only))
    return LooReport(rows, time.perf_counter() - t0, workers, _sources(measurements, only))


# --------------------------------------------------------------------------- summaries


def _median_ape(rows: list[LooRow], which: str) -> tuple[float | None, int]:
    apes = [abs(p) for r in rows if (p := r.pct(which)) is not None]
    return (float(np.median(apes)) if apes else None), len(apes)


def summary(rows: list[LooRow]) -> list[dict]:
    """Per family x group: n, median APE with the full fit, out of sample, and left family
    out (None where no row has that prediction), and how many rows each rests on."""
    groups: dict[tuple[str, str], list[LooRow]] = defaultdict(list)
    for r in rows:
        groups[(r.family, r.group)].append(r)
    out = []
    for (fam, grp), rs in sorted(groups.items()):
        full, n_full = _median_ape(rs, "full")
        oos, n_loo = _median_ape(rs, "loo")
        lofo, n_lofo = _median_ape(rs, "lofo")
        out.append({"family": fam, "group": grp, "n": len(rs),
                    "n_in_sample": sum(r.in_sample for r in rs), "median_ape_full": full,
                    "median_ape_loo": oos, "n_loo": n_loo, "median_ape_lofo": lofo,
                    "n_lofo": n_lofo, "n_full": n_full})  # fmt: skip
    return out


def lofo_by_family(rows: list[LooRow]) -> list[dict]:
    """Median APE of each family's non-microbenchmark rows predicted with the family left out."""
    fams = sorted({r.family for r in rows if r.lofo is not None})
    out = []
    for fam in fams:
        med, n = _median_ape([r for r in rows if r.family == fam], "lofo")
        out.append({"family": fam, "n": n, "median_ape_lofo": med})
    return out


# --------------------------------------------------------------------------- intervals


def _band(res: list[float]) -> dict:
    p10, p90 = np.percentile(res, [10, 90])
    return {"p10": float(p10), "p90": float(p90), "n": len(res)}


def intervals(rows: list[LooRow]) -> dict:
    """{"pooled": {kind: band}, "families": {family: {kind: band}}}: a band is p10, p90 and n
    of the out-of-sample residuals; a family with fewer than :data:`MIN_OWN` of a kind holds the
    pooled band with ``source = "pooled"`` and ``n_own``."""
    res: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        x = r.residual()
        if x is not None:
            res[r.family][KINDS[r.metric][0]].append(x)
    pooled = {k: _band(v) for k in KIND_ORDER
              if (v := [x for fam in res.values() for x in fam.get(k, [])])}  # fmt: skip
    families: dict[str, dict] = {}
    for fam in sorted(res):
        families[fam] = {}
        for k in KIND_ORDER:
            own = res[fam].get(k, [])
            if len(own) >= MIN_OWN:
                families[fam][k] = {**_band(own), "source": "own", "n_own": len(own)}
            elif k in pooled:
                families[fam][k] = {**pooled[k], "source": "pooled", "n_own": len(own)}
    return {"pooled": pooled, "families": families}


def _entry(name: str, band: dict) -> list[str]:
    lines = [f"[{name}]"]
    for key in ("p10", "p90", "n", "source", "n_own"):
        if key in band:
            lines.append(f"{key} = {_toml_value(band[key])}")
    return lines


def _toml_value(v: float | int | str) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def render_intervals(data: dict, sources: list[str], rows: int) -> str:
    """The text of ``intervals.toml``: a header (command, rows, date, method), then the bands."""
    lines = [
        f"# GENERATED by `xpusim validate --loo --write-intervals` on {date.today().isoformat()};"
        " do not edit by hand, rerun the command.",
        *(f"# rows: {s}" for s in sources),
        f"# {rows} out-of-sample residuals r = ln(measured / predicted) of the headline kinds:"
        " leave-one-out refits for the fitted rows (power, static-chip API, engine TTFT and"
        " end-to-end rows), the full fit for rows the fit does not use; TPOT-oriented for"
        " per-user speed (1 / TPOT).",
        "# p10/p90: numpy linear percentiles; a family with fewer than"
        f' {MIN_OWN} residuals of a kind holds the pooled band (source = "pooled").',
        "# read by sim/intervals.py (band = [value x exp(p10), value x exp(p90)], widened when"
        " extrapolated).",
    ]
    for k, band in data["pooled"].items():
        lines += ["", *_entry(f"pooled.{k}", band)]
    for fam, kinds in data["families"].items():
        for k, band in kinds.items():
            lines += ["", *_entry(f'families."{fam}".{k}', band)]
    return "\n".join(lines) + "\n"


def _same(text: str, path: Path) -> bool:
    """Whether ``path`` holds the same bands (comments, e.g. the date, not compared)."""
    try:
        old = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return _close(tomllib.loads(text), old)


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)
    return a == b


def check_out(path: Path) -> None:
    """Fail before the refits, in one line, where ``path`` cannot be written."""
    if path.is_dir():
        raise ConfigError(f"--write-intervals {path}: a folder; give the path of a TOML file")
    if not path.parent.is_dir():
        raise ConfigError(f"--write-intervals {path}: {path.parent} is not an existing folder")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--write-intervals {path}: not writable")


def write_intervals(report: LooReport, path: Path = INTERVALS) -> bool:
    """Write the bands of ``report`` to ``path`` unless it holds the same; True if written."""
    data = intervals(report.rows)
    n = sum(r.residual() is not None for r in report.rows)
    text = render_intervals(data, report.sources, n)
    if _same(text, path):
        return False
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"--write-intervals {path}: cannot write it ({exc.strerror})") from None
    return True
