"""Evaluate one design point of a search space: chip x model shape x deployment -> metrics.

Objectives and constraints are metrics registered by name (:data:`METRICS`), with a default
direction. A point that cannot run (package too large, parallelism that does not divide, a model
that does not fit in memory, a shape off the quality guard) raises :class:`Infeasible` *before*
any step is costed; the search records it with its reason and never invents objective values.

Quality guard for model-shape search (``[quality]``):

* ``mode = "iso_params"``: ``num_layers`` is solved so the total parameter count equals the base
  model's (within ``tolerance``, default 5 %), so shapes trade width for depth at equal size.
* ``mode = "iso_loss"``: the Chinchilla fit (Hoffmann et al. 2022, arXiv 2203.15556, approach 3:
  L(N, D) = 1.69 + 406.4 / N^0.34 + 410.7 / D^0.28) at ``train_tokens`` D (default: 20 tokens
  per parameter of the base model) must not exceed the base model's loss by more than
  ``tolerance`` (relative). For MoE models N is the total parameter count, an extrapolation of a
  dense-model fit (flagged in the trial's notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from arch.base import ConfigError
from arch.chip import Chip, System
from arch.physical import ChipDesign, PhysicalReport, design_from_dict
from arch.presets import load_chip
from explore.tco.inputs import TcoInputs, default_inputs, ownership, usd_per_m_tokens
from sim.evaluate import RunCost, Workload, evaluate, resolve_workload
from workloads.model import ModelSpec
from workloads.presets import load_model
from workloads.quant import get_quant

__all__ = [
    "METRICS",
    "Infeasible",
    "Metric",
    "Point",
    "build_chip",
    "build_model",
    "chinchilla_loss",
    "deployment",
    "evaluate_point",
    "lengths",
    "run_metrics",
    "section",
    "tco_inputs",
]


@dataclass(frozen=True)
class Metric:
    direction: str
    unit: str
    description: str


METRICS: dict[str, Metric] = {
    "tokens_per_s_per_user": Metric("maximize", "tok/s", "1 / mean TPOT of one sequence"),
    "tokens_per_s_per_chip": Metric("maximize", "tok/s", "output tokens/s of the system / chips"),
    "tokens_per_s": Metric("maximize", "tok/s", "output tokens/s of the whole system"),
    "tokens_per_s_per_w": Metric("maximize", "tok/J", "output tokens/s per W of chip power"),
    "usd_per_m_output_tokens": Metric("minimize", "$/M", "TCO per million output tokens"),
    "ttft_s": Metric("minimize", "s", "time to first token (prefill of the batch)"),
    "tpot_s": Metric("minimize", "s", "mean time per output token"),
    "area_mm2": Metric("minimize", "mm2", "silicon area of one chip"),
    "tdp_w": Metric("minimize", "W", "TDP of one chip"),
    "chip_cost_usd": Metric("minimize", "$", "unit cost (or price) of one chip"),
    "system_cost_usd": Metric("minimize", "$", "chips x chip cost"),
    "joules_per_token": Metric("minimize", "J", "energy per output token"),
    "chips": Metric("minimize", "", "chips in the system"),
    "params": Metric("minimize", "", "total model parameters"),
    "loss": Metric("minimize", "nats", "Chinchilla loss of the shape (quality guard)"),
}


class Infeasible(Exception):  # noqa: N818 - a verdict on a design, not an error
    """The point cannot run; ``str()`` says why (rejected before costing)."""


def chinchilla_loss(n_params: float, train_tokens: float) -> float:
    """Hoffmann et al. 2022, approach-3 fit: E + A / N^alpha + B / D^beta."""
    return 1.69 + 406.4 / n_params**0.34 + 410.7 / train_tokens**0.28


@dataclass(frozen=True)
class Point:
    """A costed design point: its metrics, the built objects and notes."""

    metrics: dict[str, float]
    chip: Chip
    model: ModelSpec
    design: ChipDesign | None
    physical: PhysicalReport | None
    deploy: dict[str, Any]
    notes: tuple[str, ...] = ()
    workload: Workload | None = None  # what was costed (system, parallelism, lengths)


def section(params: dict, section: str) -> dict:
    """The ``section.*`` entries of a trial's parameters, without the prefix."""
    prefix = f"{section}."
    return {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def build_chip(
    base: dict, chip_params: dict
) -> tuple[Chip, ChipDesign | None, PhysicalReport | None]:
    spec = base.get("chip", "h100-sxm")
    if isinstance(spec, str):
        if chip_params:
            raise ConfigError("[chip] dimensions need [base.chip] to be a design table, "
                              f"not the preset {spec!r}")  # fmt: skip
        return load_chip(spec), None, None
    design = design_from_dict({**spec, **chip_params}, "[base.chip]")
    if not (design.sram_bytes or design.hbm_stacks or design.ddr_packages):
        raise Infeasible("no memory: sram_bytes, hbm_stacks and ddr_packages are all 0")
    if design.hbm_stacks and design.ddr_packages:
        raise Infeasible("both HBM and DDR: the model has one off-chip memory type")
    report = design.report()
    if not report.fits:
        raise Infeasible(report.note)
    return design.to_chip(report=report), design, report


def _set(d: dict, path: str, value: Any) -> None:
    *head, last = path.split(".")
    for h in head:
        d = d[h]
    d[last] = value


_MODEL_PATHS = {
    "hidden_size": "hidden_size", "num_layers": "num_layers",
    "num_heads": "attention.num_heads", "num_kv_heads": "attention.num_kv_heads",
    "head_dim": "attention.head_dim", "kv_lora_rank": "attention.kv_lora_rank",
    "num_experts": "moe.num_experts", "top_k": "moe.top_k",
    "expert_ffn_size": "moe.expert_ffn_size",
}  # fmt: skip


def _shape(base: ModelSpec, p: dict) -> dict:
    d = base.model_dump(exclude={"sources"})
    if p and any(k.startswith(("num_experts", "top_k", "expert")) for k in p) and not d["moe"]:
        raise ConfigError(f"model.num_experts/top_k: {base.name} is not an MoE model")
    for key, value in p.items():
        if key in _MODEL_PATHS:
            _set(d, _MODEL_PATHS[key], int(value))
    if "hidden_size" in p and "num_heads" not in p and d["attention"]["kind"] == "gqa":
        d["attention"]["num_heads"] = max(1, d["hidden_size"] // d["attention"]["head_dim"])
    if "num_experts" in p and "expert_ffn_size" not in p:  # fine-grained experts: iso expert
        moe = base.moe  # parameters, num_experts x expert_ffn_size kept (DeepSeekMoE convention)
        d["moe"]["expert_ffn_size"] = max(
            64, moe.num_experts * moe.expert_ffn_size // int(p["num_experts"])
        )
    if "ffn_multiple" in p:
        d["mlp"]["ffn_size"] = max(256, round(p["ffn_multiple"] * d["hidden_size"] / 256) * 256)
    d["name"] = f"{base.name}-shape"
    d["published_params"] = float(base.total_params())
    return d


def build_model(base: ModelSpec, shape: dict, quality: dict) -> tuple[ModelSpec, list[str]]:
    """The base model with the searched shape; under iso_params its depth is solved."""
    if not shape:
        return base, []
    d = _shape(base, shape)
    try:
        model = ModelSpec(**d)
    except ValueError as exc:
        raise Infeasible(f"invalid shape: {str(exc).splitlines()[-1].strip()}") from None
    if quality.get("mode", "none") == "iso_params":
        model = _iso_params(model, base.total_params(), float(quality.get("tolerance", 0.05)))
    notes = []
    if quality.get("mode") == "iso_loss" and model.is_moe:
        notes.append("EXTRAPOLATED: Chinchilla loss of an MoE model from its total parameters")
    return model, notes


def _iso_params(model: ModelSpec, target: float, tol: float) -> ModelSpec:
    first = (model.moe.first_dense_layers if model.moe else 0) + 1
    p1 = model.model_copy(update={"num_layers": first}).total_params()
    p2 = model.model_copy(update={"num_layers": first + 1}).total_params()
    layers = first + round((target - p1) / (p2 - p1))
    if layers < first:
        raise Infeasible(f"iso_params: the shape's embeddings alone exceed {target:.3g} params")
    out = model.model_copy(update={"num_layers": layers})
    err = out.total_params() / target - 1
    if abs(err) > tol:
        raise Infeasible(f"iso_params: nearest depth {layers} is {100 * err:+.1f} % off the "
                         f"base size (tolerance {100 * tol:g} %)")  # fmt: skip
    return out


def lengths(base: dict) -> tuple[int, int]:
    """(input_len, output_len) of a space's or scenario's base (defaults 1024 / 256)."""
    return int(base.get("input_len", 1024)), int(base.get("output_len", 256))


def _deploy(base: dict, params: dict) -> dict:
    p = section(params, "deploy")
    out = {k: p.get(k, base.get(k, 1)) for k in ("pp", "ep", "batch")}
    chips, tp = p.get("chips", base.get("chips")), p.get("tp", base.get("tp"))
    if chips is None:  # one replica of tp x pp chips
        chips = int(tp or 1) * int(out["pp"])
    # tensor parallelism over all chips of a pipeline stage unless given
    out["chips"], out["tp"] = chips, tp if tp is not None else int(chips) // int(out["pp"])
    out["quant"] = p.get("quant", base.get("quant", "bf16"))
    return {k: (v if k == "quant" else int(v)) for k, v in out.items()}


def deployment(chip: Chip, model: ModelSpec, base: dict, params: dict):
    """(deploy dict, Workload) of a point: chips, parallelism and batch from the base and the
    trial; raises :class:`Infeasible` when the parallelism cannot run the model."""
    dep = _deploy(base, params)
    per_replica = dep["tp"] * dep["pp"]
    if dep["chips"] % per_replica:
        raise Infeasible(f"chips {dep['chips']} is not a multiple of tp*pp = {per_replica}")
    inp, out = lengths(base)
    try:
        w = resolve_workload(system=System(chip=chip, count=dep["chips"]), model=model,
                             quant=get_quant(dep["quant"]), tp=dep["tp"], pp=dep["pp"],
                             ep=dep["ep"], dp=dep["chips"] // per_replica, input_len=inp,
                             output_len=out, engine=base.get("engine"))  # fmt: skip
    except ConfigError as exc:
        raise Infeasible(str(exc)) from None
    return dep, w


def evaluate_point(base: dict, params: dict, quality: dict | None = None) -> Point:
    """Cost one point: raises Infeasible (with the reason) before costing when it cannot run."""
    chip, design, phys = build_chip(base, section(params, "chip"))
    base_model = load_model(base["model"]) if isinstance(base["model"], str) else base["model"]
    model, notes = build_model(base_model, section(params, "model"), quality or {})
    dep, w = deployment(chip, model, base, params)
    plan = w.plan(dep["batch"])
    if not plan.fits:
        raise Infeasible(f"memory: {plan.reason}")
    r = evaluate(w, dep["batch"])
    assert r.run is not None
    m = run_metrics(r.run, chips=dep["chips"], tdp_w=chip.tdp_w, idle_w=chip.idle_w,
                    price_usd=chip.price_usd or 0.0, area_mm2=chip.die_area_mm2 or math.nan,
                    tco=tco_inputs(base), params=float(model.total_params()),
                    loss=_loss(model, quality or {}))  # fmt: skip
    metrics = {k: float(np.asarray(v).ravel()[0]) for k, v in m.items()}
    return Point(metrics, chip, model, design, phys, dep, (*notes, *r.notes), w)


def tco_inputs(base: dict) -> TcoInputs:
    return default_inputs().with_overrides(base.get("tco"), "[base.tco]")


def _loss(model: ModelSpec, quality: dict) -> float:
    n = float(model.total_params())
    return chinchilla_loss(n, float(quality.get("train_tokens") or 20.0 * n))


def run_metrics(run: RunCost, *, chips: int, tdp_w, idle_w, price_usd, area_mm2,
                tco: TcoInputs, params: float, loss: float) -> dict[str, np.ndarray]:  # fmt: skip
    """Every :data:`METRICS` entry of a costed run, per design (arrays; one design: length 1)."""
    own = ownership(tco, chips=chips, chip_price_usd=price_usd, chip_tdp_w=tdp_w,
                    chip_busy_w=run.power_w, chip_idle_w=idle_w)  # fmt: skip
    tps = run.tokens_per_s
    n = np.ones_like(run.tpot_s)
    return {
        "tokens_per_s_per_user": 1.0 / run.tpot_s,
        "tokens_per_s_per_chip": run.tokens_per_s_per_chip,
        "tokens_per_s": tps,
        "tokens_per_s_per_w": tps / (chips * run.power_w),
        "usd_per_m_output_tokens": usd_per_m_tokens(own, tps, tco.utilization) * n,
        "ttft_s": run.ttft_s,
        "tpot_s": run.tpot_s,
        "area_mm2": area_mm2 * n,
        "tdp_w": tdp_w * n,
        "chip_cost_usd": price_usd * n,
        "system_cost_usd": chips * price_usd * n,
        "joules_per_token": run.energy_j_per_token,
        "chips": float(chips) * n,
        "params": params * n,
        "loss": loss * n,
    }
