"""Build the op graph of one prefill or decode step, as one chip of a replica executes it.

Shapes are per chip after sharding. Conventions (each a modelling choice, stated once here):

* The residual stream, GEMM outputs and collective payloads are 16-bit (FP8/FP4 pipelines quantize
  GEMM *inputs*, fused into the preceding op); GEMM inputs use the activation format.
* Norm + residual add are one fused kernel; RoPE is fused with the KV-cache write.
* Prefill computes logits for the last token of each sequence only.
* Decode attention reads the whole KV cache once per step (flash-decoding); prefill attention reads
  Q/K/V once and writes O (flash attention), causal FLOPs counted exactly.
* MoE weight bytes per step count only the experts the batch touches: the expected number of
  distinct experts among the routed draws (uniform, or Zipf-skewed with ``routing_skew``).
* MoE expert layers are costed on their **busiest** expert-parallel rank
  (:func:`workloads.routing.busiest_rank`): its token-expert pairs (the mean times the expected
  max/mean from multinomial sampling and skew), the experts it touches, and the all-to-all bytes
  it receives. The experts run as one grouped GEMM, ``groups`` = touched experts, ``m`` = tokens
  per touched expert, so the kernels pad each expert's M to the chip's tile rows and charge the
  small-M utilization of the tile model. (The row is the busiest rank's, so its energy is an
  upper bound by the imbalance factor.)
* An all-to-all row of a MoE layer carries its routing in the otherwise unused shape columns,
  read by :func:`kernels.cost.moe_alltoall_time`: ``k`` = experts per token (top-k), ``n`` =
  routed experts, ``m`` = the node limit (``max_nodes_per_token``, 0 = none); ``comm_bytes`` is
  the nominal payload, one copy per (token, expert) pair.
* **Two-batch overlap** (``moe_overlap``): each MoE layer runs as two micro-batches of half the
  sequences, the all-to-all of one hidden under the compute of the other (DeepSeek-V3 technical
  report, arXiv 2412.19437, section 3.4.1: "two micro-batches with similar computational
  workloads, overlapping the attention and MoE of one micro-batch with the dispatch and combine
  of another"; section 3.4.2 does the same in decode). The layer is emitted as both micro-batches
  (each re-reads the weights and launches its own kernels) and its last all-to-all row's
  ``groups`` column holds the number of rows before it, back to the layer's first, under whose
  compute its all-to-alls may hide (:func:`kernels.cost.hide_overlapped_comm`): the layer then
  takes max(compute, all-to-all) plus what cannot overlap (TP all-reduces, launch overheads).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from arch.chip import PRECISION_BITS
from workloads.capacity import stage_of_layers
from workloads.model import GQAAttention, MLAAttention, ModelSpec
from workloads.ops import OpGraph, OpKind, precision_code
from workloads.parallel import Parallelism
from workloads.quant import QuantSpec
from workloads.routing import busiest_rank, expected_distinct_experts

__all__ = ["build_graph", "expected_distinct_experts"]

IO_BYTES = 2.0  # residual stream / GEMM outputs / collectives: 16-bit


class _Builder:
    """Accumulates rows; knows the step's shapes so each emitter stays short."""

    def __init__(
        self,
        model: ModelSpec,
        par: Parallelism,
        quant: QuantSpec,
        *,
        phase: str,
        batch: int,
        seq: int,
        context: int,
        skew: float,
        moe_overlap: bool = False,
        attention_bits: int = 8,
    ) -> None:
        self.model, self.par, self.q = model, par, quant
        self.moe_overlap = moe_overlap
        self.phase, self.batch, self.seq, self.context, self.skew = (
            phase,
            batch,
            seq,
            context,
            skew,
        )
        self.tokens = batch * seq  # tokens this replica processes this step
        self.rows: list[dict] = []
        self.prec = precision_code(quant.gemm_precision)
        # attention runs at the activations' format, but never below the engine's attention
        # width: 8 bits where its kernels take FP8 (TRT-LLM serves FP4 checkpoints with FP8
        # context attention, as the MLPerf B200 rows in the validation data state), 16 where
        # they dequantize an FP8 cache to BF16 first
        attn = quant.a.compute
        floor = "fp8" if attention_bits <= 8 else "bf16"
        self.attn_prec = precision_code(attn if PRECISION_BITS[attn] >= attention_bits else floor)

    # -- primitives ---------------------------------------------------------------------------
    def row(self, name: str, kind: OpKind, **cols: float) -> None:
        cols.setdefault("kernels", 1.0)
        cols.setdefault("group", 1)
        self.rows.append({"name": name, "kind": int(kind), **cols})

    def gemm(
        self,
        name: str,
        m: float,
        k: float,
        n: float,
        *,
        groups: float = 1.0,
        bias: bool = False,
        kind: OpKind = OpKind.GEMM,
    ) -> None:
        w = self.q.w
        weight_elems = groups * k * n
        vflops = 2.0 * weight_elems if w.weight_only else 0.0  # dequantize each weight once
        self.row(
            name,
            kind,
            m=m,
            n=n,
            k=k,
            groups=groups,
            precision=self.prec,
            flops=2.0 * m * n * k * groups,
            vflops=vflops,
            weight_bytes=weight_elems * w.bytes_per_element + (groups * n * 2 if bias else 0),
            act_bytes=groups * m * (k * self.q.a.bytes_per_element + n * IO_BYTES),
        )

    def elementwise(self, name: str, elems: float, passes: float, flops_per_elem: float) -> None:
        self.row(
            name,
            OpKind.ELEMENTWISE,
            vflops=elems * flops_per_elem,
            act_bytes=elems * passes * IO_BYTES,
        )

    def collective(self, name: str, kind: OpKind, payload: float, group: int) -> None:
        if group > 1:
            self.row(name, kind, comm_bytes=payload, group=group)

    # -- blocks -------------------------------------------------------------------------------
    def attention_block(self, sliding: bool) -> None:
        m, tp = self.model, self.par.tp
        self.elementwise("attn_norm", self.tokens * m.hidden_size, 4, 5)
        if isinstance(m.attention, MLAAttention):
            self._mla(m.attention, sliding)
        else:
            self._gqa(m.attention, sliding)
        self.collective(
            "attn_allreduce", OpKind.ALLREDUCE, self.tokens * m.hidden_size * IO_BYTES, tp
        )

    def _ctx(self, sliding: bool) -> tuple[float, float]:
        """(keys each decode query sees, keys before the new tokens) under a sliding window."""
        w = self.model.sliding_window if sliding else 0
        before = min(self.context, w) if w else self.context
        return before + self.seq, before

    def _gqa(self, a: GQAAttention, sliding: bool) -> None:
        tp, h = self.par.tp, self.model.hidden_size
        heads, kv = a.num_heads // tp, self.par.kv_heads_per_chip(self.model)
        T, d = self.tokens, a.head_dim
        self.gemm("qkv_proj", T, h, (heads + 2 * kv) * d, bias=a.qkv_bias)
        if self.model.rope:
            self.elementwise("rope", T * (heads + kv) * d, 2, 6)
        self._attention(heads, d, d, kv_elems=2 * kv * d, sliding=sliding)
        self.gemm("o_proj", T, heads * d, h, bias=a.out_bias)

    def _mla(self, a: MLAAttention, sliding: bool) -> None:
        tp, h, T = self.par.tp, self.model.hidden_size, self.tokens
        heads, qk = a.num_heads // tp, a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank:
            self.gemm("q_a_proj", T, h, a.q_lora_rank)
            self.gemm("q_b_proj", T, a.q_lora_rank, heads * qk)
        else:
            self.gemm("q_proj", T, h, heads * qk)
        self.gemm("kv_a_proj", T, h, a.kv_lora_rank + a.qk_rope_head_dim)
        latent = a.kv_lora_rank + a.qk_rope_head_dim
        if self.phase == "decode":  # absorbed: attend over the latent, per-head up-projections
            self.gemm(
                "q_absorb",
                T,
                a.qk_nope_head_dim,
                a.kv_lora_rank,
                groups=heads,
                kind=OpKind.GROUPED_GEMM,
            )
            self._attention(heads, latent, a.kv_lora_rank, kv_elems=latent, sliding=sliding)
            self.gemm(
                "v_absorb", T, a.kv_lora_rank, a.v_head_dim, groups=heads, kind=OpKind.GROUPED_GEMM
            )
        else:  # expand the latent to per-head K/V, then ordinary attention
            self.gemm("kv_b_proj", T, a.kv_lora_rank, heads * (a.qk_nope_head_dim + a.v_head_dim))
            self._attention(heads, qk, a.v_head_dim, kv_elems=latent, sliding=sliding)
        self.gemm("o_proj", T, heads * a.v_head_dim, h)

    def _attention(self, heads: int, d_qk: int, d_v: int, *, kv_elems: int, sliding: bool) -> None:
        """``kv_elems``: KV-cache elements per token per layer on this chip."""
        B, S = self.batch, self.seq
        keys, before = self._ctx(sliding)
        kvb = self.q.kv.bytes_per_element
        if self.phase == "decode":
            pairs = B * S * keys  # (query, key) pairs
            kind, kv_read = OpKind.ATTN_DECODE, B * keys * kv_elems * kvb
        else:
            w = self.model.sliding_window if sliding else 0
            causal = S * (S + 1) / 2 if not w or w >= S else S * w - w * (w - 1) / 2
            pairs = B * (S * before + causal)
            kind, kv_read = OpKind.ATTN_PREFILL, B * before * kv_elems * kvb
        kv_write = B * S * kv_elems * kvb
        qo = B * S * heads * (d_qk + d_v) * IO_BYTES
        flops = 2.0 * pairs * heads * (d_qk + d_v)
        self.row(
            f"attention_{self.phase}",
            kind,
            m=B * S,
            n=keys,
            k=d_qk,
            groups=heads,
            precision=self.attn_prec,
            flops=flops,
            vflops=5.0 * pairs * heads,
            kv_bytes=kv_read + kv_write,
            act_bytes=qo,
        )

    def mlp_block(self, layer: int) -> None:
        m, tp = self.model, self.par.tp
        self.elementwise("mlp_norm", self.tokens * m.hidden_size, 4, 5)
        if m.is_moe_layer(layer):
            self._moe()
        else:
            self._ffn("mlp", m.mlp.ffn_size // tp, groups=1.0, tokens=self.tokens)
        self.collective(
            "mlp_allreduce", OpKind.ALLREDUCE, self.tokens * m.hidden_size * IO_BYTES, tp
        )

    def _ffn(self, name: str, ffn: float, *, groups: float, tokens: float) -> None:
        h, mlp = self.model.hidden_size, self.model.mlp
        kind = OpKind.GROUPED_GEMM if groups > 1 else OpKind.GEMM
        width = ffn * (2 if mlp.gated else 1)
        self.gemm(f"{name}.up", tokens / groups, h, width, groups=groups, bias=mlp.bias, kind=kind)
        self.elementwise(f"{name}.act", tokens * ffn, 3 if mlp.gated else 2, 8)
        self.gemm(f"{name}.down", tokens / groups, ffn, h, groups=groups, bias=mlp.bias, kind=kind)

    def _moe(self) -> None:
        moe, par, h = self.model.moe, self.par, self.model.hidden_size
        assert moe is not None
        ep_tokens = self.tokens * par.ep_replicas  # the EP group's replicas' tokens
        load = busiest_rank(moe.num_experts, moe.top_k, ep_tokens, self.skew, par.ep)
        routed = load.imbalance * load.mean_pairs  # token-expert pairs on the busiest chip
        self.gemm("router", self.tokens, h, moe.num_experts)
        self._alltoall("moe_dispatch", load.imbalance, self.q.a.bytes_per_element)
        self._ffn(
            "experts",
            moe.expert_ffn_size / par.expert_tp,
            groups=max(1.0, min(moe.num_experts / par.ep, load.touched)),
            tokens=routed,
        )
        if moe.num_shared_experts:
            self._ffn(
                "shared_expert",
                moe.num_shared_experts * moe.expert_ffn_size / par.expert_tp,
                groups=1.0,
                tokens=self.tokens,
            )
        self._alltoall("moe_combine", load.imbalance, IO_BYTES)

    def _alltoall(self, name: str, imbalance: float, bytes_per_elem: float) -> None:
        """Dispatch or combine over the EP group (attention-DP only; expert-TP layers combine
        with the TP all-reduce): the busiest chip's nominal payload, one copy per (token,
        expert) pair, and the routing the kernel needs to split it over the fabrics."""
        moe, par = self.model.moe, self.par
        assert moe is not None
        if not par.attention_dp:
            return
        payload = self.tokens * moe.top_k * self.model.hidden_size * bytes_per_elem * imbalance
        self.row(name, OpKind.ALLTOALL, comm_bytes=payload, group=par.ep, k=moe.top_k,
                 n=moe.num_experts, m=moe.max_nodes_per_token)  # fmt: skip

    # -- two-batch overlap --------------------------------------------------------------------
    def layer(self, sliding: bool, layer: int) -> None:
        """One layer's ops; a MoE layer under two-batch overlap as two micro-batches of half
        the sequences, its all-to-alls hidden under the pair's compute (module docstring)."""
        if not self._two_batch(layer):
            self.attention_block(sliding)
            self.mlp_block(layer)
            return
        first, batch = len(self.rows), self.batch
        for part in (batch - batch // 2, batch // 2):
            self.batch, self.tokens = part, part * self.seq
            self.attention_block(sliding)
            self.mlp_block(layer)
        self.batch, self.tokens = batch, batch * self.seq
        last = max(i for i in range(first, len(self.rows))
                   if self.rows[i]["kind"] == int(OpKind.ALLTOALL))  # fmt: skip
        self.rows[last]["groups"] = last - first

    def _two_batch(self, layer: int) -> bool:
        """Two micro-batches need two sequences and an all-to-all to hide."""
        return (
            self.moe_overlap
            and self.model.is_moe_layer(layer)
            and self.par.attention_dp
            and self.batch >= 2
        )

    def head(self) -> None:
        m, tp = self.model, self.par.tp
        B = self.batch
        self.elementwise("final_norm", B * m.hidden_size, 3, 5)
        self.gemm("lm_head", B, m.hidden_size, m.vocab_size / tp, bias=m.lm_head_bias)
        self.collective("logits_allgather", OpKind.ALLGATHER, B * m.vocab_size * 4.0, tp)
        self.row(
            "sampling",
            OpKind.SAMPLING,
            vflops=5.0 * B * m.vocab_size,
            act_bytes=2 * B * m.vocab_size * 4.0,
        )


def _layer_groups(model: ModelSpec, par: Parallelism, quant: QuantSpec) -> Counter:
    """(stage, first layer of its kind, is_moe, is_sliding) -> layer count."""
    groups: Counter = Counter()
    first: dict[tuple, int] = {}
    for layer, stage in enumerate(stage_of_layers(model, par, quant)):
        key = (stage, model.is_moe_layer(layer), model.is_sliding_layer(layer))
        first.setdefault(key, layer)
        groups[(stage, first[key], *key[1:])] += 1
    return groups


def build_graph(
    model: ModelSpec,
    *,
    phase: Literal["prefill", "decode"],
    batch: int,
    seq_len: int,
    context_len: int,
    parallelism: Parallelism,
    quant: QuantSpec,
    routing_skew: float = 0.0,
    moe_overlap: bool = False,
    attention_bits: int = 8,
) -> OpGraph:
    """Ops of one step of one replica, per chip, all pipeline stages (``stage`` column).

    prefill: ``batch`` sequences of ``seq_len`` new tokens after ``context_len`` cached ones
    (0 for a plain prefill, > 0 for a chunk of chunked prefill). decode: ``batch`` sequences,
    ``seq_len`` new tokens each (1, or k+1 when verifying k speculative tokens), attending over
    ``context_len`` cached tokens. ``routing_skew``: Zipf exponent of MoE routing (0 =
    uniform); ``moe_overlap``: two-batch overlap of MoE layers (module docstring);
    ``attention_bits``: the narrowest format the serving engine's attention kernels compute in.
    """
    if batch < 1 or seq_len < 1 or context_len < 0:
        raise ValueError("batch and seq_len must be >= 1 and context_len >= 0")
    b = _Builder(
        model,
        parallelism,
        quant,
        phase=phase,
        batch=batch,
        seq=seq_len,
        context=context_len,
        skew=routing_skew,
        moe_overlap=moe_overlap,
        attention_bits=attention_bits,
    )
    b.row(
        "embed",
        OpKind.EMBED,
        act_bytes=2 * b.tokens * model.hidden_size * IO_BYTES,
        layer=-1,
        stage=0,
    )
    groups = _layer_groups(model, parallelism, quant)
    for (stage, layer, _moe, sliding), count in sorted(groups.items()):
        start = len(b.rows)
        b.layer(sliding, layer)
        for r in b.rows[start:]:
            r.update(count=count, layer=layer, stage=stage)
    for stage in range(parallelism.pp - 1):
        b.row(
            "pp_send",
            OpKind.P2P,
            comm_bytes=b.tokens * model.hidden_size * IO_BYTES,
            group=2,
            stage=stage,
            layer=-1,
        )
    start = len(b.rows)
    b.head()
    for r in b.rows[start:]:
        r.update(layer=-1, stage=parallelism.pp - 1)
    for r in b.rows:
        r.setdefault("count", 1)
    meta = {
        "phase": phase,
        "batch": batch,
        "seq_len": seq_len,
        "context_len": context_len,
        "model": model.name,
        "num_layers": model.num_layers,
        "quant": quant.name,
        "parallelism": parallelism.model_dump(),
    }
    return OpGraph.from_rows(b.rows, meta)
