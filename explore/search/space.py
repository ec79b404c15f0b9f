"""Search spaces as data: a TOML file names the fixed base, the dimensions to vary, the
objectives, constraints and the model-quality guard.

.. code-block:: toml

    [study]
    name = "sram-vs-hbm-70b"
    objectives = ["tokens_per_s_per_user", "usd_per_m_output_tokens"]   # directions: registry
    constraints = ["area_mm2 <= 800", "tdp_w <= 700"]
    sampler = "nsga2"          # tpe | nsga2 | random | grid
    n_trials = 300
    seed = 0

    [base]                     # what does not vary
    model = "llama-3.1-70b"
    quant = "fp8"
    input_len = 2048
    output_len = 256
    chips = 8
    tp = 8
    batch = 32
    [base.chip]                # a ChipDesign (or chip = "b200", a preset)
    node = "N4"
    peak_bf16_flops_per_s = "1000 TFLOP/s"

    [chip]                     # dimensions, by section: chip (ChipDesign fields), model, deploy
    sram_bytes = { low = "0 MB", high = "2 GB", step = "256 MB" }
    hbm_stacks = { choices = [0, 2, 4, 6, 8] }

A dimension is ``{choices = [...]}``, ``{low, high}`` with optional ``step`` (a grid) or
``log = true``, and ``num`` (grid points for ``xpusim sweep`` when there is no step). Values may
be unit strings where the field name carries a unit (``_bytes``, ``_flops_per_s``, ``_hz``...).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arch.base import ConfigError, load_toml
from arch.physical import ChipDesign
from arch.units import UnitError, dimension_of_field, parse_quantity

__all__ = ["CONSTRAINT_OPS", "Constraint", "Dim", "Space", "load_space", "parse_value"]

MODEL_DIMS = {
    "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "ffn_multiple",
    "num_experts", "top_k", "expert_ffn_size", "kv_lora_rank",
}  # fmt: skip
DEPLOY_DIMS = {"chips", "tp", "pp", "ep", "batch", "quant"}
CHIP_DIMS = set(ChipDesign.model_fields) - {"name"}
SECTIONS = {"chip": CHIP_DIMS, "model": MODEL_DIMS, "deploy": DEPLOY_DIMS}
SAMPLERS = ("tpe", "nsga2", "random", "grid")
CONSTRAINT_OPS = ("<=", ">=")
_CONSTRAINT = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=)\s*(\S.*?)\s*$")


def parse_value(v: Any, name: str) -> Any:
    """A number, or a unit string parsed for fields whose name carries a unit."""
    if isinstance(v, str) and dimension_of_field(name) is not None:
        try:
            return parse_quantity(v, name)
        except UnitError as exc:
            raise ConfigError(f"{name}: {exc}") from None
    return v


@dataclass(frozen=True)
class Dim:
    """One searched dimension. ``key`` is ``section.name`` (the Optuna parameter name)."""

    section: str
    name: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    num: int | None = None

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def is_int(self) -> bool:
        vals = self.choices or (self.low, self.high) + ((self.step,) if self.step else ())
        return all(isinstance(v, int) and not isinstance(v, bool) for v in vals)

    def suggest(self, trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1,
                                     log=self.log)  # fmt: skip
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list:
        """The values ``xpusim sweep`` and the grid sampler visit."""
        if self.choices:
            return list(self.choices)
        if self.step:
            n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
            vals = [self.low + i * self.step for i in range(n)]
        elif self.num:
            space = np.geomspace if self.log else np.linspace
            vals = space(self.low, self.high, self.num).tolist()
        else:
            raise ConfigError(f"{self.key}: a grid needs choices, step or num; add one")
        return [round(v) for v in vals] if self.is_int else vals


def _dim(section: str, name: str, spec: Any) -> Dim:
    if section not in SECTIONS:
        raise ConfigError(f"[{section}]: unknown section; use chip, model or deploy")
    if name not in SECTIONS[section]:
        hint = ", ".join(sorted(SECTIONS[section]))
        raise ConfigError(f"{section}.{name}: not a searchable {section} dimension; one of {hint}")
    if not isinstance(spec, dict):
        raise ConfigError(f"{section}.{name}: write {{choices = [...]}} or {{low = ., high = .}}")
    unknown = set(spec) - {"choices", "low", "high", "step", "log", "num"}
    if unknown:
        raise ConfigError(f"{section}.{name}: unknown key {sorted(unknown)[0]!r}")
    if "choices" in spec:
        if not spec["choices"]:
            raise ConfigError(f"{section}.{name}: choices is empty")
        return Dim(section, name, choices=tuple(parse_value(v, name) for v in spec["choices"]))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{section}.{name}: give low and high (or choices)")
    low, high = parse_value(spec["low"], name), parse_value(spec["high"], name)
    step = parse_value(spec["step"], name) if "step" in spec else None
    if not low <= high:
        raise ConfigError(f"{section}.{name}: low must be <= high")
    if spec.get("log") and low <= 0:
        raise ConfigError(f"{section}.{name}: log = true needs low > 0")
    return Dim(section, name, low=low, high=high, step=step, log=bool(spec.get("log", False)),
               num=spec.get("num"))  # fmt: skip


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit`` or ``metric >= limit``; Optuna's value is <= 0 when satisfied
    (relative to the limit, so constraints of different units weigh alike)."""

    metric: str
    op: str
    limit: float

    def violation(self, value: float) -> float:
        scale = abs(self.limit) or 1.0
        gap = value - self.limit if self.op == "<=" else self.limit - value
        return gap / scale

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


def _constraint(text: str, metrics: dict) -> Constraint:
    m = _CONSTRAINT.match(text)
    if not m:
        raise ConfigError(f"constraint {text!r}: write 'metric <= value' or 'metric >= value'")
    name, op, raw = m.groups()
    if name not in metrics:
        raise ConfigError(f"constraint {text!r}: unknown metric; one of {', '.join(metrics)}")
    try:
        limit = float(raw)
    except ValueError:
        raise ConfigError(f"constraint {text!r}: the limit must be a number") from None
    return Constraint(name, op, limit)


@dataclass(frozen=True)
class Space:
    name: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    sampler: str
    n_trials: int
    seed: int
    base: dict[str, Any]
    dims: tuple[Dim, ...]
    quality: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def dims_in(self, section: str) -> list[Dim]:
        return [d for d in self.dims if d.section == section]


def _objectives(raw: list, metrics: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names, dirs = [], []
    for o in raw:
        name, direction = (o, None) if isinstance(o, str) else (o.get("name"), o.get("direction"))
        if name not in metrics:
            raise ConfigError(f"objective {name!r}: unknown; one of {', '.join(metrics)}")
        direction = {"max": "maximize", "min": "minimize"}.get(direction, direction)
        names.append(name)
        dirs.append(direction or metrics[name].direction)
    if not names:
        raise ConfigError("[study] objectives: name at least one objective")
    return tuple(names), tuple(dirs)


def load_space(path: str | Path) -> Space:
    """Parse and check a space file; every error is one line naming the key."""
    from explore.search.objectives import METRICS

    raw = load_toml(Path(path))
    unknown = set(raw) - {"study", "base", "quality", *SECTIONS}
    if unknown:
        raise ConfigError(f"{path}: unknown section [{sorted(unknown)[0]}]")
    study = raw.get("study", {})
    objectives, directions = _objectives(study.get("objectives", []), METRICS)
    sampler = study.get("sampler", "tpe" if len(objectives) == 1 else "nsga2")
    if sampler not in SAMPLERS:
        raise ConfigError(f"[study] sampler {sampler!r}: one of {', '.join(SAMPLERS)}")
    dims = tuple(_dim(s, n, spec) for s in SECTIONS for n, spec in raw.get(s, {}).items())
    if not dims:
        raise ConfigError(f"{path}: no dimensions; add a [chip], [model] or [deploy] table")
    base = dict(raw.get("base", {}))
    if "model" not in base:
        raise ConfigError("[base] model: required (a preset name or a model TOML path)")
    return Space(
        name=str(study.get("name", Path(path).stem)),
        objectives=objectives,
        directions=directions,
        constraints=tuple(_constraint(c, METRICS) for c in study.get("constraints", [])),
        sampler=sampler,
        n_trials=int(study.get("n_trials", 100)),
        seed=int(study.get("seed", 0)),
        base=base,
        dims=dims,
        quality=dict(raw.get("quality", {})),
        path=str(path),
    )
