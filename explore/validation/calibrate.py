"""Fit the named efficiency factors on the microbenchmark rows; write ``fitted.toml``.

Method: one joint least-squares problem over every microbenchmark case (GEMM TFLOP/s, achieved
bandwidth, attention TFLOP/s, all-reduce bus bandwidth and latency, link bandwidth), residuals
``log(predicted / measured)``, parameters in log space. Each chip family gets only the factors its
own rows inform; fractions of a peak are bounded to (0.05, 1]. A weak log-normal prior (weight
``PRIOR_WEIGHT``) keeps a factor its rows cannot pin down near its prior instead of letting it
drift. Layer- and end-to-end rows are never fitted on: they are the validation.

Families without rows get, as a ``derived`` default, the median of the fitted families for the
fractions of peak; fixed costs (kernel overhead, collective step latency) depend on the software
stack and are not borrowed across families.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from arch.efficiency import EFFICIENCY_DIR, FACTORS, clear_cache, prior_for
from explore.validation.cases import Case, build_cases, load_rows

__all__ = ["fit", "informed_factors", "run_calibrate"]

PRIOR_WEIGHT = 0.05
GLOBAL: tuple[str, ...] = ()  # factors shared by all families (none at present)
BOUNDS = {
    "roofline_exponent": (1.0, 20.0),
    "kernel_overhead_s": (1e-7, 2e-5),
    "isolated_launch_s": (1e-7, 3e-5),
    "collective_step_latency_s": (1e-7, 2e-5),
}
FRACTION = (0.05, 1.0)
NOT_BORROWED = (
    "kernel_overhead_s",
    "isolated_launch_s",
    "collective_step_latency_s",
    "roofline_exponent",
)


def informed_factors(case: Case) -> set[str]:
    """Which efficiency factors a microbenchmark row says something about."""
    m, d = case.metric, case.describe
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


def _overrides(params, x) -> dict[str, dict[str, float]]:
    glob = {f: math.exp(v) for (fam, f), v in zip(params, x, strict=True) if fam == "*"}
    out: dict[str, dict[str, float]] = defaultdict(lambda: dict(glob))
    for (fam, f), v in zip(params, x, strict=True):
        if fam != "*":
            out[fam][f] = math.exp(v)
    return out


def _prior(fam: str, factor: str) -> float:
    return prior_for("__none__" if fam == "*" else fam).value(factor)


def fit(cases: list[Case]) -> tuple[dict, list[tuple[Case, float]]]:
    """Return ({family: {factor: (value, rows)}}, [(case, fitted prediction)])."""
    micro = [c for c in cases if c.cls == "microbenchmark" and informed_factors(c)]
    params = _parameters(micro)
    x0 = np.log([_prior(fam, f) for fam, f in params])
    lo = np.log([BOUNDS.get(f, FRACTION)[0] for _, f in params])
    hi = np.log([BOUNDS.get(f, FRACTION)[1] for _, f in params])
    x0 = np.clip(x0, lo + 1e-6, hi - 1e-6)

    def residuals(x):
        ov = _overrides(params, x)
        data = [math.log(c.predict(ov) / c.measured) for c in micro]
        return np.concatenate([data, PRIOR_WEIGHT * (x - x0)])

    sol = least_squares(residuals, x0, bounds=(lo, hi), method="trf", x_scale=1.0)
    ov = _overrides(params, sol.x)
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in micro:
        for f in informed_factors(c):
            rows[("*", f) if f in GLOBAL else (c.family, f)].append(c.id)
    fitted: dict[str, dict] = defaultdict(dict)
    for (fam, f), v in zip(params, sol.x, strict=True):
        fitted[fam][f] = (math.exp(v), rows[(fam, f)])
    return dict(fitted), [(c, c.predict(ov)) for c in micro]


def _toml_factor(value: float, source: str, rows: list[str], note: str) -> str:
    row_list = ", ".join(f'"{r}"' for r in rows)
    return f'{{ value = {value:.6g}, source = "{source}", rows = [{row_list}], note = "{note}" }}'


def write_fitted(fitted: dict, path: Path, in_sample: dict[str, float]) -> None:
    glob = fitted.get("*", {})
    fams = sorted(k for k in fitted if k != "*")
    lines = [
        "# GENERATED by `xpusim calibrate` on " + date.today().isoformat() + " from "
        "shared/validation/measurements.csv.",
        "# Do not edit by hand; rerun the command.",
        "# in-sample |log error| per family: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(in_sample.items())),
        "",
    ]
    lines.append("[default]")
    for f, (v, rows) in glob.items():
        lines.append(f"{f} = " + _toml_factor(v, "fitted", rows, "shared by all families"))
    for f in FACTORS:
        vals = [fitted[fam][f][0] for fam in fams if f in fitted[fam]]
        if vals and f not in glob and f not in NOT_BORROWED:
            src = ", ".join(fam for fam in fams if f in fitted[fam])
            lines.append(
                f"{f} = "
                + _toml_factor(
                    float(np.median(vals)), "derived", [], f"median of the fits for {src}"
                )
            )
    for fam in fams:
        lines += ["", f"[{fam}]"]
        for f, (v, rows) in sorted(fitted[fam].items()):
            lines.append(f"{f} = " + _toml_factor(v, "fitted", rows, "joint log least squares"))
    path.write_text("\n".join(lines) + "\n")


def _converged(a: dict, b: dict, rel: float = 1e-3) -> bool:
    flat_a = {(fam, f): v for fam, fs in a.items() for f, (v, _) in fs.items()}
    flat_b = {(fam, f): v for fam, fs in b.items() for f, (v, _) in fs.items()}
    return flat_a.keys() == flat_b.keys() and all(
        math.isclose(flat_a[k], flat_b[k], rel_tol=rel) for k in flat_a
    )


def run_calibrate(measurements: Path | None, out: Path | None) -> int:
    cases, _ = build_cases(load_rows(measurements))
    target = out or EFFICIENCY_DIR / "fitted.toml"
    previous: dict = {}
    for _ in range(4):  # derived cross-family defaults feed back into the fit: iterate
        fitted, preds = fit(cases)
        errs: dict[str, list[float]] = defaultdict(list)
        for c, p in preds:
            errs[c.family].append(abs(math.log(p / c.measured)))
        in_sample = {k: float(np.median(v)) for k, v in errs.items()}
        write_fitted(fitted, target, in_sample)
        clear_cache()
        if _converged(previous, fitted):
            break
        previous = fitted
    print(
        f"fitted {sum(len(v) for v in fitted.values())} factors on {len(preds)} rows -> {target}"
    )
    for fam in sorted(fitted):
        vals = ", ".join(f"{f}={v:.4g}" for f, (v, _) in sorted(fitted[fam].items()))
        print(f"  {fam}: {vals}")
    return 0
