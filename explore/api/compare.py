"""``compare``: two or more configurations of one workload, side by side, with deltas and ratios.

A configuration is one ``predict`` (:func:`explore.api.predict.predict`): a system, optionally
edited by ``--set`` (:mod:`arch.overrides`), and the predict arguments. :func:`pair` builds the
configurations from repeated flags: a flag given once applies to all; flags given ``k > 1``
times are zipped (the i-th values together), so all of them must be given the same number of
times. An edit ``--set N:PATH=VALUE`` applies to configuration ``N`` (from 1) only,
``--set CHIP:PATH=VALUE`` to the configurations on chip ``CHIP``, a plain one to all. A single
configuration with edits is compared with itself unedited (the architect's what-if).

``deltas`` relate each headline metric of every configuration to the first's:
``delta = value - first``, ``ratio = value / first`` (None where either is missing, or the first
is 0). ``better`` says which direction is an improvement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arch.base import ConfigError
from arch.chip import System
from arch.overrides import Edit, Override, edit_system, parse_edit, static_no_effect
from arch.presets import parse_system
from explore.api.predict import predict, result_dict
from sim.evaluate import Result, require_pandas

__all__ = [
    "HEADLINE",
    "Comparison",
    "Config",
    "compare",
    "deltas",
    "edited",
    "effect_notes",
    "pair",
]

# headline metric -> (label, unit, better); the keys are predict's JSON keys
HEADLINE: dict[str, tuple[str, str, str]] = {
    "ttft_s": ("TTFT", "s", "lower"),
    "tpot_s": ("TPOT", "s", "lower"),
    "e2e_s": ("e2e latency", "s", "lower"),
    "tokens_per_s_per_user": ("tokens/s per user", "tokens/s", "higher"),
    "output_tokens_per_s": ("output tokens/s", "tokens/s", "higher"),
    "output_tokens_per_s_per_chip": ("output tokens/s per chip", "tokens/s", "higher"),
    "batch": ("batch per replica", "sequences", "n/a"),
    "power_w": ("power per chip", "W", "lower"),
    "energy_j_per_token": ("energy per token", "J", "lower"),
}
# the predict arguments a configuration varies (CLI flag -> predict keyword)
VARIED = {
    "--system": "system",
    "--model": "model",
    "--quant": "quant",
    "--tp": "tp",
    "--pp": "pp",
    "--ep": "ep",
    "--dp": "dp",
    "--batch": "batch",
    "--input-len": "input_len",
    "--output-len": "output_len",
    "--engine": "engine",
}


@dataclass(frozen=True)
class Config:
    """One configuration: a label and the keyword arguments of :func:`predict` (``system`` a
    ``CHIP:N`` spelling), and the ``--set`` edits of its chip."""

    label: str
    kwargs: dict[str, Any]
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class Comparison:
    configs: tuple[Config, ...]
    results: tuple[Result, ...]
    overrides: tuple[tuple[Override, ...], ...] = ()
    notes: tuple[tuple[str | None, ...], ...] = ()  # per config, per override: no-effect reason
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"configs": [{"label", "result"}], "deltas"}``; a result carries ``overrides``
        [{path, value, was, set, note}] when its chip was edited."""
        configs = []
        for i, (c, r) in enumerate(zip(self.configs, self.results, strict=True)):
            out = result_dict(r)
            if self.overrides and self.overrides[i]:
                out["overrides"] = overrides_dict(self.overrides[i], self.notes[i])
            configs.append({"label": c.label, "result": out})
        return {"configs": configs, "deltas": deltas(configs), **self.extra}

    def to_dataframe(self):
        """One row per configuration: the label and each headline metric (needs pandas)."""
        pd = require_pandas("Comparison.to_dataframe()")

        rows = [{"label": c["label"], **{k: c["result"].get(k) for k in HEADLINE}}
                for c in self.to_dict()["configs"]]  # fmt: skip
        return pd.DataFrame(rows)


def overrides_dict(overrides: Sequence[Override], notes: Sequence[str | None]) -> list[dict]:
    return [{**o.to_dict(), "note": n} for o, n in zip(overrides, notes, strict=True)]


def deltas(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per headline metric: each configuration's value, delta and ratio to the first's."""
    out: dict[str, Any] = {}
    base = configs[0]["result"]
    for key, (label, unit, better) in HEADLINE.items():
        b = base.get(key)
        rows = []
        for c in configs:
            v = c["result"].get(key)
            ok = _finite(v) and _finite(b)
            rows.append({
                "label": c["label"], "value": v,
                "delta": v - b if ok else None,
                "ratio": v / b if ok and b != 0 else None,
            })  # fmt: skip
        out[key] = {"name": label, "unit": unit, "better": better, "values": rows}
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def edited(spec: str, edits: Sequence[Edit]) -> tuple[str | System, tuple[Override, ...]]:
    """``spec`` (``CHIP:N``) with ``edits`` applied: the System, and what changed (the spec
    itself when there are no edits)."""
    if not edits:
        return spec, ()
    return edit_system(parse_system(spec), edits)


def effect_notes(system: System, overrides: Sequence[Override], result: Result,
                 baseline: Result | None) -> tuple[str | None, ...]:  # fmt: skip
    """Per override, ``"no effect: why"`` where it changes nothing (None where it may):
    the reason known without running (:func:`arch.overrides.static_no_effect`), else, when the
    headline numbers equal ``baseline``'s (the unedited run), that they do."""
    same = baseline is not None and _same(result, baseline)
    cfg = result.config
    par = cfg.get("parallelism", {})
    per_replica = max(1, system.count // max(1, int(par.get("dp") or 1)))
    out = []
    for o in overrides:
        why = static_no_effect(system, o, chips_per_replica=per_replica,
                               gemm_precision=cfg.get("gemm_precision"))  # fmt: skip
        if why is None and same:
            why = ("the predicted numbers equal the unedited preset's (no phase of this run is "
                   "bound by it)")  # fmt: skip
        out.append(f"no effect: {why}" if why else None)
    return tuple(out)


def _same(a: Result, b: Result) -> bool:
    da, db = a.to_dict(), b.to_dict()
    keys = [*HEADLINE, "fits", "memory_per_chip_bytes"]
    return all(da.get(k) == db.get(k) for k in keys)


def pair(values: dict[str, list[Any]], sets: Sequence[str], *,
         common: dict[str, Any] | None = None) -> list[Config]:  # fmt: skip
    """Configurations from the repeated flags ``values`` (flag -> values given, in order) and
    the ``--set`` edits (module docstring)."""
    given = {f: v for f, v in values.items() if v}
    many = {f: len(v) for f, v in given.items() if len(v) > 1}
    if len(set(many.values())) > 1:
        counts = ", ".join(f"{f} {n} times" for f, n in many.items())
        raise ConfigError(
            f"compare: {counts}: repeated flags pair up one configuration per "
            "value, so give each the same number of times (or once, for all)"
        )
    n = max(many.values(), default=1)
    edits = [parse_edit(s) for s in sets]
    rows = [{VARIED[f]: v[i] if len(v) > 1 else v[0] for f, v in given.items()}
            for i in range(n)]  # fmt: skip
    cfg_edits = [_edits_for(i, row, edits) for i, row in enumerate(rows)]
    _check_targets(edits, rows)
    if n == 1 and not edits:
        raise ConfigError(
            "compare needs two or more configurations: repeat a flag "
            "(--system A --system B, --quant fp8 --quant bf16, ...) or add --set"
        )
    if n == 1:  # one configuration with edits: compared with itself unedited
        rows, cfg_edits = [rows[0], rows[0]], [(), cfg_edits[0]]
    labels = _labels(rows, cfg_edits, sorted(many))
    return [Config(label=lb, kwargs={**(common or {}), **row}, edits=e)
            for lb, row, e in zip(labels, rows, cfg_edits, strict=True)]  # fmt: skip


def _chip(row: dict[str, Any]) -> str:
    return str(row.get("system", "")).partition(":")[0]


def _edits_for(i: int, row: dict[str, Any], edits: list[Edit]) -> tuple[Edit, ...]:
    return tuple(
        e for e in edits if e.target is None or e.target == str(i + 1) or e.target == _chip(row)
    )


def _check_targets(edits: list[Edit], rows: list[dict[str, Any]]) -> None:
    chips = {_chip(r) for r in rows}
    for e in edits:
        if e.target is None or e.target in chips:
            continue
        if e.target.isdigit() and 1 <= int(e.target) <= len(rows):
            continue
        raise ConfigError(f"--set {e.text!r}: {e.target!r} is no configuration; give a "
                          f"configuration number 1-{len(rows)} or a chip: "
                          f"{', '.join(sorted(chips))}")  # fmt: skip


def _labels(rows: list[dict], cfg_edits: list[tuple[Edit, ...]], varied: list[str]) -> list[str]:
    """What tells the configurations apart: the varied flags' values, then the edits."""
    keys = [VARIED[f] for f in VARIED if f in varied]
    out = []
    for row, e in zip(rows, cfg_edits, strict=True):
        parts = [str(row[k]) if k == "system" else f"{k}={row[k]}" for k in keys]
        parts += [f"{x.path}={x.value}" for x in e]
        out.append(" ".join(parts) or "preset")
    if len(set(out)) < len(out):
        out = [f"{i + 1}: {lb}" for i, lb in enumerate(out)]
    return out


def compare(configs: Sequence[Config], *, check_effect: bool = True) -> Comparison:
    """Predict every configuration; with ``check_effect``, an edited one is also run unedited
    to say which edits change nothing (:func:`effect_notes`)."""
    if len(configs) < 2:
        raise ConfigError("compare needs two or more configurations")
    results, overrides, notes = [], [], []
    for c in configs:
        system, done = edited(c.kwargs["system"], c.edits)
        try:
            r = predict(**{**c.kwargs, "system": system})
        except ConfigError as exc:
            raise ConfigError(f"compare: configuration {c.label!r}: {exc}") from None
        results.append(r)
        overrides.append(done)
        base = _baseline(c, configs, results) if done and check_effect and r.fits else None
        notes.append(effect_notes(system, done, r, base) if done else ())  # type: ignore[arg-type]
    return Comparison(tuple(configs), tuple(results), tuple(overrides), tuple(notes))


def _baseline(c: Config, configs: Sequence[Config], results: list[Result]) -> Result | None:
    """The unedited run of ``c``: an unedited configuration already run with the same
    arguments, else a new prediction; None when the unedited one cannot run (does not fit)."""
    for x, y in zip(results, configs, strict=False):
        if not y.edits and y.kwargs == c.kwargs:
            return x
    try:
        return predict(**c.kwargs)
    except ConfigError:
        return None
