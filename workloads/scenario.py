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
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from arch.base import ConfigError, Frozen, format_validation_error, load_toml
from arch.efficiency import FACTORS
from workloads.quant import QuantSpec

__all__ = ["PredictScenario", "load_scenario"]


class ParallelSection(Frozen):
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    dp: int | None = Field(default=None, ge=1)


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
