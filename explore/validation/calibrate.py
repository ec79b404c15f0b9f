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
from arch.efficiency import EFFICIENCY_DIR, FACTORS, clear_cache, engine_tables, prior_for
from explore.validation.cases import DATA, Case, build_cases, load_rows, shipped_measurements

__all__ = ["calibrate", "derived_defaults", "fit", "informed", "informed_factors", "resolved",
           "run_calibrate"]  # fmt: skip

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
    "step_overhead_s": (1e-6, 5e-2),
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
    "step_overhead_s",
    "kernel_scale",
)
# factors whose unfitted prior means "the chip's own figure" (kernels.pack uses a fabric's
# latency_s until the family fits a collective step latency): never passed as an override
# unless fitted, so the fit costs collectives as validation does
PRIOR_MEANS_CHIP = ("collective_step_latency_s",)
# factors a family without rows for them takes as a ratio to its own base factor, never as
# another family's absolute value (an 8-bit GEMM from the family's own 16-bit fit)
RATIOS = {"gemm_8bit": "gemm_16bit", "gemm_4bit": "gemm_8bit"}
# factors whose ratio to their base, when no family fits both, is the ratio of their default
# priors (priors.toml states it with its source: NVFP4 vs FP8 on consumer Blackwell, 0.925)
RATIO_PRIORS = ("gemm_4bit",)
ENGINE_PREFIX = "engine:"  # engine tables (priors.toml, fitted.toml): engine:NAME[@FAMILY]
# engines whose end-to-end runs fit them per family when no TTFT rows do: old releases running
# kernels other than the vendor libraries the microbenchmarks timed (vLLM on 2024 ROCm,
# DeepSpeed on Gaudi); an old TensorRT-LLM runs cuBLAS/CUTLASS and keeps its priors
FIT_ON_RUNS = ("vllm-legacy", "deepspeed")
# the end-to-end metrics whose rows fit an engine on a family the TTFT rows leave unfitted
_RUN_METRICS = ("e2e_latency_s", "throughput_output_tokens_per_s")
MAX_ROUNDS = 4  # derived cross-family defaults feed back into the fit; 2-3 rounds converge
SAME_REL = 1e-5  # values equal to this (the file keeps 6 digits) count as unchanged
FITTED = EFFICIENCY_DIR / "fitted.toml"
ROOT = DATA.parents[2]  # the folder holding explore/: shipped files are named relative to it


def informed_factors(case: Case, ttft_engines: frozenset[str] = frozenset()) -> set[str]:
    """The names of the factors a row informs (:func:`informed` without the tables)."""
    return {f for _, f in informed(case, ttft_engines)}


def informed(case: Case, ttft_engines: frozenset[str] = frozenset()) -> set[tuple[str, str]]:
    """Which (table, factor) pairs a row says something about (a table is a chip family or an
    engine table, ``engine:NAME`` or ``engine:NAME@FAMILY``):

    * microbenchmarks: the fractions of peak and the GPU fixed costs of their family;
    * the public per-user decode speed of a statically scheduled or dataflow family (one whose
      prior has a layer latency): its ``layer_latency_s``, the only thing that binds a batch-1
      token on those chips;
    * board power: the family's power floor and energy scale;
    * batch-1 TTFT rows: their engine's fixed cost per forward pass and kernel scale (short
      prompts pin the first, long ones the second);
    * end-to-end runs of an old release running foreign kernels (:data:`FIT_ON_RUNS`) with no
      TTFT rows (``ttft_engines``): that engine's kernel scale and step cost *on that family*
      (vLLM on 2024 ROCm is not vLLM on CUDA). Other runs are never fitted on: they are the
      validation.

    All but the microbenchmarks are end-to-end rows, reported in-sample."""
    m, d, fam = case.metric, case.describe, case.family
    if m == "accelerator_power_w_avg":  # board power while steps repeat: floor and energies
        return {(fam, "active_power_fraction"), (fam, "energy_scale")}
    if case.cls == "api":
        static = prior_for(fam).value("layer_latency_s") > 0
        ok = static and m == "decode_tokens_per_s_per_user"
        return {(fam, "layer_latency_s")} if ok else set()
    if case.cls == "end_to_end":
        e = case.engine
        if m == "ttft_ms" and e:
            return {(ENGINE_PREFIX + e, "step_overhead_s"), (ENGINE_PREFIX + e, "kernel_scale")}
        if m in _RUN_METRICS and e in FIT_ON_RUNS and e not in ttft_engines:
            table = f"{ENGINE_PREFIX}{e}@{fam}"
            return {(table, "kernel_scale"), (table, "step_overhead_s")}
        return set()
    return {(fam, f) for f in _micro_factors(m, d)}


def _micro_factors(m: str, d: str) -> set[str]:
    if m == "gemm_tflops":
        bits = "gemm_8bit" if d.endswith("fp8") else "gemm_16bit"
        small = int(d.split(maxsplit=2)[1].split("x", 1)[0]) <= 512
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


def ttft_engines(cases: list[Case]) -> frozenset[str]:
    """Engines with batch-1 TTFT rows (their factors are fitted engine-wide on those rows)."""
    return frozenset(c.engine for c in cases if c.cls == "end_to_end" and c.metric == "ttft_ms"
                     and c.engine)  # fmt: skip


def _parameters(cases: list[Case], ttft: frozenset[str]) -> list[tuple[str, str]]:
    params: set[tuple[str, str]] = set()
    for c in cases:
        for t, f in informed(c, ttft):
            params.add(("*", f) if f in GLOBAL else (t, f))
    return sorted(params)


def _fam_values(params, x) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (fam, f), v in zip(params, x, strict=True):
        out[fam][f] = math.exp(v)
    return out


@cache
def _priors_of(table: str) -> dict[str, float]:
    """The factors ``table`` (a family or an engine table) has its own prior for."""
    return {f: spec["value"] for f, spec in
            load_toml(EFFICIENCY_DIR / "priors.toml").get(table, {}).items()}  # fmt: skip


def _own_priors(family: str) -> frozenset[str]:
    """Factors that ``family`` has its own prior for (those outrank a derived default)."""
    return frozenset(_priors_of(family))


def resolved(
    family: str,
    fitted: dict[str, float],
    derived: dict[str, float],
    *,
    engine: str = "",
    tables: dict[str, dict[str, float]] | None = None,
) -> dict[str, float]:
    """Every factor of ``family`` under ``engine`` ("": none), in ``arch.efficiency``'s order
    (default prior < derived default < family prior < family fit < each engine table's prior <
    its fit), from priors, ``derived``, the family's ``fitted`` values and the engine ``tables``'
    fitted values alone: the stored ``fitted.toml`` is not read, so a fit does not depend on the
    previous one."""
    prior, own, tables = prior_for(family), _own_priors(family), tables or {}
    out = {}
    for f in FACTORS:
        if f in fitted:
            out[f] = fitted[f]
        elif f in derived and f not in own:
            out[f] = derived[f]
        elif f not in PRIOR_MEANS_CHIP:
            out[f] = prior.value(f)
        for t in engine_tables(family, engine):
            out[f] = tables.get(t, {}).get(f, _priors_of(t).get(f, out.get(f)))
        if out.get(f) is None:
            out.pop(f, None)
    return out


def _prior(table: str, factor: str) -> float:
    if table.startswith(ENGINE_PREFIX):
        engine, _, family = table[len(ENGINE_PREFIX):].partition("@")
        return prior_for(family or "__none__", engine).value(factor)
    return prior_for("__none__" if table == "*" else table).value(factor)


def stage_of(case: Case) -> int:
    """The fit is staged so that a row moves only what it informs: 0, the silicon on the
    microbenchmarks and public per-user speeds; 1, the engines on their TTFT rows and old
    releases' runs, the silicon held at stage 0; 2, the power floor and energy scale on the
    board-power rows, everything else held."""
    if case.metric == "accelerator_power_w_avg":
        return 2
    return 1 if case.cls == "end_to_end" else 0


def fit(
    cases: list[Case], derived: dict[str, float] | None = None
) -> tuple[dict, list[tuple[Case, float]]]:
    """Return ({table: {factor: (value, rows)}}, [(case, fitted prediction)]): staged joint log
    least squares (:func:`stage_of`), each stage's factors fitted with the earlier stages' held.

    ``derived``: cross-family defaults ({factor: value}) that factors a family neither fits nor
    has its own prior for take (``derived_defaults`` of a previous round); none: the priors."""
    derived = derived or {}
    ttft = ttft_engines(cases)
    used = [c for c in cases if informed(c, ttft)]
    keys = {c.key: (c.family, c.engine) for c in used}
    held: dict[str, dict[str, float]] = defaultdict(dict)
    fitted: dict[str, dict] = defaultdict(dict)
    for stage in sorted({stage_of(c) for c in used}):
        rows_in = [c for c in used if stage_of(c) == stage]
        for (t, f), (v, rows) in _fit_stage(rows_in, ttft, derived, keys, held).items():
            fitted[t][f] = (v, rows)
            held[t][f] = v
    ov = _resolve_all(held, derived, keys)
    return dict(fitted), [(c, c.predict(ov)) for c in used]


def _resolve_all(values, derived, keys) -> dict[str, dict[str, float]]:
    """{case key: every factor} for ``keys`` ({key: (family, engine)}) from the fitted
    ``values`` ({table: {factor: value}}; global factors, if any, apply to all)."""
    glob = values.get("*", {})
    out = {}
    for key, (fam, eng) in keys.items():
        out[key] = resolved(fam, {**glob, **values.get(fam, {})}, derived, engine=eng,
                            tables=values)
    return out


def _fit_stage(cases, ttft, derived, keys, held) -> dict[tuple[str, str], tuple[float, list]]:
    """{(table, factor): (value, rows)} of one stage, ``held`` fixed."""
    params = _parameters(cases, ttft)
    x0 = np.log([_prior(fam, f) for fam, f in params])
    lo = np.log([BOUNDS.get(f, FRACTION)[0] for _, f in params])
    hi = np.log([BOUNDS.get(f, FRACTION)[1] for _, f in params])
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)

    def residuals(x):
        values = defaultdict(dict, {t: dict(fs) for t, fs in held.items()})
        for t, fs in _fam_values(params, x).items():
            values[t].update(fs)
        ov = _resolve_all(values, derived, keys)
        data = [math.log(c.predict(ov) / c.measured) for c in cases]
        return np.concatenate([data, PRIOR_WEIGHT * (x - x0)])

    sol = least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=1.0)
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in cases:
        for t, f in informed(c, ttft):
            rows[("*", f) if f in GLOBAL else (t, f)].append(c.id)
    return {(t, f): (math.exp(v), rows[(t, f)]) for (t, f), v in zip(params, sol.x, strict=True)}


def _families(fitted: dict) -> list[str]:
    """The chip families among the fitted tables (not the global or engine tables)."""
    return sorted(k for k in fitted if k != "*" and not k.startswith(ENGINE_PREFIX))


def derived_defaults(fitted: dict) -> dict[str, tuple[float, list[str]]]:
    """{factor: (median over the families that fit it, those families)} for the borrowable
    fractions of a peak (fixed costs, engine factors and the roofline exponent depend on the
    software stack and are not borrowed; global factors are already shared). A factor with a
    base in :data:`RATIOS` is never borrowed as an absolute value: it is the base's default times
    the cross-family ratio (:func:`ratio_of`)."""
    fams = _families(fitted)
    out = {}
    for f in FACTORS:
        src = [fam for fam in fams if f in fitted[fam]]
        if src and f not in fitted.get("*", {}) and f not in NOT_BORROWED and f not in RATIOS:
            out[f] = (float(np.median([fitted[fam][f][0] for fam in src])), src)
    for f, base in RATIOS.items():  # in order: a ratio's base may itself be a ratio
        ratio, src = ratio_of(fitted, f)
        if base in out:
            out[f] = (out[base][0] * ratio, src)
    return out


def ratio_of(fitted: dict, factor: str) -> tuple[float, list[str]]:
    """(median of ``factor / base`` over the families that fit both, capped at 1, those
    families; with none, the ratio of the default priors for :data:`RATIO_PRIORS`, else 1): a
    lower precision reaches no more of its peak than the higher one does of its own, so a
    derived rate never exceeds the hardware's peak ratio."""
    base = RATIOS[factor]
    src = [fam for fam in _families(fitted) if factor in fitted[fam] and base in fitted[fam]]
    if not src:
        if factor not in RATIO_PRIORS:
            return 1.0, []
        prior = prior_for("__none__")
        return min(1.0, prior.value(factor) / prior.value(base)), []
    ratios = [fitted[fam][factor][0] / fitted[fam][base][0] for fam in src]
    return min(1.0, float(np.median(ratios))), src


def _ratio_note(factor: str, base: str, ratio: float, src: list[str]) -> str:
    whose = ", ".join(src) if src else "the stated prior (priors.toml)"
    return f"own {base} x the {factor}/{base} ratio {ratio:.3f} of {whose}"


def family_derived(fitted: dict) -> dict[str, dict[str, tuple[float, str]]]:
    """{family: {factor: (value, note)}} for a family that fits (or derives) a ratio factor's
    base but not the factor itself: its own base times the cross-family ratio (AMD's 8-bit GEMMs
    from AMD's 16-bit fit, Blackwell's 4-bit from its own 8-bit fit), never another family's
    absolute value."""
    out: dict[str, dict[str, tuple[float, str]]] = defaultdict(dict)
    for f, base in RATIOS.items():
        ratio, src = ratio_of(fitted, f)
        for fam in _families(fitted):
            fs = fitted[fam]
            own = fs[base][0] if base in fs else out.get(fam, {}).get(base, (None,))[0]
            if own is not None and f not in fs and (src or f in RATIO_PRIORS):
                out[fam][f] = (own * ratio, _ratio_note(f, base, ratio, src))
    return dict(out)


def _converged(a: dict, b: dict, rel: float = 1e-3) -> bool:
    flat_a = {(fam, f): v for fam, fs in a.items() for f, (v, _) in fs.items()}
    flat_b = {(fam, f): v for fam, fs in b.items() for f, (v, _) in fs.items()}
    return flat_a.keys() == flat_b.keys() and all(
        math.isclose(flat_a[k], flat_b[k], rel_tol=rel) for k in flat_a
    )


def calibrate(cases: list[Case], *, progress=None) -> tuple[dict, list[tuple[Case, float]]]:
    """Fit, then refit with the derived defaults of the last fit until the factors move by less
    than 0.1 % (at most ``MAX_ROUNDS`` fits). ``progress(n)``, if given, is called after each
    fit (the calls sum to ``MAX_ROUNDS``: an early convergence counts the rest at once)."""
    derived: dict[str, float] = {}
    previous: dict = {}
    step = progress or (lambda n=1: None)
    for done in range(1, MAX_ROUNDS + 1):
        fitted, preds = fit(cases, derived)
        step(1)
        if _converged(previous, fitted):
            step(MAX_ROUNDS - done)
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
        how = "median" if f not in RATIOS else f"the default {RATIOS[f]} x the cross-family ratio,"
        note = f"{how} of the fits for {', '.join(src) or 'none: the stated prior ratio'}"
        lines.append(f"{f} = " + _toml_factor(v, "derived", [], note))
    own = family_derived(fitted)
    for fam in sorted(k for k in fitted if k != "*"):
        lines += ["", f'["{fam}"]' if ":" in fam or "@" in fam else f"[{fam}]"]
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
    measurements: Path | None = None, out: Path | None = None, *, only: bool = False,
    progress=None,
) -> int:
    """Fit on the shipped rows (+ ``measurements``; ``only``: just those) and write ``out``
    (default: the preset ``fitted.toml``) unless it already holds the same factors.
    ``progress``: as :func:`calibrate`'s."""
    target = Path(out) if out else FITTED
    _check_out(target)
    cases, _ = build_cases(load_rows(measurements, only=only))
    fitted, preds = calibrate(cases, progress=progress)
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
