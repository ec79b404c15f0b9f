"""Transformer model shapes: dense MHA/GQA/MQA, MLA, gated or plain MLPs, MoE, sliding windows.

One source of truth for the weight matrices of a layer (:func:`attention_weights`,
:func:`mlp_weights`): the parameter count and the op graph both read it, so a count that
matches the published total also checks the GEMM shapes the simulator costs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from arch.base import Frozen, Source

__all__ = [
    "GQAAttention",
    "MLAAttention",
    "MLPSpec",
    "MoESpec",
    "ModelSpec",
    "Weight",
    "attention_weights",
    "mlp_weights",
]


class GQAAttention(Frozen):
    """Multi-head attention with ``num_kv_heads`` key/value heads (MHA: = heads; MQA: 1)."""

    kind: Literal["gqa"] = "gqa"
    num_heads: int = Field(ge=1)
    num_kv_heads: int = Field(ge=1)
    head_dim: int = Field(ge=1)
    qkv_bias: bool = False
    out_bias: bool = False

    @model_validator(mode="after")
    def _divides(self) -> GQAAttention:
        if self.num_heads % self.num_kv_heads:
            raise ValueError("num_heads must be a multiple of num_kv_heads")
        return self


class MLAAttention(Frozen):
    """DeepSeek multi-head latent attention (arXiv 2405.04434): KV compressed to a latent of
    ``kv_lora_rank`` plus a shared RoPE key of ``qk_rope_head_dim``. Decode uses the absorbed form
    (attention over the latent); prefill expands the latent to per-head K and V."""

    kind: Literal["mla"] = "mla"
    num_heads: int = Field(ge=1)
    q_lora_rank: int = Field(ge=0, description="0 = full-rank query projection")
    kv_lora_rank: int = Field(ge=1)
    qk_nope_head_dim: int = Field(ge=1)
    qk_rope_head_dim: int = Field(ge=0)
    v_head_dim: int = Field(ge=1)


class MLPSpec(Frozen):
    """Feed-forward block: gated (SwiGLU: gate, up, down) or plain (up, act, down)."""

    ffn_size: int = Field(ge=1)
    gated: bool = True
    bias: bool = False


class MoESpec(Frozen):
    """Mixture of experts replacing the MLP in all but the first ``first_dense_layers`` layers."""

    num_experts: int = Field(ge=2)
    top_k: int = Field(ge=1)
    expert_ffn_size: int = Field(ge=1)
    num_shared_experts: int = Field(default=0, ge=0)
    first_dense_layers: int = Field(default=0, ge=0)
    max_nodes_per_token: int = Field(
        default=0,
        ge=0,
        description="node-limited routing: each token's experts lie on at most this many nodes "
        "of the expert-parallel group (0 = unlimited); the dispatch then crosses the scale-out "
        "fabric once per node and is forwarded inside it (kernels.cost.moe_alltoall_time); "
        "DeepSeek-V3: 4 (arXiv 2412.19437, sections 3.2.2 and 4.2)",
    )

    @model_validator(mode="after")
    def _k(self) -> MoESpec:
        if self.top_k > self.num_experts:
            raise ValueError("top_k must be <= num_experts")
        return self


class Weight(Frozen):
    """A weight matrix ``k x n`` (input x output features), ``copies`` times per layer."""

    name: str
    k: int
    n: int
    copies: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        return self.copies * (self.k * self.n + (self.n if self.bias else 0))


class ModelSpec(Frozen):
    name: str
    display_name: str
    config_source: str = Field(description="where the shape comes from (HF config.json, paper)")
    vocab_size: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    num_layers: int = Field(ge=1)
    attention: Annotated[GQAAttention | MLAAttention, Field(discriminator="kind")]
    mlp: MLPSpec
    moe: MoESpec | None = None
    tied_embeddings: bool = False
    lm_head_bias: bool = False
    norm: Literal["rms", "layer"] = "rms"
    rope: bool = Field(default=True, description="rotary embeddings (False: learned positions)")
    norms_per_layer: int = Field(default=2, ge=1, description="GPT-J parallel blocks have 1")
    sliding_window: int = Field(default=0, ge=0, description="tokens; 0 = none")
    sliding_window_every: int = Field(
        default=1, ge=1, description="every n-th layer is sliding-window (1 = all layers)"
    )
    max_context: int = Field(ge=1)
    published_params: float = Field(gt=0)
    published_active_params: float | None = None
    sources: dict[str, Source] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _moe_layers(self) -> ModelSpec:
        if self.moe and self.moe.first_dense_layers > self.num_layers:
            raise ValueError("moe.first_dense_layers exceeds num_layers")
        return self

    @property
    def is_moe(self) -> bool:
        return self.moe is not None

    def is_moe_layer(self, layer: int) -> bool:
        return self.moe is not None and layer >= self.moe.first_dense_layers

    def is_sliding_layer(self, layer: int) -> bool:
        return self.sliding_window > 0 and layer % self.sliding_window_every == 0

    @property
    def num_moe_layers(self) -> int:
        return sum(self.is_moe_layer(i) for i in range(self.num_layers))

    def kv_elements_per_token_per_layer(self) -> int:
        """KV-cache elements one token adds to one layer (whole model, before sharding)."""
        a = self.attention
        if isinstance(a, MLAAttention):
            return a.kv_lora_rank + a.qk_rope_head_dim
        return 2 * a.num_kv_heads * a.head_dim

    def embedding_params(self) -> int:
        head = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        return (
            self.vocab_size * self.hidden_size
            + head
            + (self.vocab_size if self.lm_head_bias else 0)
        )

    def norm_params_per_layer(self) -> int:
        per = self.hidden_size * (2 if self.norm == "layer" else 1)
        extra = 0
        a = self.attention
        if isinstance(a, MLAAttention):  # q_a and kv_a layernorms inside MLA
            extra = (a.q_lora_rank if a.q_lora_rank else 0) + a.kv_lora_rank
        return per * self.norms_per_layer + extra

    def layer_params(self, layer: int, *, active: bool = False) -> int:
        attn = sum(w.params for w in attention_weights(self))
        mlp = sum(w.params for w in mlp_weights(self, layer, active=active))
        return attn + mlp + self.norm_params_per_layer()

    def total_params(self, *, active: bool = False) -> int:
        final_norm = self.hidden_size * (2 if self.norm == "layer" else 1)
        layers = sum(self.layer_params(i, active=active) for i in range(self.num_layers))
        return layers + self.embedding_params() + final_norm


def attention_weights(model: ModelSpec) -> list[Weight]:
    """Weight matrices of one attention block (whole layer, before tensor parallelism)."""
    a, h = model.attention, model.hidden_size
    if isinstance(a, GQAAttention):
        qkv = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim
        return [
            Weight(name="qkv_proj", k=h, n=qkv, bias=a.qkv_bias),
            Weight(name="o_proj", k=a.num_heads * a.head_dim, n=h, bias=a.out_bias),
        ]
    qk_head = a.qk_nope_head_dim + a.qk_rope_head_dim
    q = (
        [
            Weight(name="q_a_proj", k=h, n=a.q_lora_rank),
            Weight(name="q_b_proj", k=a.q_lora_rank, n=a.num_heads * qk_head),
        ]
        if a.q_lora_rank
        else [Weight(name="q_proj", k=h, n=a.num_heads * qk_head)]
    )
    return [
        *q,
        Weight(name="kv_a_proj", k=h, n=a.kv_lora_rank + a.qk_rope_head_dim),
        Weight(
            name="kv_b_proj", k=a.kv_lora_rank, n=a.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
        ),
        Weight(name="o_proj", k=a.num_heads * a.v_head_dim, n=h),
    ]


def _ffn(name: str, h: int, ffn: int, gated: bool, bias: bool, copies: int = 1) -> list[Weight]:
    up = Weight(
        name=f"{name}.gate_up" if gated else f"{name}.up",
        k=h,
        n=ffn * (2 if gated else 1),
        copies=copies,
        bias=bias,
    )
    return [up, Weight(name=f"{name}.down", k=ffn, n=h, copies=copies, bias=bias)]


def mlp_weights(model: ModelSpec, layer: int, *, active: bool = False) -> list[Weight]:
    """Weight matrices of one layer's feed-forward block. ``active``: only the experts one token
    uses (top-k routed plus shared), for the activated-parameter count."""
    h, m = model.hidden_size, model.mlp
    if not model.is_moe_layer(layer):
        return _ffn("mlp", h, m.ffn_size, m.gated, m.bias)
    moe = model.moe
    assert moe is not None
    routed = moe.top_k if active else moe.num_experts
    out = [Weight(name="router", k=h, n=moe.num_experts)]
    out += _ffn("experts", h, moe.expert_ffn_size, m.gated, m.bias, copies=routed)
    if moe.num_shared_experts:
        out += _ffn("shared", h, moe.expert_ffn_size * moe.num_shared_experts, m.gated, m.bias)
    return out
