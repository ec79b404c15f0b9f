"""Turn rows of the validation measurements (``data/``) into predictions.

Each expressible row becomes a :class:`Case`: the chip family it calibrates or validates, its class
(``microbenchmark``, ``end_to_end`` or ``api`` — public endpoints, a band not a point), the
measured
value, and a function that predicts the same metric from a set of efficiency overrides, through the
product's own code paths (one-op graphs for microbenchmarks, ``predict`` for end-to-end rows).
Rows that cannot be expressed are returned with the reason.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from arch.base import ConfigError
from arch.chip import PRECISION_BITS, System
from arch.efficiency import efficiency_for
from arch.engine import KERNELS_ONLY, engine_names, resolve_engine
from arch.presets import load_chip
from explore.api.predict import predict
from explore.validation.case import Case, Overrides, Unexpressed, ov_key
from explore.validation.moe_cases import is_moe_row, moe_case
from kernels import layout as L
from kernels.cost import collective_time
from kernels.pack import pack_design, resolve_precision
from sim.evaluate import average_power_w, resolve_workload
from sim.step import analytic_step
from workloads.ops import OpKind, precision_code, single_op

__all__ = ["Case", "Unexpressed", "build_cases", "engine_of", "load_rows", "ov_key",
           "shipped_measurements"]  # fmt: skip

DATA = Path(__file__).resolve().parent / "data"


def shipped_measurements() -> list[Path]:
    """The measurements that ship with xpusim (package data, sources in ``data/README.md``):
    the published table (a copy of the project's ``shared/validation/measurements.csv``) and this
    repository's own GPU measurements (``data/own/*/measured.csv``, each with its environment,
    taken with ``benchmarks/device/measure_gpu.py``)."""
    return [DATA / "measurements.csv", *sorted((DATA / "own").glob("*/measured.csv"))]


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise ConfigError(f"--measurements {path}: {what}; give a measurements CSV file")
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"--measurements {path}: cannot read it as CSV ({exc})") from None
    if not rows:
        raise ConfigError(f"--measurements {path}: no rows; use the columns of "
                          "data/measurements.csv, one measurement a row")  # fmt: skip
    missing = {"id", "hardware", "metric", "value"} - set(rows[0])
    if missing:
        raise ConfigError(f"--measurements {path}: missing column {sorted(missing)[0]!r}; "
                          "use the columns of data/measurements.csv")  # fmt: skip
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        _check_value(row.get("value"), f"--measurements {path}: line {i}: value")
    return rows


_RANGE = re.compile(r"^([0-9]*\.?[0-9]+)\s*-\s*([0-9]*\.?[0-9]+)$")


def _check_value(text: str | None, where: str) -> None:
    """A measured value: a finite number > 0, or a published range ``LO-HI`` of two (such rows
    are reported as not expressed); the content is not repeated in the error."""
    text = (text or "").strip()
    span = _RANGE.match(text)
    try:
        values = [float(v) for v in span.groups()] if span else [float(text)]
    except ValueError:
        values = [math.nan]
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"{where}: not a measurement; give a finite number > 0 (or LO-HI)")


def load_rows(extra: Path | None = None, *, only: bool = False) -> list[dict[str, str]]:
    """The shipped rows plus those of ``extra`` (``only=True``: just ``extra``'s rows)."""
    if only and extra is None:
        raise ConfigError("--only-measurements needs --measurements FILE")
    paths = ([] if only else shipped_measurements()) + ([Path(extra)] if extra else [])
    return [row for p in paths for row in _read(p)]


# -- mapping of the free-text columns -----------------------------------------------------------
_CHIPS = [  # first match wins: more specific names first
    (r"GH200", "gh200"),
    (r"GB200", "gb200-nvl72"),
    (r"H800", "h800"),
    (r"H200", "h200"),
    (r"H100", "h100-sxm"),
    (r"B200", "b200"),
    (r"A100", "a100-80gb"),
    (r"L40S", "l40s"),
    (r"MI300X", "mi300x"),
    (r"MI325X", "mi325x"),
    (r"MI355X", "mi355x"),
    (r"Gaudi ?2", "gaudi2"),
    (r"Gaudi ?3", "gaudi3"),
    (r"TPU v5e", "tpu-v5e"),
    (r"TPU v5p", "tpu-v5p"),
    (r"TPU v6e", "tpu-v6e"),
    (r"Groq", "groq-lpu"),
    (r"WSE-3", "cerebras-wse3"),
    (r"SN40L", "sambanova-sn40l"),
]
_MODELS = [
    (r"Llama-3\.1-405B", "llama-3.1-405b"),
    (r"Llama-3\.3-70B", "llama-3.3-70b"),
    (r"Llama-3\.1-70B", "llama-3.1-70b"),
    (r"Llama-3\.1-8B", "llama-3.1-8b"),
    (r"Meta-Llama-3-70B", "llama-3-70b"),
    (r"Meta-Llama-3-8B|^Llama-3-8B", "llama-3-8b"),
    (r"Llama-2-70B|LLaMA-70B", "llama-2-70b"),
    (r"Llama-2-13B", "llama-2-13b"),
    (r"LLaMA-7B", "llama-2-7b"),
    (r"GPT-J", "gpt-j-6b"),
    (r"Mixtral", "mixtral-8x7b"),
    (r"GPT-3 175B", "gpt3-175b"),
]


def _match(table, text: str) -> str | None:
    return next((name for pat, name in table if re.search(pat, text)), None)


# the serving engine a row ran, from its text (first match wins); rows naming none take the
# family's assumed engine (arch/presets/engines.toml)
_ENGINES = (
    (r"measure_gpu\.py", "pytorch"),  # the project's own harness
    (r"TensorRT-LLM|TRT-LLM|_TRT\b|trtllm", "trtllm"),
    (r"\bvLLM\b", "vllm"),
    (r"SGLang", "sglang"),
    (r"JetStream", "jetstream"),
    (r"DeepSpeed|optimum-habana", "deepspeed"),
    (r"sambaflow|public endpoint|API benchmark|cloud API", "vendor"),
)
# benchmark suites that ran older engine releases, by the release the rows state: TRT-LLM's
# static-batching gptSessionBenchmark (v0.5-0.6, 2023: "trtllm-2023"); LLM-Inference-Bench
# (arXiv 2411.00136) on 2024 releases ("-legacy"); today's releases otherwise
_RELEASES = ((r"gptSessionBenchmark", "2023"), (r"LLM-Inference-Bench", "legacy"))
_HAS_RELEASES = ("trtllm", "vllm")


def engine_of(row) -> str | None:
    text = " ".join(row.get(k, "") for k in ("parallelism", "workload", "source", "notes"))
    name = next((n for pat, n in _ENGINES if re.search(pat, text, re.IGNORECASE)), None)
    if name in _HAS_RELEASES:
        for pat, release in _RELEASES:
            if re.search(pat, text) and f"{name}-{release}" in engine_names():
                return f"{name}-{release}"
    return name


def _engine(row, chip: str) -> str:
    return resolve_engine(engine_of(row), load_chip(chip).family).name


def _quant(precision: str) -> str:
    p = precision.upper()
    if "FP4" in p:
        return "fp4"
    if "FP8" in p or "8-BIT" in p:
        return "fp8"
    if "FP16" in p and "BF16" not in p:
        return "fp16"
    return "bf16"


def _gemm_prec(precision: str) -> str:
    p = precision.upper()
    return "fp8" if "FP8" in p else "fp16" if p.startswith("FP16") else "bf16"


# -- microbenchmark predictors -------------------------------------------------------------------
def _system(chip: str, n: int = 1) -> System:
    return System(chip=load_chip(chip), count=n)


def _eff(family: str, ov: Overrides):
    return efficiency_for(family, overrides=ov.get(family))


def _gemm_seconds(chip: str, m: float, n: float, k: float, prec: str, ov: Overrides) -> float:
    c = load_chip(chip)
    p = resolve_precision(c, prec)
    bpe = PRECISION_BITS[p] / 8
    g = single_op(
        "gemm",
        OpKind.GEMM,
        m=m,
        n=n,
        k=k,
        groups=1,
        precision=precision_code(p),
        flops=2 * m * n * k,
        weight_bytes=k * n * bpe,
        act_bytes=m * k * bpe + m * n * 2.0,
        kernels=1.0,
    )
    return _isolated(g, chip, ov)


def _isolated(g, chip: str, ov: Overrides) -> float:
    """Seconds of a one-kernel graph timed alone: its cost plus the harness launch latency."""
    eff = _eff(load_chip(chip).family, ov)
    return analytic_step(g, _system(chip), eff).total_s + eff.value("isolated_launch_s")


def _gemm_case(row, chip: str) -> Case | str:
    dims = re.findall(r"(\d+)x(\d+)x(\d+)", row["model"])
    if dims:
        m, n, k = (float(x) for x in dims[0])
    else:
        found = {a: float(b) for a, b in re.findall(r"([MNK])=(\d+)", row["model"])}
        if len(found) != 3:
            return "GEMM shape not given"
        m, n, k = found["M"], found["N"], found["K"]
    prec = _gemm_prec(row["precision"])
    fam = load_chip(chip).family

    def pred(ov: Overrides) -> float:
        return 2 * m * n * k / _gemm_seconds(chip, m, n, k, prec, ov) / 1e12

    return _case(row, chip, fam, "microbenchmark", pred, f"GEMM {m:.0f}x{n:.0f}x{k:.0f} {prec}")


def _size_bytes(text: str) -> float | None:
    hit = re.search(r"(\d+)\s*(KiB|MiB|GiB)", text)
    if not hit:
        return None
    return float(hit.group(1)) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[hit.group(2)]


def _allreduce_design(chip: str, n: int, ov: Overrides, algo: str):
    c = load_chip(chip)
    d = pack_design(_system(chip, n), _eff(c.family, ov), direct_collectives=False)
    if "NVLS_ENABLE=0" in algo or "Ring" in algo:
        d[L.UP_INR] = 0.0
    return d


def _allreduce_case(row, chip: str) -> Case | str:
    size = _size_bytes(row["model"])
    n = int(row["n_chips"])
    algo = row["parallelism"]
    if size is None:
        size = 16 * 2**30  # "large payload": bus bandwidth plateau
    busbw = row["metric"] == "allreduce_busbw_gbs"

    def pred(ov: Overrides) -> float:
        t = collective_time(OpKind.ALLREDUCE, size, n, _allreduce_design(chip, n, ov, algo))
        return size / t * 2 * (n - 1) / n / 1e9 if busbw else t * 1e6

    fam = load_chip(chip).family
    return _case(row, chip, fam, "microbenchmark", pred, f"all-reduce {size / 2**20:g} MiB x{n}")


def _link_case(row, chip: str) -> Case | str:
    n = int(row["n_chips"])
    c = load_chip(chip)
    if "dispatch" in row["model"].lower():
        hidden, tokens, topk = 7168, 4096, 8
        size = tokens * topk * hidden * 1.0  # FP8 dispatch from one GPU
        kind = OpKind.ALLTOALL
    else:
        size, kind = 1 * 2**30, OpKind.P2P

    def pred(ov: Overrides) -> float:
        d = pack_design(_system(chip, n), _eff(c.family, ov))
        bytes_moved = size * ((n - 1) / n if kind == OpKind.ALLTOALL else 1.0)
        return (
            bytes_moved / collective_time(kind, size, n if kind == OpKind.ALLTOALL else 2, d) / 1e9
        )

    return _case(
        row,
        chip,
        c.family,
        "microbenchmark",
        pred,
        "all-to-all dispatch" if kind == OpKind.ALLTOALL else "NVLink P2P 1 GiB",
    )


def _attention_shape(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"\b(b|h|kv|d|seq|ctx)=(\d+)", text)}


def _attention_seconds(chip: str, sh: dict[str, int], prec: str, ov: Overrides) -> float:
    """One attention kernel, costed as ``workloads.graph`` costs it (causal prefill or decode)."""
    c = load_chip(chip)
    p = resolve_precision(c, prec)
    b, h, kvh, d = sh.get("b", 1), sh["h"], sh["kv"], sh["d"]
    if "ctx" in sh:  # decode: one query per sequence over ctx keys
        s, keys, kind = 1, sh["ctx"], OpKind.ATTN_DECODE
        pairs, kv = b * keys, b * keys * 2 * kvh * d * 2.0
    else:  # causal prefill; K and V of the new tokens written once
        s = keys = sh["seq"]
        pairs, kind = b * s * (s + 1) / 2, OpKind.ATTN_PREFILL
        kv = b * s * 2 * kvh * d * 2.0
    g = single_op(
        "attention",
        kind,
        m=b * s,
        n=keys,
        k=d,
        groups=h,
        precision=precision_code(p),
        flops=4.0 * pairs * h * d,
        vflops=5.0 * pairs * h,
        kv_bytes=kv,
        act_bytes=b * s * h * 2 * d * 2.0,
    )
    return _isolated(g, chip, ov)


def _attention_case(row, chip: str) -> Case | str:
    c = load_chip(chip)
    prec = _gemm_prec(row["precision"])
    sh = _attention_shape(row["model"])
    if {"h", "kv", "d", "seq"} <= sh.keys():  # a causal prefill kernel of a stated shape
        flops = 4.0 * sh["h"] * sh["seq"] ** 2 * sh["d"] / 2

        def pred(ov: Overrides) -> float:
            return flops / _attention_seconds(chip, sh, prec, ov) / 1e12

        what = f"causal attention seq {sh['seq']} {prec}"
    else:

        def pred(ov: Overrides) -> float:
            peak = c.matrix.peak(resolve_precision(c, prec))
            return peak * _eff(c.family, ov).value("attention") / 1e12

        what = f"attention {prec} (compute-bound)"
    return _case(row, chip, c.family, "microbenchmark", pred, what)


def _stream_seconds(chip: str, nbytes: float, ov: Overrides) -> float:
    """A pure streaming kernel (copy) of ``nbytes`` read + written, as an elementwise op."""
    return _isolated(single_op("copy", OpKind.ELEMENTWISE, act_bytes=nbytes), chip, ov)


def _hbm_case(row, chip: str) -> Case | str:
    c = load_chip(chip)
    dims = {a: float(b) for a, b in re.findall(r"([MNK])=(\d+)", row["model"])}
    sh = _attention_shape(row["model"])
    size = _size_bytes(row["model"])
    if len(dims) == 3:
        m, n, k = dims["M"], dims["N"], dims["K"]
        bytes_moved = k * n + m * k + m * n * 2.0  # FP8 in, BF16 out (DeepGEMM)

        def pred(ov: Overrides) -> float:
            return bytes_moved / _gemm_seconds(chip, m, n, k, "fp8", ov) / 1e9

        what = f"FP8 GEMM {m:.0f}x{n:.0f}x{k:.0f} achieved bandwidth"
    elif {"b", "ctx", "h", "kv", "d"} <= sh.keys():  # decode attention: KV bytes over time
        kv = 2.0 * sh["b"] * sh["kv"] * sh["ctx"] * sh["d"] * 2

        def pred(ov: Overrides) -> float:
            return kv / _attention_seconds(chip, sh, "bf16", ov) / 1e9

        what = f"decode attention b{sh['b']} ctx{sh['ctx']} achieved bandwidth"
    elif size is not None and "copy" in row["model"]:
        moved = 2.0 * size  # read + written

        def pred(ov: Overrides) -> float:
            return moved / _stream_seconds(chip, moved, ov) / 1e9

        what = f"copy {size / 2**20:g} MiB (read + write)"
    else:

        def pred(ov: Overrides) -> float:
            return c.main_memory.bandwidth_bytes_per_s * _eff(c.family, ov).value("memory") / 1e9

        what = "memory-bound kernel (streaming)"
    return _case(row, chip, c.family, "microbenchmark", pred, what)


def _case(row, chip, fam, cls, pred, describe, assumption: str = "", engine: str = "") -> Case:
    return Case(
        engine=engine,
        id=row["id"],
        family=fam,
        chip=chip,
        metric=row["metric"],
        cls=cls,
        measured=float(row["value"]),
        unit=row["unit"],
        describe=describe,
        predict=pred,
        assumption=assumption,
    )


# -- end-to-end predictors -----------------------------------------------------------------------
def _tp(row) -> int:
    hit = re.search(r"TP(\d+)", row["parallelism"])
    if hit:
        return int(hit.group(1))
    return int(row["n_chips"]) if "TP across devices" in row["parallelism"] else 1


def _int(text: str) -> int | None:
    hit = re.match(r"\s*(\d+)\s*$", text)
    return int(hit.group(1)) if hit else None


def _predict_case(
    row,
    chip: str,
    model: str,
    *,
    metric_of,
    cls: str,
    batch,
    tp: int,
    n: int,
    describe: str,
    assumption: str = "",
    pp: int = 1,
) -> Case:
    fam = load_chip(chip).family
    quant = _quant(row["precision"])
    inp, out = _int(row["input_len"]) or 0, _int(row["output_len"]) or 0
    engine = _engine(row, chip)

    def pred(ov: Overrides) -> float:
        r = predict(
            f"{chip}:{n}",
            model,
            quant,
            tp=tp,
            pp=pp,
            dp=n // (tp * pp),
            batch=batch,
            input_len=inp,
            output_len=max(out, 1),
            efficiency_overrides=ov.get(ov_key(fam, engine)),
            engine=engine,
        )
        if not r.fits:
            raise ConfigError(f"{row['id']}: prediction does not fit: {r.memory.reason}")
        return metric_of(r)

    return _case(row, chip, fam, cls, pred, describe, assumption, engine)


# metric -> (value read off a Result, label); batch 1 for TTFT rows, the row's batch otherwise
_E2E_METRICS = {
    "ttft_ms": (lambda r: r.ttft_s * 1e3, "b1 TTFT"),
    "e2e_latency_s": (lambda r: r.e2e_s, "static e2e"),
    "accelerator_power_w_avg": (lambda r: r.power_w, "board power"),
}
_MAX_LOAD = (
    "in-flight batching at infinite load approximated by the largest static batch that fits; "
    "value read as total output tokens/s of the n chips"
)


def _e2e_case(row, chip: str, model: str) -> Case | str:
    inp, out = _int(row["input_len"]), _int(row["output_len"])
    metric = row["metric"]
    n = int(row["n_chips"]) if row["n_chips"].isdigit() else 0
    if not (inp and out and n):
        if "ShareGPT" in row["workload"]:
            return ("ShareGPT prompts: the filtered data set's length distribution is not in the "
                    "validation data (xpusim predict --batch max takes it as --input-len/"
                    "--output-len distributions once known)")
        return "input/output lengths or chip count not given (dataset-driven or undisclosed)"
    tp = _tp(row)
    fixed = _int(row["batch_or_concurrency"])
    desc = f"{model} {row['precision'][:12]} TP{tp} x{n // tp} in{inp}/out{out}"
    common = {"cls": "end_to_end", "tp": tp, "n": n}
    if metric in _E2E_METRICS:
        metric_of, label = _E2E_METRICS[metric]
        batch = 1 if metric == "ttft_ms" else fixed
        return _predict_case(
            row,
            chip,
            model,
            metric_of=metric_of,
            batch=batch,
            describe=f"{desc} b{batch} {label}",
            **common,
        )
    if metric != "throughput_output_tokens_per_s":
        return f"metric {metric} not expressible yet"
    if fixed:  # static-batch peak-throughput table, total or per GPU as the unit says
        per_gpu = "/GPU" in row["unit"]
        return _predict_case(
            row,
            chip,
            model,
            batch=fixed,
            describe=f"{desc} b{fixed} static throughput",
            metric_of=lambda r: (
                r.output_tokens_per_s_per_chip if per_gpu else r.output_tokens_per_s
            ),
            **common,
        )
    return _predict_case(
        row,
        chip,
        model,
        batch="max",
        metric_of=lambda r: r.output_tokens_per_s,
        describe=f"{desc} max-batch throughput",
        assumption=_MAX_LOAD,
        **common,
    )


def _decode_step(row, chip: str, model: str, ov: Overrides, engine: str = ""):
    """(workload, StepTiming) of one decode step at the row's batch and context."""
    batch, ctx = int(row["batch_or_concurrency"]), _int(row["input_len"]) or 3072
    w = _workload(row, chip, model, ov, input_len=1, engine=engine)
    return w, w.decode(batch, ctx, w.plan(batch))


def _workload(row, chip: str, model: str, ov: Overrides, *, input_len: int, engine: str = ""):
    """The row's chip x TP running ``model`` (one decode token) under ``engine`` ("": the kernels
    alone), the overrides of that family and engine applied."""
    tp = _tp(row)
    fam = load_chip(chip).family
    eng = resolve_engine(engine, fam) if engine else KERNELS_ONLY
    return resolve_workload(system=f"{chip}:{tp}", model=model, quant=_quant(row["precision"]),
                            tp=tp, input_len=input_len, output_len=1, engine=eng,
                            efficiency_overrides=ov.get(ov_key(fam, engine)))  # fmt: skip


def _decode_case(row, chip: str, model: str) -> Case | str:
    """A decode step's latency (ms) or the board power (W) while decode steps repeat."""
    fam, power = load_chip(chip).family, row["metric"] == "accelerator_power_w_avg"
    engine = _engine(row, chip)

    def pred(ov: Overrides) -> float:
        w, step = _decode_step(row, chip, model, ov, engine)
        if not power:
            return step.total_s * 1e3
        c = w.system.chip
        return float(average_power_w(step.energy_j, step.total_s, chips=w.par.chips_per_replica,
                                     floor_w=w.floor_w(), tdp_w=c.tdp_w))  # fmt: skip

    what = f"{model} decode step b{row['batch_or_concurrency']} ctx {row['input_len']}"
    what += " board power" if power else ""
    return _case(row, chip, fam, "end_to_end", pred, what, engine=engine)


def _layer_case(row, chip: str, model: str) -> Case | str:
    decode = "decode" in row["workload"]
    fam = load_chip(chip).family
    inp, ctx = 2048, _int(row["input_len"]) or 3072
    isolated = "sum of" in row["unit"]  # LLMCompass: each op timed alone, then summed

    def pred(ov: Overrides) -> float:
        if decode:
            w, step = _decode_step(row, chip, model, ov)
        else:  # one pass over the whole batch, as the benchmark runs it (no engine chunking)
            w = _workload(row, chip, model, ov, input_len=inp)
            batch = int(row["batch_or_concurrency"])
            step = analytic_step(w.graph("prefill", batch, inp, 0), w.system, w.eff,
                                 w.plan(batch))  # fmt: skip
        g = step.graph
        in_layers = g.layer >= 0
        total = float((step.per_op[in_layers, L.T_TOTAL] * g.count[in_layers]).sum())
        if isolated:  # a sum of per-op timings, each op timed alone
            kernels = float((g.kernels[in_layers] * g.count[in_layers]).sum())
            total += kernels * w.eff.value("isolated_launch_s")
        return total / w.model.num_layers * 1e3

    what = (f"one {model} layer TP{_tp(row)} b{row['batch_or_concurrency']} "
            f"{f'decode ctx {ctx}' if decode else f'prefill {inp}'}"
            f"{' (CUDA graph)' if 'CUDA graph' in row['workload'] else ''}")  # fmt: skip
    return _case(row, chip, fam, "microbenchmark", pred, what)


def _smallest_pp(model: str, chip: str, quant: str, *, tp: int) -> int:
    for pp in range(1, 257):
        w = resolve_workload(system=f"{chip}:{tp * pp}", model=model, quant=quant, tp=tp, pp=pp,
                             input_len=1000, output_len=200)  # fmt: skip
        if w.plan(1).fits:
            return pp
    raise ConfigError(f"{model} does not fit on up to {tp * 256} {chip} chips")


_API_NOTE = (
    "public endpoint: chip count, batch and load not disclosed; predicted at batch 1 on "
    "the smallest deployment assumed below; compare as a band"
)


def _api_case(row, chip: str, model: str) -> Case | str:
    if "not stated" in row["precision"]:
        return "precision not stated"
    if row["metric"] != "decode_tokens_per_s_per_user":
        return "public-endpoint aggregate; concurrency effects need the serving simulation"
    if chip == "cerebras-wse3" and "8B" in row["model"]:
        n, tp, pp, note = 1, 1, 1, "one CS-3 (8B in 16-bit fits the 44 GB wafer)"
    elif chip == "groq-lpu":
        pp = _smallest_pp(model, "groq-lpu", _quant(row["precision"]), tp=8)
        n, tp = 8 * pp, 8
        note = f"{n} LPUs as TP8 x PP{pp} (the smallest such pipeline holding the model)"
    elif chip == "sambanova-sn40l":
        n, tp, pp, note = 16, 16, 1, "one 16-socket SambaRack, TP16"
    else:
        return "deployment size unknown"
    fake = {**row, "input_len": "1000", "output_len": "200"}
    return _predict_case(
        fake,
        chip,
        model,
        metric_of=lambda r: r.tokens_per_s_per_user,
        cls="api",
        batch=1,
        tp=tp,
        n=n,
        pp=pp,
        describe=f"{model} b1 per-user decode, {note}",
        assumption=_API_NOTE + f"; {note}; lengths 1000/200 assumed",
    )


_MICRO = {
    "gemm_tflops": _gemm_case,
    "allreduce_busbw_gbs": _allreduce_case,
    "allreduce_latency_us": _allreduce_case,
    "nvlink_bw_achieved_gbs": _link_case,
    "attention_tflops": _attention_case,
    "hbm_bw_achieved_gbs": _hbm_case,
}
_SERVER = ("ttft_ms_mean", "tpot_ms_mean")


def _one(row) -> Case | str:
    chip = _match(_CHIPS, row["hardware"])
    metric = row["metric"]
    if chip is None:
        return f"no preset for hardware {row['hardware']!r}"
    if metric in _MICRO:
        return _MICRO[metric](row, chip)
    model = _match(_MODELS, row["model"])
    if is_moe_row(row):
        return moe_case(row, chip, model)
    if metric in _SERVER:
        return (
            "MLPerf Server/Interactive under Poisson load: the data set's input/output length "
            "distribution is not in the validation data (xpusim serve takes it as "
            "--input-len/--output-len file:PATH once known)"
        )
    if metric == "layer_latency_ms" and model:
        return _layer_case(row, chip, model)
    if model and row["workload"].startswith("decode step"):
        return _decode_case(row, chip, model)
    if metric in ("decode_tokens_per_s_per_user", "e2e_latency_ms") or (
        "API" in row["workload"] or "public" in row["workload"] or "claim" in row["workload"]
    ):
        return _api_case(row, chip, model) if model else "model not mapped"
    if model is None:
        return f"no preset for model {row['model']!r}"
    return _e2e_case(row, chip, model)


def build_cases(rows: list[dict[str, str]]) -> tuple[list[Case], list[Unexpressed]]:
    cases, skipped = [], []
    for row in rows:
        out = _one(row)
        if isinstance(out, Case):
            cases.append(out)
        else:
            skipped.append(Unexpressed(row["id"], row["metric"], row["hardware"], out))
    return cases, skipped
