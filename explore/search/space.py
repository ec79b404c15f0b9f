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

The file is validated by :class:`SpaceFile` through :func:`arch.base.load_config`: an unknown
key, a value of the wrong type or out of range, an empty list is one line naming the file and
the key (``chip.sram_bytes.low``). Each dimension's values are checked against the field they
vary (a ChipDesign field, a model shape, a deployment knob).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from arch.base import ConfigError, UserConfig, field_error, load_config, partial_model
from arch.physical import ChipDesign
from arch.units import UnitError, parse_field_value
from explore.tco.inputs import TcoInputs

__all__ = [
    "CONSTRAINT_OPS",
    "Constraint",
    "Dim",
    "Space",
    "SpaceFile",
    "check_study_name",
    "load_space",
    "parse_constraint",
    "parse_objectives",
    "parse_value",
    "safe_name",
]

Sampler = Literal["tpe", "nsga2", "random", "grid"]
SAMPLERS = get_args(Sampler)
CONSTRAINT_OPS = ("<=", ">=")
_CONSTRAINT = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=)\s*(\S.*?)\s*$")


class _ModelValues(UserConfig):
    """What a [model] dimension may take: the model-shape knobs of the quality guard."""

    hidden_size: int | None = Field(default=None, ge=1)
    num_layers: int | None = Field(default=None, ge=1)
    num_heads: int | None = Field(default=None, ge=1)
    num_kv_heads: int | None = Field(default=None, ge=1)
    head_dim: int | None = Field(default=None, ge=1)
    ffn_multiple: float | None = Field(default=None, gt=0)
    num_experts: int | None = Field(default=None, ge=2)
    top_k: int | None = Field(default=None, ge=1)
    expert_ffn_size: int | None = Field(default=None, ge=1)
    kv_lora_rank: int | None = Field(default=None, ge=1)


class _DeployValues(UserConfig):
    """What a [deploy] dimension (or the same key in [base]) may take."""

    chips: int | None = Field(default=None, ge=1)
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    batch: int | None = Field(default=None, ge=1)
    quant: str | None = None


ChipOverrides = partial_model(ChipDesign)
TcoOverrides = partial_model(TcoInputs, exclude=("sources",))
_VALUES = {"chip": ChipOverrides, "model": _ModelValues, "deploy": _DeployValues}
SECTIONS = {s: set(m.model_fields) - {"name"} for s, m in _VALUES.items()}
CHIP_DIMS, MODEL_DIMS, DEPLOY_DIMS = SECTIONS["chip"], SECTIONS["model"], SECTIONS["deploy"]


def parse_value(v: Any, name: str) -> Any:
    """A number, or a unit string parsed for fields whose name carries a unit."""
    try:
        return parse_field_value(v, name)
    except UnitError as exc:
        raise ConfigError(f"{name}: {exc}") from None


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


def parse_constraint(text: str, metrics: Mapping) -> Constraint:
    """``"metric <= value"`` (or ``>=``) over a metric of ``metrics``; ConfigError otherwise."""
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
    if not math.isfinite(limit):
        raise ConfigError(f"constraint {text!r}: the limit must be a finite number")
    return Constraint(name, op, limit)


def parse_objectives(
    raw: Sequence[str | Mapping], metrics: Mapping
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Objective names (or ``{name, direction}`` tables) -> (names, directions); a direction
    left out is the metric's own (the registry's)."""
    names, dirs = [], []
    for o in raw:
        name, direction = (o, None) if isinstance(o, str) else (o.get("name"), o.get("direction"))
        if name not in metrics:
            raise ConfigError(f"objective {name!r}: unknown; one of {', '.join(metrics)}")
        direction = {"max": "maximize", "min": "minimize"}.get(direction, direction)
        names.append(name)
        dirs.append(direction or metrics[name].direction)
    if not names:
        raise ConfigError("name at least one objective")
    return tuple(names), tuple(dirs)


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


# --------------------------------------------------------------------------- study names

# A study name becomes a folder name (the default --out), file names (designs/NAME-sK.toml) and
# TOML strings: letters, digits and . _ - + only, starting with a letter or digit.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_NAME_FIX = ("use 1-100 letters, digits, '.', '_', '-' or '+', starting with a letter or digit "
             "(no '/', '..', spaces or control characters)")  # fmt: skip


def check_study_name(name: str, where: str) -> str:
    """``name`` if it is safe as a file name, else a ConfigError naming ``where``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{where} {name!r}: a study name becomes a file name; {_NAME_FIX}")
    return name


def safe_name(text: str) -> str:
    """``text`` as a valid study name: every run of other characters becomes '-' (the default
    name from a space file's stem)."""
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).replace("..", "-").lstrip("._+-")[:100]
    return slug or "study"


# --------------------------------------------------------------------------- the file's schema


def _metrics() -> Mapping:
    from explore.search.objectives import METRICS  # the registry costs its imports; load late

    return METRICS


class ObjectiveSpec(UserConfig):
    name: str
    direction: Literal["maximize", "minimize", "max", "min"] | None = None


class StudySection(UserConfig):
    """``[study]``: what to optimize, under which constraints, with which sampler."""

    name: str | None = None
    objectives: list[str | ObjectiveSpec]
    constraints: list[str] = Field(default_factory=list)
    sampler: Sampler | None = None
    n_trials: int = Field(default=100, ge=1)
    seed: int = Field(default=0, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and (not _NAME.fullmatch(v) or ".." in v):
            raise ValueError(f"a study name becomes a file name; {_NAME_FIX}")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str | ObjectiveSpec]) -> list[str | ObjectiveSpec]:
        parse_objectives(_plain(v), _metrics())
        return v

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, v: list[str]) -> list[str]:
        for i, text in enumerate(v):
            try:
                parse_constraint(text, _metrics())
            except ConfigError as exc:
                raise field_error((i,), str(exc), text) from None
        return v


def _plain(objectives: list[str | ObjectiveSpec]) -> list[str | dict]:
    return [o if isinstance(o, str) else o.model_dump() for o in objectives]


class BaseSection(_DeployValues):
    """``[base]``: what does not vary. ``chip`` is a preset name or a design table (its keys
    are ChipDesign fields); ``tco`` overrides TCO inputs."""

    model: str
    chip: str | ChipOverrides | None = None
    input_len: int | None = Field(default=None, ge=1)
    output_len: int | None = Field(default=None, ge=1)
    tco: TcoOverrides | None = None


class QualitySection(UserConfig):
    """``[quality]``: the model-quality guard of a model-shape search."""

    mode: Literal["none", "iso_params", "iso_loss"] = "none"
    tolerance: float | None = Field(default=None, ge=0)
    train_tokens: float | None = Field(default=None, gt=0)


class DimSpec(UserConfig):
    """One dimension as written: ``choices``, or ``low``/``high`` with ``step``, ``log`` or
    ``num``. Values may be unit strings; they are checked against the field they vary."""

    choices: list[float | int | bool | str] | None = None
    low: float | int | str | None = None
    high: float | int | str | None = None
    step: float | int | str | None = None
    log: bool = False
    num: int | None = Field(default=None, ge=1)


class SpaceFile(UserConfig):
    """A search-space file (the module docstring shows one)."""

    study: StudySection
    base: BaseSection
    quality: QualitySection = QualitySection()
    chip: dict[str, DimSpec] = Field(default_factory=dict)
    model: dict[str, DimSpec] = Field(default_factory=dict)
    deploy: dict[str, DimSpec] = Field(default_factory=dict)

    @field_validator("chip", "model", "deploy")
    @classmethod
    def _dims(cls, v: dict[str, DimSpec], info: ValidationInfo) -> dict[str, DimSpec]:
        for name, spec in v.items():
            _to_dim(info.field_name, name, spec)
        return v

    @model_validator(mode="after")
    def _some_dimension(self) -> SpaceFile:
        if not (self.chip or self.model or self.deploy):
            raise ValueError("no dimensions; add a [chip], [model] or [deploy] table")
        return self

    def dims(self) -> tuple[Dim, ...]:
        """The dimensions, in file order within each section (chip, model, deploy)."""
        return tuple(_to_dim(s, n, spec) for s in SECTIONS for n, spec in getattr(self, s).items())


def _to_dim(section: str, name: str, spec: DimSpec) -> Dim:
    """A checked Dim; errors are raised at ``(name, key)`` inside the section."""
    if name not in SECTIONS[section]:
        hint = ", ".join(sorted(SECTIONS[section]))
        raise field_error((name,), f"not a searchable {section} dimension; one of {hint}", name)
    if spec.choices is not None:
        if spec.low is not None or spec.high is not None or spec.step is not None:
            raise field_error((name,), "give choices or low/high, not both")
        if not spec.choices:
            raise field_error((name, "choices"), "choices is empty; give at least one value", [])
        values = [_value(section, name, ("choices", i), v) for i, v in enumerate(spec.choices)]
        return Dim(section, name, choices=tuple(values))
    if spec.low is None or spec.high is None:
        raise field_error((name,), "give low and high (or choices)")
    low, high = _number(section, name, "low", spec.low), _number(section, name, "high", spec.high)
    step = _number(section, name, "step", spec.step) if spec.step is not None else None
    _check_range(name, spec, low, high, step)
    return Dim(section, name, low=low, high=high, step=step, log=spec.log, num=spec.num)


def _check_range(name: str, spec: DimSpec, low: float, high: float, step: float | None) -> None:
    if not low <= high:
        raise field_error((name, "high"), "low must be <= high", spec.high)
    if step is not None and step <= 0:
        raise field_error((name, "step"), "step must be > 0", spec.step)
    if spec.log and low <= 0:
        raise field_error((name, "low"), "log = true needs low > 0", spec.low)


def _value(section: str, name: str, key: tuple, v: Any) -> Any:
    """``v`` checked against the field it varies (type, range, unit), then parsed as before
    (numbers keep their int/float type: it decides suggest_int vs suggest_float)."""
    try:
        _VALUES[section].model_validate({name: v})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        got = "" if err["type"] == "config" else f" (got {v!r})"  # "config": a unit misfit
        raise field_error((name, *key), err["msg"] + got, v) from None
    return parse_value(v, name)


def _number(section: str, name: str, key: str, v: Any) -> float:
    out = _value(section, name, (key,), v)
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        raise field_error((name, key), "give a number (or a unit string)", v)
    return out


def load_space(path: str | Path) -> Space:
    """Parse and check a space file; every error is one line naming the file and the key."""
    f = load_config(path, SpaceFile)
    objectives, directions = parse_objectives(_plain(f.study.objectives), _metrics())
    return Space(
        name=f.study.name or safe_name(Path(path).stem),
        objectives=objectives,
        directions=directions,
        constraints=tuple(parse_constraint(c, _metrics()) for c in f.study.constraints),
        sampler=f.study.sampler or ("tpe" if len(objectives) == 1 else "nsga2"),
        n_trials=f.study.n_trials,
        seed=f.study.seed,
        base=f.base.model_dump(exclude_unset=True),
        dims=f.dims(),
        quality=f.quality.model_dump(exclude_unset=True),
        path=str(path),
    )
