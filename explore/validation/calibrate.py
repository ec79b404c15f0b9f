"""Fit the named efficiency factors on the microbenchmark rows; write ``fitted.toml``.

Method: one joint least-squares problem over every microbenchmark case (GEMM TFLOP/s, achieved
bandwidth, attention TFLOP/s, all-reduce bus bandwidth and latency, link bandwidth), residuals
``log(predicted / measured)``, parameters in log space. Each chip family gets only the factors its
own rows inform; fractions of a peak are bounded to (0.05, 1]. A weak log-normal prior (weight
``PRIOR_WEIGHT``) keeps a factor its rows cannot pin down near its prior instead of letting it
drift. End-to-end rows are the validation, except two kinds, in-sample and reported as such:
the public per-user speed rows (class ``api``) of statically scheduled and dataflow families fit
their per-layer latency (``layer_latency_s``), and the board-power rows fit the power floor
(``active_power_fraction``) and the energy scale of a family.

The fit reads priors only, never the stored ``fitted.toml``: every factor of a family is passed
as an override, resolved as ``arch.efficiency`` would resolve it from priors plus the file being
produced. The result depends on the rows and priors alone, so a rerun on the same rows gives the
same file (and ``calibrate`` writes nothing), and ``--out`` does not read the preset it leaves
alone.

Families without rows get, as a ``derived`` default, the median of the fitted families for the
fractions of peak; fixed costs (kernel overhead, collective step latency) depend on the software
stack and are not borrowed across families.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections import defaultdict
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from arch.base import ConfigError, load_toml
from arch.efficiency import EFFICIENCY_DIR, FACTORS, clear_cache, prior_for
from explore.validation.cases import DATA, Case, build_cases, load_rows, shipped_measurements

__all__ = ["calibrate", "derived_defaults", "fit", "informed_factors", "resolved", "run_calibrate"]

PRIOR_WEIGHT = 0.05
GLOBAL: tuple[str, ...] = ()  # factors shared by all families (none at present)
BOUNDS = {
    "roofline_exponent": (1.0, 20.0),
    "kernel_overhead_s": (1e-7, 2e-5),
    "isolated_launch_s": (1e-7, 3e-5),
    "collective_step_latency_s": (1e-7, 2e-5),
    "layer_latency_s": (1e-7, 3e-4),
    "energy_scale": (0.5, 5.0),
    "stage_hop_latency_s": (1e-7, 1e-4),
}
FRACTION = (0.05, 1.0)
NOT_BORROWED = (
    "kernel_overhead_s",
    "energy_scale",
    "active_power_fraction",
    "layer_latency_s",
    "stage_hop_latency_s",
    "isolated_launch_s",
    "collective_step_latency_s",
    "roofline_exponent",
)
# factors whose unfitted prior means "the chip's own figure" (kernels.pack uses a fabric's
# latency_s until the family fits a collective step latency): never passed as an override
# unless fitted, so the fit costs collectives as validation does
PRIOR_MEANS_CHIP = ("collective_step_latency_s",)
# factors a family without rows for them takes as a ratio to its own base factor, never as
# another family's absolute value (an 8-bit GEMM from the family's own 16-bit fit)
RATIOS = {"gemm_8bit": "gemm_16bit"}
MAX_ROUNDS = 4  # derived cross-family defaults feed back into the fit; 2-3 rounds converge
SAME_REL = 1e-5  # values equal to this (the file keeps 6 digits) count as unchanged
FITTED = EFFICIENCY_DIR / "fitted.toml"
ROOT = DATA.parents[2]  # the folder holding explore/: shipped files are named relative to it


def informed_factors(case: Case) -> set[str]:
    """Which efficiency factors a row says something about: microbenchmarks inform the fractions
    of peak and the GPU fixed costs; the public per-user decode speed of a statically scheduled
    or dataflow family (one whose prior has a layer latency) informs its ``layer_latency_s``,
    the only thing that binds a batch-1 token on those chips (these fits are in-sample)."""
    m, d = case.metric, case.describe
    if m == "accelerator_power_w_avg":  # board power while steps repeat: floor and energies
        return {"active_power_fraction", "energy_scale"}
    if case.cls == "api":
        static = prior_for(case.family).value("layer_latency_s") > 0
        return {"layer_latency_s"} if static and m == "decode_tokens_per_s_per_user" else set()
    if m == "gemm_tflops":
        bits = "gemm_8bit" if d.endswith("fp8") else "gemm_16bit"
        small = int(d.split()[1].split("x")[0]) <= 512
        return {bits, "roofline_exponent"} | ({"memory", "isolated_launch_s"} if small else set())
    if m == "hbm_bw_achieved_gbs":
        if "GEMM" in d:
            return {"memory", "isolated_launch_s", "gemm_8bit"}
        return {"memory", "isolated_launch_s"} if ("copy" in d or "decode" in d) else {"memory"}
    if m == "attention_tflops":
        return {"attention", "isolated_launch_s"} if "seq" in d else {"attention"}
    if m == "layer_latency_ms" and "graph" in d:  # many kernels back to back in a CUDA graph
        return {"kernel_overhead_s", "memory"}
    if m == "allreduce_latency_us" or (m == "allreduce_busbw_gbs" and "0.03125 MiB" in d):
        return {"collective_step_latency_s"}
    if m == "allreduce_busbw_gbs":
        return {"collective_in_network", "collective_bus"}
    if m == "nvlink_bw_achieved_gbs":
        return {"collective_bus"}
    return set()


def _parameters(cases: list[Case]) -> list[tuple[str, str]]:
    params: set[tuple[str, str]] = set()
    for c in cases:
        for f in informed_factors(c):
            params.add(("*", f) if f in GLOBAL else (c.family, f))
    return sorted(params)


def _fam_values(params, x) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (fam, f), v in zip(params, x, strict=True):
        out[fam][f] = math.exp(v)
    return out


@cache
def _own_priors(family: str) -> frozenset[str]:
    """Factors that ``family`` has its own prior for (those outrank a derived default)."""
    return frozenset(load_toml(EFFICIENCY_DIR / "priors.toml").get(family, {}))


def resolved(family: str, fitted: dict[str, float], derived: dict[str, float]) -> dict[str, float]:
    """Every factor of ``family``, in ``arch.efficiency``'s order (default prior < derived default
    < family prior < family fit), from priors, ``derived`` and ``fitted`` alone: the stored
    ``fitted.toml`` is not read, so a fit does not depend on the previous one."""
    prior, own = prior_for(family), _own_priors(family)
    out = {}
    for f in FACTORS:
        if f in fitted:
            out[f] = fitted[f]
        elif f in derived and f not in own:
            out[f] = derived[f]
        elif f not in PRIOR_MEANS_CHIP:
            out[f] = prior.value(f)
    return out


def _overrides(params, x, derived: dict[str, float], families) -> dict[str, dict[str, float]]:
    """{family: every factor} for ``families`` (global factors, if any, apply to all)."""
    values = _fam_values(params, x)
    glob = values.pop("*", {})
    return {fam: resolved(fam, {**glob, **values.get(fam, {})}, derived) for fam in families}


def _prior(fam: str, factor: str) -> float:
    return prior_for("__none__" if fam == "*" else fam).value(factor)


def fit(
    cases: list[Case], derived: dict[str, float] | None = None
) -> tuple[dict, list[tuple[Case, float]]]:
    """Return ({family: {factor: (value, rows)}}, [(case, fitted prediction)]).

    ``derived``: cross-family defaults ({factor: value}) that factors a family neither fits nor
    has its own prior for take (``derived_defaults`` of a previous round); none: the priors."""
    derived = derived or {}
    micro = [c for c in cases if informed_factors(c)]
    params, families = _parameters(micro), sorted({c.family for c in micro})
    x0 = np.log([_prior(fam, f) for fam, f in params])
    lo = np.log([BOUNDS.get(f, FRACTION)[0] for _, f in params])
    hi = np.log([BOUNDS.get(f, FRACTION)[1] for _, f in params])
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)

    def residuals(x):
        ov = _overrides(params, x, derived, families)
        data = [math.log(c.predict(ov) / c.measured) for c in micro]
        return np.concatenate([data, PRIOR_WEIGHT * (x - x0)])

    sol = least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=1.0)
    ov = _overrides(params, sol.x, derived, families)
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in micro:
        for f in informed_factors(c):
            rows[("*", f) if f in GLOBAL else (c.family, f)].append(c.id)
    fitted: dict[str, dict] = defaultdict(dict)
    for (fam, f), v in zip(params, sol.x, strict=True):
        fitted[fam][f] = (math.exp(v), rows[(fam, f)])
    return dict(fitted), [(c, c.predict(ov)) for c in micro]


def derived_defaults(fitted: dict) -> dict[str, tuple[float, list[str]]]:
    """{factor: (median over the families that fit it, those families)} for the borrowable
    fractions of a peak (fixed costs and the roofline exponent depend on the software stack and
    are not borrowed; global factors are already shared). A factor with a base in
    :data:`RATIOS` is never borrowed as an absolute value: it is the base's median times the
    cross-family ratio (:func:`ratio_of`)."""
    fams = sorted(k for k in fitted if k != "*")
    out = {}
    for f in FACTORS:
        src = [fam for fam in fams if f in fitted[fam]]
        if src and f not in fitted.get("*", {}) and f not in NOT_BORROWED and f not in RATIOS:
            out[f] = (float(np.median([fitted[fam][f][0] for fam in src])), src)
    for f, base in RATIOS.items():
        ratio, src = ratio_of(fitted, f)
        if base in out and src:
            out[f] = (out[base][0] * ratio, src)
    return out


def ratio_of(fitted: dict, factor: str) -> tuple[float, list[str]]:
    """(median of ``factor / base`` over the families that fit both, capped at 1, those
    families): a lower precision reaches no more of its peak than the higher one does of its
    own, so a derived rate never exceeds the hardware's peak ratio."""
    base = RATIOS[factor]
    src = sorted(k for k, fs in fitted.items() if k != "*" and factor in fs and base in fs)
    if not src:
        return 1.0, []
    ratios = [fitted[fam][factor][0] / fitted[fam][base][0] for fam in src]
    return min(1.0, float(np.median(ratios))), src


def family_derived(fitted: dict) -> dict[str, dict[str, tuple[float, str]]]:
    """{family: {factor: (value, note)}} for a family that fits a ratio factor's base but not
    the factor itself: its own base times the cross-family ratio (AMD's 8-bit GEMMs from AMD's
    16-bit fit, never from another family's absolute 8-bit value)."""
    out: dict[str, dict[str, tuple[float, str]]] = defaultdict(dict)
    for f, base in RATIOS.items():
        ratio, src = ratio_of(fitted, f)
        for fam, fs in fitted.items():
            if fam != "*" and base in fs and f not in fs and src:
                note = f"own {base} x the {f}/{base} ratio {ratio:.3f} of {', '.join(src)}"
                out[fam][f] = (fs[base][0] * ratio, note)
    return dict(out)


def _converged(a: dict, b: dict, rel: float = 1e-3) -> bool:
    flat_a = {(fam, f): v for fam, fs in a.items() for f, (v, _) in fs.items()}
    flat_b = {(fam, f): v for fam, fs in b.items() for f, (v, _) in fs.items()}
    return flat_a.keys() == flat_b.keys() and all(
        math.isclose(flat_a[k], flat_b[k], rel_tol=rel) for k in flat_a
    )


def calibrate(cases: list[Case]) -> tuple[dict, list[tuple[Case, float]]]:
    """Fit, then refit with the derived defaults of the last fit until the factors move by less
    than 0.1 % (at most ``MAX_ROUNDS`` fits)."""
    derived: dict[str, float] = {}
    previous: dict = {}
    for _ in range(MAX_ROUNDS):
        fitted, preds = fit(cases, derived)
        if _converged(previous, fitted):
            break
        previous = fitted
        derived = {f: v for f, (v, _) in derived_defaults(fitted).items()}
    return fitted, preds


def _toml_factor(value: float, source: str, rows: list[str], note: str) -> str:
    row_list = ", ".join(f'"{r}"' for r in rows)
    return f'{{ value = {value:.6g}, source = "{source}", rows = [{row_list}], note = "{note}" }}'


def render_fitted(fitted: dict, in_sample: dict[str, float], sources: list[str]) -> str:
    """The text of ``fitted.toml``: a header naming the date and the data, then the factors."""
    lines = [
        f"# GENERATED by `xpusim calibrate` on {date.today().isoformat()}; do not edit by hand,"
        " rerun the command.",
        *(f"# fitted on {s}" for s in sources),
        "# in-sample |log error| per family: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(in_sample.items())),
        "",
        "[default]",
    ]
    for f, (v, rows) in fitted.get("*", {}).items():
        lines.append(f"{f} = " + _toml_factor(v, "fitted", rows, "shared by all families"))
    for f, (v, src) in derived_defaults(fitted).items():
        how = "median" if f not in RATIOS else f"median {RATIOS[f]} x the cross-family ratio,"
        note = f"{how} of the fits for {', '.join(src)}"
        lines.append(f"{f} = " + _toml_factor(v, "derived", [], note))
    own = family_derived(fitted)
    for fam in sorted(k for k in fitted if k != "*"):
        lines += ["", f"[{fam}]"]
        for f, (v, rows) in sorted(fitted[fam].items()):
            lines.append(f"{f} = " + _toml_factor(v, "fitted", rows, "joint log least squares"))
        for f, (v, note) in sorted(own.get(fam, {}).items()):
            lines.append(f"{f} = " + _toml_factor(v, "derived", [], note))
    return "\n".join(lines) + "\n"


def _flat(tables: dict) -> dict[tuple, object]:
    return {(t, f, k): v for t, fs in tables.items() for f, spec in fs.items()
            for k, v in spec.items()}  # fmt: skip


def same_factors(text: str, path: Path) -> bool:
    """Whether ``path`` already holds the factors of ``text``: same tables, factors, sources,
    rows and notes, values equal to ``SAME_REL``. Comments (date, data, in-sample errors) are not
    compared: a rerun on the same day or the next one must not rewrite a tracked file."""
    try:
        old = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    a, b = _flat(tomllib.loads(text)), _flat(old)
    if a.keys() != b.keys():
        return False
    return all(
        math.isclose(a[k], b[k], rel_tol=SAME_REL) if k[2] == "value" else a[k] == b[k] for k in a
    )


def _check_out(path: Path) -> None:
    """Fail before the fit, in one line, where ``path`` cannot be written."""
    if path.is_dir():
        raise ConfigError(f"--out {path}: a folder; give the path of a TOML file")
    if not path.parent.is_dir():
        raise ConfigError(f"--out {path}: {path.parent} is not an existing folder")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--out {path}: not writable")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"--out {path}: cannot write it ({exc.strerror})") from None


def _sources(measurements: Path | None, only: bool) -> list[str]:
    """The data a fit ran on: shipped files relative to the package root, then --measurements."""
    shipped = [] if only else [f"{p.relative_to(ROOT)} (shipped)" for p in shipped_measurements()]
    return shipped + ([f"{measurements} (--measurements)"] if measurements else [])


def _in_sample(preds: list[tuple[Case, float]]) -> dict[str, float]:
    errs: dict[str, list[float]] = defaultdict(list)
    for c, p in preds:
        errs[c.family].append(abs(math.log(p / c.measured)))
    return {k: float(np.median(v)) for k, v in errs.items()}


def run_calibrate(
    measurements: Path | None = None, out: Path | None = None, *, only: bool = False
) -> int:
    """Fit on the shipped rows (+ ``measurements``; ``only``: just those) and write ``out``
    (default: the preset ``fitted.toml``) unless it already holds the same factors."""
    target = Path(out) if out else FITTED
    _check_out(target)
    cases, _ = build_cases(load_rows(measurements, only=only))
    fitted, preds = calibrate(cases)
    n = sum(len(v) for v in fitted.values())
    text = render_fitted(fitted, _in_sample(preds), _sources(measurements, only))
    if same_factors(text, target):
        print(f"{n} factors on {len(preds)} rows unchanged: nothing written ({target})")
        return 0
    _write(target, text)
    if target.resolve() == FITTED.resolve():
        clear_cache()  # later predictions in this process use the new factors
    print(f"fitted {n} factors on {len(preds)} rows -> {target}")
    for fam in sorted(fitted):
        vals = ", ".join(f"{f}={v:.4g}" for f, (v, _) in sorted(fitted[fam].items()))
        print(f"  {fam}: {vals}")
    return 0
