"""Measure one NVIDIA GPU for xpusim's calibration and validation.

Run on the lent GPU machine (PyTorch there), from the repository root:

    python3 benchmarks/device/measure_gpu.py --out DIR

Writes ``DIR/measured.csv`` in the schema of ``shared/validation/measurements.csv`` (so
``xpusim validate --measurements`` reads it) and ``DIR/env.json`` (date, GPU, driver, library
versions, clocks seen). Everything is timed with CUDA events: warm-up first, then the median of
repeated runs; inputs rotate among enough copies to exceed the L2 cache so that streaming GEMMs
and copies measure HBM, not cache. Random data only (zeros run faster on Hopper).

What is measured:
* GEMM TFLOP/s, BF16 (torch.matmul / cuBLAS) and FP8 e4m3 with per-tensor scales
  (torch._scaled_mm), at decode and prefill token counts on Llama-3-8B/70B projection shapes and
  on large squares;
* device-to-device copy bandwidth (bytes read + bytes written);
* causal flash attention (torch SDPA) prefill TFLOP/s, and GQA decode attention over a KV cache
  as achieved bandwidth;
* Llama-3-8B with random BF16 weights written here in plain PyTorch: prefill latency of one
  sequence, and decode step latency at several batch sizes and context lengths, replayed as a
  CUDA graph, with board power sampled through NVML during decode.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import subprocess
import threading
import time

import torch
import torch.nn.functional as F

L2_FLUSH_BYTES = 256 * 2**20
FIELDS = [
    "id", "hardware", "n_chips", "model", "precision", "parallelism", "workload", "input_len",
    "output_len", "batch_or_concurrency", "metric", "value", "unit", "source", "notes",
]  # fmt: skip
SOURCE = "xpusim benchmarks/device/measure_gpu.py, measured {date} on the lent {gpu}"


def timed(fn, warmup: int = 3, reps: int = 20) -> float:
    """Median seconds of ``fn()`` over ``reps`` runs, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2]


def rotating(make, nbytes: int):
    """Enough independent copies of ``make()`` to exceed the L2 cache, and a cycling picker."""
    copies = [make() for _ in range(max(1, math.ceil(L2_FLUSH_BYTES / max(nbytes, 1))))]
    state = {"i": 0}

    def pick():
        state["i"] = (state["i"] + 1) % len(copies)
        return copies[state["i"]]

    return pick


class Rows:
    def __init__(self, hardware: str, source: str):
        self.rows, self.hardware, self.source = [], hardware, source

    def add(self, model, precision, workload, metric, value, unit, notes="", **kw):
        self.rows.append({
            "id": f"XM{len(self.rows) + 1:03d}", "hardware": self.hardware,
            "n_chips": kw.get("n_chips", 1), "model": model, "precision": precision,
            "parallelism": kw.get("parallelism", "1 GPU"), "workload": workload,
            "input_len": kw.get("input_len", ""), "output_len": kw.get("output_len", ""),
            "batch_or_concurrency": kw.get("batch", ""), "metric": metric,
            "value": f"{value:.6g}", "unit": unit, "source": self.source, "notes": notes,
        })  # fmt: skip
        print(f"{metric:>26} {value:12.4g} {unit:8} {model} {workload} {notes}", flush=True)


# -- GEMM --------------------------------------------------------------------------------------
GEMM_NK = [
    (4096, 6144),
    (4096, 28672),
    (14336, 4096),
    (8192, 10240),
    (8192, 57344),
    (28672, 8192),
]  # fmt: skip  Llama-3 8B/70B fused QKV, gate+up, down (K, N)
GEMM_M = [1, 16, 64, 128, 256, 1024, 4096, 8192]
SQUARES = [2048, 4096, 8192, 16384]


def gemm_bf16(m, n, k):
    pick = rotating(
        lambda: (torch.randn(m, k, device="cuda", dtype=torch.bfloat16),
                 torch.randn(k, n, device="cuda", dtype=torch.bfloat16)),
        2 * (m * k + k * n),
    )  # fmt: skip
    return timed(lambda: torch.matmul(*pick()))


def gemm_fp8(m, n, k):
    one = torch.ones((), device="cuda")

    def make():
        a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()  # column-major
        return a, b

    pick = rotating(make, m * k + k * n)

    def run():
        a, b = pick()
        return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    return timed(run)


def measure_gemms(rows: Rows):
    shapes = [(m, n, k) for k, n in GEMM_NK for m in GEMM_M] + [(s, s, s) for s in SQUARES]
    for m, n, k in shapes:
        t = gemm_bf16(m, n, k)
        rows.add(f"GEMM M={m} N={n} K={k}", "BF16", "torch.matmul (cuBLAS) GEMM",
                 "gemm_tflops", 2 * m * n * k / t / 1e12, "TFLOP/s",
                 f"median {t * 1e6:.1f} us; inputs rotated past L2", batch=f"M={m}")  # fmt: skip
        if m >= 16:
            t = gemm_fp8(m, n, k)
            rows.add(f"GEMM M={m} N={n} K={k}", "FP8 e4m3 per-tensor scale",
                     "torch._scaled_mm GEMM", "gemm_tflops", 2 * m * n * k / t / 1e12,
                     "TFLOP/s", f"median {t * 1e6:.1f} us; bf16 out; inputs rotated past L2",
                     batch=f"M={m}")  # fmt: skip


# -- memory and attention ----------------------------------------------------------------------
def measure_copy(rows: Rows):
    for mib in (64, 256, 1024, 4096):
        n = mib * 2**20 // 2
        src = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        dst = torch.empty_like(src)
        t = timed(lambda: dst.copy_(src), reps=30)
        rows.add(f"device-to-device copy {mib} MiB", "BF16", "memory copy (read + write)",
                 "hbm_bw_achieved_gbs", 2 * n * 2 / t / 1e9, "GB/s",
                 f"bytes read + written; median {t * 1e6:.1f} us")  # fmt: skip
        del src, dst


def measure_attention(rows: Rows):
    h, kvh, d = 32, 8, 128
    for s in (2048, 8192, 16384):
        q = torch.randn(1, h, s, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, kvh, s, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        t = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True))
        flops = 4 * h * s * s * d / 2
        rows.add(f"causal flash attention h={h} kv={kvh} d={d} seq={s}", "BF16",
                 "torch SDPA prefill attention (causal)", "attention_tflops", flops / t / 1e12,
                 "TFLOP/s", f"causal FLOPs counted as half of 4*h*s^2*d; median {t * 1e6:.0f} us",
                 input_len=s, batch=1)  # fmt: skip
    for b, ctx in ((1, 8192), (16, 4096), (64, 4096), (128, 8192)):
        q = torch.randn(b, h, 1, d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, kvh, ctx, d, device="cuda", dtype=torch.bfloat16)
        v = torch.randn_like(k)
        t = timed(lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True))
        kv_bytes = 2 * b * kvh * ctx * d * 2
        rows.add(f"GQA decode attention b={b} ctx={ctx} h={h} kv={kvh} d={d}", "BF16 KV",
                 "torch SDPA decode attention over a KV cache", "hbm_bw_achieved_gbs",
                 kv_bytes / t / 1e9, "GB/s", f"KV bytes read / time; median {t * 1e6:.1f} us",
                 input_len=ctx, batch=b)  # fmt: skip
        del q, k, v


# -- Llama-3-8B with random weights ------------------------------------------------------------
class Llama:
    """Llama-3-8B shapes in plain PyTorch with random BF16 weights (fused QKV and gate/up)."""

    def __init__(self, layers=32, hidden=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256):
        self.h, self.nh, self.kvh, self.d = hidden, heads, kv_heads, hidden // heads
        self.ffn, self.vocab, self.n = ffn, vocab, layers

        def w(i, o):
            return torch.randn(o, i, device="cuda", dtype=torch.bfloat16) * (i**-0.5)

        qkv = (heads + 2 * kv_heads) * self.d
        self.layers = [
            dict(qkv=w(hidden, qkv), o=w(hidden, hidden), gu=w(hidden, 2 * ffn),
                 down=w(ffn, hidden), n1=torch.ones(hidden, device="cuda", dtype=torch.bfloat16),
                 n2=torch.ones(hidden, device="cuda", dtype=torch.bfloat16))
            for _ in range(layers)
        ]  # fmt: skip
        self.embed = torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16)
        self.head = w(hidden, vocab)
        self.norm = torch.ones(hidden, device="cuda", dtype=torch.bfloat16)

    @staticmethod
    def rms(x, g):
        return F.rms_norm(x, (x.shape[-1],), g, 1e-5)

    def rope_table(self, pos):
        """cos/sin for the positions, computed once per forward pass (as serving engines do)."""
        half = self.d // 2
        freq = 500000.0 ** (-torch.arange(half, device="cuda", dtype=torch.float32) / half)
        ang = pos[:, None].float() * freq[None, :]
        return ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)

    @staticmethod
    def rope(x, table):
        cos, sin = table
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    def block(self, x, lw, attend):
        b, s, _ = x.shape
        qkv = self.rms(x, lw["n1"]) @ lw["qkv"].t()
        q, k, v = qkv.split([self.nh * self.d, self.kvh * self.d, self.kvh * self.d], dim=-1)
        q = q.view(b, s, self.nh, self.d).transpose(1, 2)
        k = k.view(b, s, self.kvh, self.d).transpose(1, 2)
        v = v.view(b, s, self.kvh, self.d).transpose(1, 2)
        a = attend(q, k, v).transpose(1, 2).reshape(b, s, self.h)
        x = x + a @ lw["o"].t()
        g, u = (self.rms(x, lw["n2"]) @ lw["gu"].t()).chunk(2, dim=-1)
        return x + (F.silu(g) * u) @ lw["down"].t()

    def prefill(self, tokens):
        s = tokens.shape[1]
        table = self.rope_table(torch.arange(s, device="cuda"))
        x = self.embed[tokens]

        def attend(q, k, v):
            q, k = self.rope(q, table), self.rope(k, table)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)

        for lw in self.layers:
            x = self.block(x, lw, attend)
        return self.rms(x[:, -1], self.norm) @ self.head.t()

    def decode(self, tokens, caches, pos, head=True):
        table = self.rope_table(pos)
        x = self.embed[tokens]  # [b, 1, h]
        for lw, (kc, vc) in zip(self.layers, caches):

            def attend(q, k, v, kc=kc, vc=vc):
                q, k = self.rope(q, table), self.rope(k, table)
                kc.index_copy_(2, pos, k)
                vc.index_copy_(2, pos, v)
                return F.scaled_dot_product_attention(q, kc, vc, enable_gqa=True)

            x = self.block(x, lw, attend)
        x = self.rms(x[:, -1], self.norm)
        return x @ self.head.t() if head else x


class PowerSampler:
    """Board power through NVML every 20 ms in a thread; mean of the samples while running."""

    def __init__(self):
        import pynvml

        pynvml.nvmlInit()
        self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        self.samples, self.stop = [], threading.Event()

    def __enter__(self):
        def loop():
            while not self.stop.is_set():
                self.samples.append(self.nv.nvmlDeviceGetPowerUsage(self.h) / 1e3)
                time.sleep(0.02)

        self.t = threading.Thread(target=loop, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()

    @property
    def mean_w(self):
        tail = self.samples[len(self.samples) // 4 :]  # skip the ramp
        return sum(tail) / max(len(tail), 1)


def as_graph(fn):
    """Capture ``fn`` (static shapes) as a CUDA graph after two warm-up calls; returns replay."""
    for _ in range(2):
        fn()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def kv_caches(model, b, ctx):
    shape = (b, model.kvh, ctx, model.d)
    return [
        (torch.randn(shape, device="cuda", dtype=torch.bfloat16),
         torch.randn(shape, device="cuda", dtype=torch.bfloat16))
        for _ in range(model.n)
    ]  # fmt: skip


def measure_llama(rows: Rows, env: dict):
    torch.manual_seed(0)
    model = Llama()
    name = "Meta-Llama-3-8B (random BF16 weights, plain PyTorch)"
    for s in (128, 512, 2048, 8192):
        tok = torch.randint(0, model.vocab, (1, s), device="cuda")
        with torch.inference_mode():
            t_eager = timed(lambda: model.prefill(tok), warmup=2, reps=7)
            t = timed(as_graph(lambda: model.prefill(tok)).replay, warmup=2, reps=10)
        rows.add(name, "BF16", "prefill of one sequence (CUDA graph), logits of last token",
                 "ttft_ms", t * 1e3, "ms", f"one forward pass, no queueing; eager PyTorch "
                 f"{t_eager * 1e3:.2f} ms", input_len=s, output_len=1, batch=1)  # fmt: skip
    for b, ctx in ((1, 1024), (8, 1024), (32, 2048), (64, 2048), (128, 1024), (64, 4096)):
        caches = kv_caches(model, b, ctx)
        tok = torch.randint(0, model.vocab, (b, 1), device="cuda")
        pos = torch.tensor([ctx - 1], device="cuda")
        with torch.inference_mode():
            graph = as_graph(lambda: model.decode(tok, caches, pos))
            t = timed(graph.replay, warmup=5, reps=30)
            t_eager = timed(lambda: model.decode(tok, caches, pos), warmup=2, reps=10)
            reps = max(20, int(3.0 / t))
            with PowerSampler() as p:
                for _ in range(reps):
                    graph.replay()
                torch.cuda.synchronize()
        note = (f"one decode step over a {ctx}-token KV cache (BF16), CUDA graph replay; "
                f"eager PyTorch {t_eager * 1e3:.2f} ms")  # fmt: skip
        rows.add(name, "BF16", "decode step (CUDA graph)", "decode_step_ms", t * 1e3, "ms",
                 note, input_len=ctx, batch=b)  # fmt: skip
        rows.add(name, "BF16", "decode steps (CUDA graph), board power", "accelerator_power_w_avg",
                 p.mean_w, "W", f"NVML mean over {reps} steps ({len(p.samples)} samples); "
                 f"batch {b}, context {ctx}", input_len=ctx, batch=b)  # fmt: skip
        env.setdefault("decode_power_samples", {})[f"b{b}_ctx{ctx}"] = len(p.samples)
        del caches, graph
    del model
    torch.cuda.empty_cache()
    measure_70b_layers(rows)


def measure_70b_layers(rows: Rows, layers: int = 16):
    """Decode with ``layers`` Llama-3-70B layers (80 do not fit one 80 GB GPU in BF16)."""
    model = Llama(layers=layers, hidden=8192, heads=64, kv_heads=8, ffn=28672)
    name = "Meta-Llama-3-70B layer (random BF16 weights, plain PyTorch)"
    for b, ctx in ((1, 2048), (32, 2048), (64, 4096)):
        caches = kv_caches(model, b, ctx)
        tok = torch.randint(0, model.vocab, (b, 1), device="cuda")
        pos = torch.tensor([ctx - 1], device="cuda")
        with torch.inference_mode():
            graph = as_graph(lambda: model.decode(tok, caches, pos, head=False))
            t = timed(graph.replay, warmup=5, reps=30)
        rows.add(name, "BF16", "decode (CUDA graph), one layer = step over "
                 f"{layers} layers / {layers}", "layer_latency_ms", t / layers * 1e3, "ms",
                 f"{layers}-layer step {t * 1e3:.3f} ms incl. embedding gather and final norm; "
                 f"context {ctx}", input_len=ctx, batch=b)  # fmt: skip
        del caches, graph


def environment() -> dict:
    def smi(q):
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
            capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    p = torch.cuda.get_device_properties(0)
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "gpu": p.name, "sm_count": p.multi_processor_count,
        "memory_gib": round(p.total_memory / 2**30, 1),
        "l2_mb": getattr(p, "L2_cache_size", 0) / 1e6,
        "driver": smi("driver_version"), "power_limit": smi("power.limit"),
        "clocks_max": smi("clocks.max.sm,clocks.max.memory"),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "hostname": os.uname().nodename,
    }  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="gemm,copy,attention,llama")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    env = environment()
    print(json.dumps(env), flush=True)
    hardware = "NVIDIA H100-SXM-80GB" if "H100" in env["gpu"] else f"NVIDIA {env['gpu']}"
    rows = Rows(hardware, SOURCE.format(date=env["date_utc"][:10], gpu=env["gpu"]))
    steps = {"gemm": measure_gemms, "copy": measure_copy, "attention": measure_attention}
    for part in args.only.split(","):
        t0 = time.time()
        try:
            if part == "llama":
                measure_llama(rows, env)
            else:
                steps[part](rows)
        except Exception as exc:  # keep what was measured; say what failed
            env.setdefault("failed", {})[part] = repr(exc)
            print(f"FAILED {part}: {exc!r}", flush=True)
        env.setdefault("seconds", {})[part] = round(time.time() - t0, 1)
        torch.cuda.empty_cache()
        with open(os.path.join(args.out, "measured.csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=FIELDS)
            w.writeheader()
            w.writerows(rows.rows)
    env["clocks_after"] = environment()["clocks_max"]
    env["sm_clock_now"] = subprocess.run(
        ["nvidia-smi", "--query-gpu=clocks.sm,temperature.gpu", "--format=csv,noheader"],
        capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with open(os.path.join(args.out, "env.json"), "w") as fh:
        json.dump(env, fh, indent=1)


if __name__ == "__main__":
    main()
