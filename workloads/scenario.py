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

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from arch.base import ConfigError, Frozen, format_validation_error, load_toml
from arch.efficiency import FACTORS
from workloads.quant import QuantSpec

__all__ = ["PredictScenario", "ServingSection", "load_scenario"]


class ParallelSection(Frozen):
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    dp: int | None = Field(default=None, ge=1)


class SpecSection(Frozen):
    k: int = Field(ge=1)
    acceptance: list[float]
    draft: str = "mtp"


class LoraSection(Frozen):
    adapters: int = Field(ge=1)
    rank: int = Field(ge=1)


class ServingSection(Frozen):
    rate: float | None = Field(default=None, gt=0)
    requests: int | None = Field(default=None, ge=1)
    input_len: int | str | None = None
    output_len: int | str | None = None
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
    seed: int | None = None
    spec: SpecSection | None = None
    lora: LoraSection | None = None


class PredictScenario(Frozen):
    system: str | None = None
    chip: str | None = None
    count: int | None = Field(default=None, ge=1)
    model: str | None = None
    quant: str | QuantSpec | None = None
    batch: int | str | None = None
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


def load_scenario(path: Path) -> PredictScenario:
    raw = load_toml(path)
    base = path.parent
    for key in ("chip", "model"):  # relative file paths are relative to the scenario file
        value = raw.get(key)
        if isinstance(value, str) and value.endswith(".toml") and not Path(value).is_absolute():
            raw[key] = str(base / value)
    try:
        scenario = PredictScenario(**raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    unknown = set(scenario.efficiency) - set(FACTORS)
    if unknown:
        raise ConfigError(
            f"{path}: efficiency.{sorted(unknown)[0]}: unknown factor; known: {', '.join(FACTORS)}"
        )
    return scenario
