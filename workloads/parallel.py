"""Parallelism: tensor (TP), pipeline (PP), expert (EP) and data (DP) parallel degrees.

One replica spans ``tp * pp`` chips; ``dp`` replicas split the system. Dense layers are
tensor-parallel over ``tp``. MoE layers shard experts over ``ep`` chips:

* ``ep <= tp`` (``tp % ep == 0``): experts are spread inside the TP group, each expert further
  split over ``tp // ep`` chips; the usual TP all-reduce combines the results.
* ``ep > tp``: **attention-DP** (DeepSeek-style): attention runs per replica (TP inside it) and
  the MoE layers shard the experts over groups of ``ep`` chips, i.e. ``ep // tp`` replicas of
  one pipeline stage (``ep`` a multiple of ``tp`` that divides the stage's ``tp * dp`` chips;
  ``ep == tp * dp`` is one EP group over all replicas), with all-to-all dispatch and combine
  over the group. Each chip holds ``experts / ep`` whole experts.

KV heads: ``tp`` must divide ``num_kv_heads`` or be a multiple of it (heads are then replicated,
which costs KV memory); anything else cannot be sharded.
"""

from __future__ import annotations

from pydantic import Field

from arch.base import ConfigError, Frozen
from workloads.model import GQAAttention, ModelSpec

__all__ = ["Parallelism"]


class Parallelism(Frozen):
    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    dp: int = Field(default=1, ge=1)

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def attention_dp(self) -> bool:
        return self.ep > self.tp

    @property
    def ep_replicas(self) -> int:
        """Replicas whose tokens one expert-parallel group serves (1 unless attention-DP)."""
        return self.ep // self.tp if self.attention_dp else 1

    @property
    def expert_tp(self) -> int:
        """Chips one expert's FFN is split over."""
        return 1 if self.attention_dp else self.tp // self.ep

    def kv_heads_per_chip(self, model: ModelSpec) -> int:
        a = model.attention
        if not isinstance(a, GQAAttention):
            return 1
        return max(1, a.num_kv_heads // self.tp)

    def validate_for(self, model: ModelSpec, chips: int) -> None:
        """Raise ConfigError (one line, saying why) if this cannot run ``model`` on ``chips``."""
        if self.chips != chips:
            raise ConfigError(
                f"parallelism tp*pp*dp = {self.tp}*{self.pp}*{self.dp} = {self.chips} "
                f"must equal the system's {chips} chips; adjust --tp/--pp/--dp"
            )
        a = model.attention
        if a.num_heads % self.tp:
            raise ConfigError(f"--tp {self.tp} does not divide {model.name}'s {a.num_heads} heads")
        if isinstance(a, GQAAttention):
            kv = a.num_kv_heads
            if kv % self.tp and self.tp % kv:
                raise ConfigError(
                    f"--tp {self.tp} neither divides nor is a multiple of {model.name}'s "
                    f"{kv} KV heads; use a TP that divides {kv} or a multiple of it"
                )
        if self.pp > model.num_layers:
            raise ConfigError(f"--pp {self.pp} exceeds {model.name}'s {model.num_layers} layers")
        self._validate_ep(model)

    def _validate_ep(self, model: ModelSpec) -> None:
        if self.ep == 1:
            return
        if model.moe is None:
            raise ConfigError(f"--ep {self.ep}: {model.name} has no experts; use --ep 1")
        if model.moe.num_experts % self.ep:
            raise ConfigError(
                f"--ep {self.ep} does not divide {model.name}'s {model.moe.num_experts} experts"
            )
        if self.ep <= self.tp:
            if self.tp % self.ep:
                raise ConfigError(
                    f"--ep {self.ep} must divide --tp {self.tp} (or, for attention-DP, be a "
                    f"multiple of it that divides tp*dp = {self.tp * self.dp})"
                )
        elif self.ep % self.tp or (self.tp * self.dp) % self.ep:
            raise ConfigError(
                f"--ep {self.ep} must divide --tp {self.tp}, or for attention-DP be a multiple "
                f"of it that divides a stage's tp*dp = {self.tp * self.dp} chips"
            )
