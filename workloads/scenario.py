"""Scenario files (TOML): what to run, beyond the CLI flags. CLI flags override file values.

```toml
system = "h100-sxm:8"            # or chip = "my_chip.toml" with count = 8
model = "llama-3.1-70b"          # or a path to a model TOML
batch = 64                       # or "max"
input_len = 2048
output_len = 256
routing_skew = 0.0               # Zipf exponent of MoE routing (0 = uniform)
[quant]                          # or quant = "fp8"
weights = "nvfp4"
activations = "fp8"
kv_cache = "fp8"
[parallelism]
tp = 8
[efficiency]                     # override named factors (recorded as source "user")
memory = 0.9
[serving]                        # xpusim serve only; CLI flags override
rate = 20.0                      # requests/s (Poisson; arrivals = "gamma" with cv, "closed" with
requests = 5000                  #   users, or "trace" with trace = "file.csv")
input_len = "lognormal:1024:512" # an integer, uniform:LO:HI, lognormal:MEAN:STD or file:PATH
output_len = 256
scheduler = "chunked"            # static, continuous, chunked, disaggregated
max_batch = 256
max_tokens = 8192
[serving.spec]                   # speculative decoding (optional)
k = 3
acceptance = [0.8, 0.6, 0.4]
draft = "mtp"                    # or a model preset run on the same chips
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from arch.base import UserConfig, field_error, load_config
from arch.efficiency import FACTORS
from workloads.quant import QuantSpec

__all__ = ["PredictScenario", "ServingSection", "load_predict_scenario"]

_PD_RATIO = re.compile(r"^\s*([0-9]+)\s*:\s*([0-9]+)\s*$")
Length = Annotated[int, Field(ge=1)] | str  # tokens, or a distribution spec parsed by sim.traffic


class ParallelSection(UserConfig):
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    dp: int | None = Field(default=None, ge=1)


class SpecSection(UserConfig):
    k: int = Field(ge=1)
    acceptance: list[Annotated[float, Field(ge=0, le=1)]]
    draft: str = "mtp"

    @model_validator(mode="after")
    def _one_rate_per_position(self) -> SpecSection:
        if len(self.acceptance) != self.k:
            msg = f"give k = {self.k} rates, one per drafted position (got {len(self.acceptance)})"
            raise field_error(("acceptance",), msg, self.acceptance)
        return self


class LoraSection(UserConfig):
    adapters: int = Field(ge=1)
    rank: int = Field(ge=1)


class ServingSection(UserConfig):
    rate: float | None = Field(default=None, gt=0)
    requests: int | None = Field(default=None, ge=1)
    input_len: Length | None = None
    output_len: Length | None = None
    arrivals: Literal["poisson", "gamma", "closed", "trace"] = "poisson"
    cv: float = Field(default=2.0, gt=0)
    users: int | None = Field(default=None, ge=1)
    trace: str | None = None
    scheduler: str | None = None
    max_batch: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    router: Literal["round_robin", "least_outstanding"] = "round_robin"
    preemption: Literal["recompute", "swap"] = "recompute"
    prefix_hit_rate: float = Field(default=0.0, ge=0, lt=1)
    pd_ratio: str = "1:1"
    seed: int | None = Field(default=None, ge=0)
    spec: SpecSection | None = None
    lora: LoraSection | None = None

    @field_validator("trace")
    @classmethod
    def _trace_beside_the_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        """A relative trace path is relative to the scenario file, not to the shell."""
        return _beside(v, info)

    @field_validator("input_len", "output_len")
    @classmethod
    def _length_file_beside_the_file(cls, v: int | str | None, info: ValidationInfo):
        """``file:PATH`` with a relative PATH is relative to the scenario file."""
        if isinstance(v, str) and v.strip().startswith("file:"):
            return "file:" + str(_beside(v.strip().removeprefix("file:"), info))
        return v

    @field_validator("pd_ratio")
    @classmethod
    def _pd_ratio(cls, v: str) -> str:
        m = _PD_RATIO.match(v)
        if not m or min(int(m[1]), int(m[2])) < 1:
            raise ValueError(f"give P:D with positive integers, e.g. 1:3 (got {v!r})")
        return v


class PredictScenario(UserConfig):
    """A scenario file's values; CLI flags override them (None: not set in the file)."""

    system: str | None = None
    chip: str | None = None
    count: int | None = Field(default=None, ge=1)
    model: str | None = None
    quant: str | QuantSpec | None = None
    engine: str | None = None
    moe_overlap: bool = False
    batch: int | Literal["max"] | None = None
    tpot_slo_ms: float | None = Field(default=None, gt=0)
    input_len: int | None = Field(default=None, ge=1)
    output_len: int | None = Field(default=None, ge=1)
    routing_skew: float = Field(default=0.0, ge=0)
    parallelism: ParallelSection = ParallelSection()
    efficiency: dict[str, float] = Field(default_factory=dict)
    serving: ServingSection = ServingSection()

    def system_spec(self) -> str | None:
        if self.chip:
            return f"{self.chip}:{self.count or 1}"
        return self.system

    @field_validator("chip", "model")
    @classmethod
    def _beside_the_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        """A relative ``.toml`` path is relative to the scenario file, not to the shell."""
        return _beside(v, info) if v and v.endswith(".toml") else v

    @field_validator("batch", mode="before")
    @classmethod
    def _batch(cls, v: object) -> object:
        if v is None or v == "max":
            return v
        n = int(v) if isinstance(v, str) and v.strip().isdigit() else v
        if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
            return n
        raise ValueError(f"give a positive integer or 'max' (got {v!r})")

    @field_validator("efficiency")
    @classmethod
    def _known_factors(cls, v: dict[str, float]) -> dict[str, float]:
        """Named factors only; rates > 0 (a zero rate would divide by zero), times and
        fractions >= 0."""
        for name, value in v.items():
            if name not in FACTORS:
                raise field_error((name,), f"unknown factor; known: {', '.join(FACTORS)}", name)
            if value < 0 or (value == 0 and not name.endswith(("_s", "_fraction"))):
                raise field_error((name,), "must be > 0 (>= 0 for times and fractions)", value)
        return v


def _beside(path: str | None, info: ValidationInfo) -> str | None:
    """``path`` relative to the folder of the file being read (``info.context["dir"]``, set by
    :func:`arch.base.load_config`); absolute paths and values read elsewhere unchanged."""
    folder = (info.context or {}).get("dir")
    if path and folder is not None and not Path(path).is_absolute():
        return str(Path(folder) / path)
    return path


def load_predict_scenario(path: str | Path) -> PredictScenario:
    """Read a ``predict``/``serve`` scenario file (one-line ConfigError on any problem)."""
    return load_config(path, PredictScenario)
