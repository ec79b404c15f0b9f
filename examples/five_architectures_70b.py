"""Five architectures, one model: Llama-3.1-70B on GPUs (H100, B200), an SRAM LPU (Groq), a
wafer (CS-3), a dataflow chip (SN40L) and a TPU (v6e).

1. Batch 1: per-user speed, each system mapped the way that is fastest for one user, and what
   a token's time is spent on (compute, memory, interconnect, fixed latency).
2. A throughput target: the fleets of ``tco_70b_gpu_lpu_wafer.toml`` (200k output tokens/s at
   50 tokens/s per user), sized and priced.

    python examples/five_architectures_70b.py
"""

from pathlib import Path

from explore.api.predict import predict
from explore.tco import tco

SYSTEMS = [  # system, quantization as the vendor serves the model
    ("h100-sxm:8", "fp8"),
    ("b200:8", "fp8"),
    ("groq-lpu:576", "fp8"),
    ("cerebras-wse3:4", "bf16"),
    ("sambanova-sn40l:16", "bf16"),
    ("tpu-v6e:8", "int8"),
]
SCENARIO = Path(__file__).with_name("tco_70b_gpu_lpu_wafer.toml")


def batch_one() -> None:
    print("Batch 1, 1024 in / 256 out: per-user speed (mapping chosen for one user)")
    print(f"{'system':20} {'mapping':16} {'tok/s/user':>10} {'TTFT ms':>8}  decode time share")
    for system, quant in SYSTEMS:
        r = predict(system, "llama-3.1-70b", quant, batch=1, input_len=1024, output_len=256)
        p = r.config["parallelism"]
        shares = r.bound_shares["decode"]
        split = ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items() if v >= 0.005)
        print(f"{system:20} TP{p['tp']} PP{p['pp']} DP{p['dp']:<6} "
              f"{r.tokens_per_s_per_user:10.1f} {r.ttft_s * 1e3:8.1f}  {split}")  # fmt: skip


def at_target() -> None:
    print("\n200k output tokens/s at 50 tokens/s per user (xpusim tco "
          f"examples/{SCENARIO.name})")  # fmt: skip
    print(f"{'fleet':22} {'chips':>7} {'batch':>6} {'tok/s/chip':>10} {'$/M out':>8} "
          f"{'tok/s per MW':>13}")  # fmt: skip
    for f in tco(SCENARIO):
        op = f.operating
        per_chip = op.replica_tokens_per_s / op.chips_per_replica
        print(f"{f.name:22} {f.chips:7,d} {op.batch:6d} {per_chip:10.1f} "
              f"{f.usd_per_m_output_tokens:8.3f} {f.tokens_per_s_per_mw:13,.0f}")  # fmt: skip


if __name__ == "__main__":
    batch_one()
    at_target()
