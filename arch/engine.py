"""Serving engines as data: the software a prediction assumes runs the model.

The same silicon under TensorRT-LLM, vLLM, SGLang or JetStream differs by fixed cost per forward
pass, kernel maturity, batch cap and how attention reads the cache. Those that are efficiency
factors (``step_overhead_s``, ``kernel_scale``, ``kernel_overhead_s``) live with the other factors
in ``presets/efficiency`` under ``engine:NAME`` tables (:func:`arch.efficiency.efficiency_for`
applies them); this module holds the rest, from ``presets/engines.toml``:

* ``max_batch``: the engine's cap on sequences in flight per replica (None: memory decides);
* ``attention_bits``: the narrowest format its attention kernels compute in (8: FP8 attention
  where the model's activations are FP8 or narrower; 16: an FP8 cache is dequantized first);
* ``padded_cache``: decode attention reads each sequence's whole preallocated cache slot
  (input + output length) at every step, not the tokens written so far;
* the engine each chip family is assumed to run when none is named.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from arch.base import ConfigError, Frozen, load_toml

__all__ = ["ENGINES_FILE", "KERNELS_ONLY", "Engine", "engine_names", "resolve_engine"]

ENGINES_FILE = Path(__file__).parent / "presets" / "engines.toml"


class Engine(Frozen):
    name: str
    description: str = ""
    max_batch: int | None = None
    max_batch_source: str = ""
    padded_cache: bool = False
    padded_cache_source: str = ""
    attention_bits: int = 16
    attention_source: str = ""
    assumed: bool = False  # the family's default, not named by the user


# no serving engine: the kernels alone, as a microbenchmark times them (no engine factors, no cap)
KERNELS_ONLY = Engine(name="", description="the kernels alone, no serving engine",
                      attention_bits=8)  # fmt: skip


@lru_cache(maxsize=1)
def _table() -> dict:
    return load_toml(ENGINES_FILE)


def engine_names() -> tuple[str, ...]:
    return tuple(_table()["engines"])


def resolve_engine(name: str | None, family: str) -> Engine:
    """The named engine, or (``None``) the one ``family`` is assumed to run."""
    table = _table()
    assumed = name is None
    if assumed:
        name = table["default"].get(family, "vendor")
    if name not in table["engines"]:
        raise ConfigError(f"--engine {name!r}: unknown; choose one of {', '.join(engine_names())}")
    return Engine(name=name, assumed=assumed, **table["engines"][name])
