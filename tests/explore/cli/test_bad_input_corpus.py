"""Bad-input corpus (issue 13): every command and file type, tried as a hostile user would.

Each case runs ``xpusim`` in-process (:func:`explore.cli.main`) and must give exit code 2, exactly
one line on stderr, no traceback, and name the flag or field at fault. Files are written to
``tmp_path`` from valid examples with one thing changed; ``{d}`` in an argument is that folder.

Hypothesis feeds random non-finite, negative and zero numbers into the numeric flags
(``derandomize=True``: the same examples on every run, so CI is deterministic).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explore.cli import main

ROOT = Path(__file__).resolve().parents[3]
TINY_CHIP = (ROOT / "tests" / "data" / "tiny_chip.toml").read_text()
TINY_MODEL = (ROOT / "workloads" / "presets" / "models" / "tiny.toml").read_text()
MEAS_HEADER = (ROOT / "explore" / "validation" / "data" / "measurements.csv").read_text()
MEAS_HEADER = MEAS_HEADER.splitlines()[0]

TARGET = "--system h100-sxm:1 --model tiny --quant bf16 --tp 1"
PREDICT = f"predict {TARGET} --batch 1 --input-len 8 --output-len 8"
SERVE = f"serve {TARGET} --requests 20 --input-len 8 --output-len 8 --rate 10"

SCENARIO = """\
system = "h100-sxm:1"
model = "tiny"
batch = 1
input_len = 8
output_len = 8
[parallelism]
tp = 1
[serving]
rate = 10.0
requests = 20
input_len = 8
output_len = 8
"""

TCO = """\
[scenario]
model = "tiny"
input_len = 8
output_len = 8
load_output_tokens_per_s = 1000
tokens_per_s_per_user = 10
daily_profile = [1.0, 2.0]

[[fleet]]
name = "one"
system = "h100-sxm:1"
quant = "bf16"
tp = 1

[monte_carlo]
samples = 10
"""

SPACE = """\
[study]
name = "corpus"
objectives = ["tokens_per_s_per_user"]
constraints = ["tdp_w <= 700"]
n_trials = 2
seed = 1

[base]
model = "llama-3.1-8b"
quant = "fp8"
input_len = 128
output_len = 32
chips = 1
batch = 1

[base.chip]
node = "N4"
link_bytes_per_s = "200 GB/s"

[chip]
peak_bf16_flops_per_s = { choices = [400e12, 800e12] }
hbm_stacks = { choices = [2, 4] }
"""

TRACE = "arrival_s,input_len,output_len\n0.0,8,8\n0.1,8,8\n0.2,16,4\n"
MEAS_ROW = (
    "X001,NVIDIA H100-SXM-80GB,1,Llama-3.1-8B,BF16,TP1,synthetic,128,128,1,"
    "output_tokens_per_s,100,tok/s,test,test"
)


@dataclass
class Case:
    id: str
    argv: str | list[str]  # a string is split on spaces; "{d}" is the case's folder
    names: str  # the flag or field the one-line message must name
    files: dict[str, str | bytes] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()
    readonly: tuple[str, ...] = ()  # folders made read-only (skipped where that cannot stop root)
    xfail: str | None = None


def _sub(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _scen(old: str, new: str) -> dict[str, str]:
    return {"s.toml": _sub(SCENARIO, old, new)}


def _chip(old: str, new: str) -> dict[str, str]:
    return {"chip.toml": _sub(TINY_CHIP, old, new)}


def _model(old: str, new: str) -> dict[str, str]:
    return {"m.toml": _sub(TINY_MODEL, old, new)}


def _tco(old: str, new: str) -> dict[str, str]:
    return {"t.toml": _sub(TCO, old, new)}


def _space(old: str, new: str) -> dict[str, str]:
    return {"sp.toml": _sub(SPACE, old, new)}


def _meas(row: str) -> dict[str, str]:
    return {"m.csv": MEAS_HEADER + "\n" + row + "\n"}


BINARY = bytes(range(256)) * 4


def _predict_flags(add) -> None:
    """Predict flags."""
    for flag in ("--tp", "--pp", "--dp", "--ep"):
        for v in ("0", "-1", "nan", "two", "1.5", "99999999999999999999999"):
            base = PREDICT.replace("--tp 1", "") if flag == "--tp" else PREDICT
            add(Case(f"predict{flag}={v}", f"{base} {flag} {v}", flag))
    for v in ("0", "-3", "nan", "inf", "abc", "1e3", "", "max2"):
        add(Case(f"predict--batch={v!r}", [*PREDICT.replace("--batch 1", "").split(),
                                          "--batch", v], "--batch"))  # fmt: skip
    for flag in ("--input-len", "--output-len"):
        for v in (
            "0",
            "-8",
            "nan",
            "inf",
            "1.5",
            "lognormal:inf:0",
            "lognormal:nan:1",
            "uniform:5:2",
            "bogus:1",
            "99999999999",
        ):
            base = PREDICT.replace(f"{flag} 8", "")
            if v.startswith(("lognormal", "uniform")):  # a distribution needs --batch max
                base = base.replace("--batch 1", "--batch max")
            argv = [*base.split(), flag, v]
            add(Case(f"predict{flag}={v}", argv, flag))
    for v in ("nan", "-1", "inf", "-inf", "x"):
        add(Case(f"predict--routing-skew={v}", f"{PREDICT} --routing-skew {v}", "--routing-skew"))
    for v in ("0", "-5", "nan", "inf"):
        add(Case(f"predict--tpot-slo-ms={v}",
                 PREDICT.replace("--batch 1", "--batch max") + f" --tpot-slo-ms {v}",
                 "--tpot-slo-ms"))  # fmt: skip
    add(Case("predict--system=h100-sxm:0", PREDICT.replace("h100-sxm:1", "h100-sxm:0"),
             "--system"))  # fmt: skip
    add(Case("predict--system=h100-sxm:-4", PREDICT.replace("h100-sxm:1", "h100-sxm:-4"),
             "--system"))  # fmt: skip
    add(Case("predict--system=h100-sxm:x", PREDICT.replace("h100-sxm:1", "h100-sxm:x"),
             "--system"))  # fmt: skip
    add(Case("predict--system=dir", PREDICT.replace("h100-sxm:1", "{d}/c.toml:1"), "c.toml",
             dirs=("c.toml",)))  # fmt: skip
    add(Case("predict--system=binary", PREDICT.replace("h100-sxm:1", "{d}/c.toml:1"),
             "c.toml", files={"c.toml": BINARY}))  # fmt: skip
    add(Case("predict--system=missing-file", PREDICT.replace("h100-sxm:1", "{d}/none.toml:1"),
             "none.toml"))  # fmt: skip
    add(Case("predict--system=newline", [*PREDICT.replace("--system h100-sxm:1", "").split(),
                                        "--system", "h100\n-sxm:1"], "--system"))  # fmt: skip
    add(Case("predict--model=newline", [*PREDICT.replace("--model tiny", "").split(),
                                       "--model", "ti\nny"], "model"))  # fmt: skip
    add(Case("predict--model=traversal", PREDICT.replace("--model tiny", "--model ../../etc"),
             "model"))  # fmt: skip
    add(Case("predict--model=dir", PREDICT.replace("--model tiny", "--model {d}/m.toml"),
             "m.toml", dirs=("m.toml",)))  # fmt: skip
    add(Case("predict--model=binary", PREDICT.replace("--model tiny", "--model {d}/m.toml"),
             "m.toml", files={"m.toml": BINARY}))  # fmt: skip
    add(Case("predict--model=missing", PREDICT.replace("--model tiny", "--model {d}/no.toml"),
             "no.toml"))  # fmt: skip
    add(Case("predict--quant=fp3", PREDICT.replace("bf16", "fp3"), "quant"))
    add(Case("predict--engine=bogus", f"{PREDICT} --engine bogus", "--engine"))
    add(Case("predict--objective=bogus", f"{PREDICT} --objective bogus", "--objective"))
    add(Case("predict--scenario=missing", f"{PREDICT} --scenario {{d}}/none.toml", "none.toml"))
    add(Case("predict--scenario=dir", f"{PREDICT} --scenario {{d}}/sd", "sd", dirs=("sd",)))
    add(Case("predict--scenario=binary", f"{PREDICT} --scenario {{d}}/b.toml", "b.toml",
             files={"b.toml": BINARY}))  # fmt: skip
    add(Case("predict--trace=parent-is-file", f"{PREDICT} --trace {{d}}/f.txt/t.json",
             "--trace", files={"f.txt": "x"}))  # fmt: skip
    add(Case("predict--trace=readonly", f"{PREDICT} --trace {{d}}/ro/t.json", "--trace",
             dirs=("ro",), readonly=("ro",)))  # fmt: skip
    add(Case("predict--trace=dir", f"{PREDICT} --trace {{d}}/td", "--trace", dirs=("td",)))
    add(Case("predict--bogus-flag", f"{PREDICT} --bogus", "--bogus"))


def _predict_scenario_toml(add) -> None:
    """Predict scenario TOML."""
    P_SC = "predict --scenario {d}/s.toml"
    for name, old, new, names in [
        ("batch=0", "batch = 1", "batch = 0", "batch"),
        ("batch=-1", "batch = 1", "batch = -1", "batch"),
        ("batch=nan", "batch = 1", "batch = nan", "batch"),
        ("batch=str", "batch = 1", 'batch = "lots"', "batch"),
        ("input_len=0", "input_len = 8\noutput", "input_len = 0\noutput", "input_len"),
        ("input_len=inf", "input_len = 8\noutput", "input_len = inf\noutput", "input_len"),
        ("tp=0", "tp = 1", "tp = 0", "parallelism.tp"),
        ("tp=str", "tp = 1", 'tp = "one"', "parallelism.tp"),
        ("unknown-key", "batch = 1", "batch = 1\nbatchh = 2", "batchh"),
        ("routing_skew=nan", "batch = 1", "batch = 1\nrouting_skew = nan", "routing_skew"),
        ("routing_skew=-1", "batch = 1", "batch = 1\nrouting_skew = -1", "routing_skew"),
        ("tpot_slo_ms=0", "batch = 1", "batch = 1\ntpot_slo_ms = 0", "tpot_slo_ms"),
        ("efficiency=nan", "batch = 1", "batch = 1\n[efficiency]\nmemory = nan", "memory"),
        ("efficiency=unknown", "batch = 1", "batch = 1\n[efficiency]\nspeed = 2", "speed"),
        ("invalid-toml", "batch = 1", "batch = = 1", "s.toml"),
        (
            "chip-relative-missing",
            'system = "h100-sxm:1"',
            'chip = "nochip.toml"\ncount = 1',
            "nochip.toml",
        ),
        ("count=0", 'system = "h100-sxm:1"', 'chip = "c.toml"\ncount = 0', "count"),
    ]:
        add(Case(f"predict-scenario-{name}", P_SC, names, files=_scen(old, new)))


def _chip_toml_custom_chip(add) -> None:
    """Chip TOML (custom chip)."""
    C = PREDICT.replace("h100-sxm:1", "{d}/chip.toml:1")
    for name, old, new, names in [
        ("latency=inf", 'latency_s = ["0 s"', "latency_s = [inf", "latency_s"),
        ("latency=nan", 'latency_s = ["0 s"', "latency_s = [nan", "latency_s"),
        ("latency=-1", 'latency_s = ["0 s"', 'latency_s = ["-1 s"', "latency_s"),
        ("peak=inf", 'bf16 = ["1 TFLOP/s"', "bf16 = [inf", "peak_flops_per_s"),
        ("peak=nan", 'bf16 = ["1 TFLOP/s"', "bf16 = [nan", "peak_flops_per_s"),
        ("peak=0", 'bf16 = ["1 TFLOP/s"', "bf16 = [0", "peak_flops_per_s"),
        ("tdp=inf", 'tdp_w = ["100 W"', "tdp_w = [inf", "tdp_w"),
        ("tdp=0", 'tdp_w = ["100 W"', "tdp_w = [0", "tdp_w"),
        ("tdp=str", 'tdp_w = ["100 W"', 'tdp_w = ["lots"', "tdp_w"),
        ("tdp=wrong-unit", 'tdp_w = ["100 W"', 'tdp_w = ["100 GB"', "tdp_w"),
        (
            "link-bw=-1",
            'bandwidth_bytes_per_s = ["100 GB/s"',
            "bandwidth_bytes_per_s = [-1",
            "bandwidth_bytes_per_s",
        ),
        (
            "link-bw=inf",
            'bandwidth_bytes_per_s = ["100 GB/s"',
            "bandwidth_bytes_per_s = [inf",
            "bandwidth_bytes_per_s",
        ),
        (
            "mem-bw=nan",
            'bandwidth_bytes_per_s = ["10 GB/s"',
            "bandwidth_bytes_per_s = [nan",
            "bandwidth_bytes_per_s",
        ),
        ("capacity=inf", 'capacity_bytes = ["1 GB"', "capacity_bytes = [inf", "capacity_bytes"),
        (
            "energy=-1",
            'energy_j_per_flop = ["1 pJ/FLOP"',
            "energy_j_per_flop = [-1",
            "energy_j_per_flop",
        ),
        (
            "units=0",
            'units = [1, "assumption", "t"]\ntile_rows',
            'units = [0, "assumption", "t"]\ntile_rows',
            "units",
        ),
        ("domain=0", "domain_chips = [8", "domain_chips = [0", "domain_chips"),
        ("unknown-key", 'vendor = "test"', 'vendor = "test"\nvendorr = "x"', "vendorr"),
        ("idle>tdp", 'idle_w = ["10 W"', 'idle_w = ["1000 W"', "idle_w"),
        ("price=-1", 'vendor = "test"', 'vendor = "test"\nprice_usd = -1', "price_usd"),
    ]:
        add(Case(f"chip-{name}", C, names, files=_chip(old, new)))
    # zero link bandwidth between chips that must talk (2 chips, TP2)
    two = C.replace("chip.toml:1", "chip.toml:2").replace("--tp 1", "--tp 2")
    add(
        Case(
            "chip-link-bw=0-two-chips",
            two,
            "bandwidth_bytes_per_s",
            files=_chip('bandwidth_bytes_per_s = ["100 GB/s"', "bandwidth_bytes_per_s = [0"),
        )
    )


def _model_toml(add) -> None:
    """Model TOML."""
    M = PREDICT.replace("--model tiny", "--model {d}/m.toml")
    for name, old, new, names in [
        ("hidden=0", "hidden_size = 64", "hidden_size = 0", "hidden_size"),
        ("hidden=-1", "hidden_size = 64", "hidden_size = -1", "hidden_size"),
        ("hidden=nan", "hidden_size = 64", "hidden_size = nan", "hidden_size"),
        ("hidden=str", "hidden_size = 64", 'hidden_size = "many"', "hidden_size"),
        ("layers=0", "num_layers = 2", "num_layers = 0", "num_layers"),
        ("heads=0", "num_heads = 4", "num_heads = 0", "num_heads"),
        ("context=0", "max_context = 512", "max_context = 0", "max_context"),
        ("ffn=inf", "ffn_size = 128", "ffn_size = inf", "ffn_size"),
        ("unknown-key", "vocab_size = 256", "vocab_size = 256\nvocabsize = 1", "vocabsize"),
        ("kind=bogus", 'kind = "gqa"', 'kind = "bogus"', "kind"),
    ]:
        add(Case(f"model-{name}", M, names, files=_model(old, new)))


def _serve_flags(add) -> None:
    """Serve flags."""
    for v in ("0", "-1", "nan", "inf", "-inf", "fast"):
        add(Case(f"serve--rate={v}", SERVE.replace("--rate 10", f"--rate {v}"), "--rate"))
    for v in ("0", "-5", "nan", "inf"):
        add(Case(f"serve--cv={v}", f"{SERVE} --arrivals gamma --cv {v}", "--cv"))
    for v in ("0", "-2", "x"):
        add(Case(f"serve--users={v}", f"{SERVE} --arrivals closed --users {v}", "--users"))
    for v in ("0", "-1", "1e12", "lots"):
        add(Case(f"serve--requests={v}", SERVE.replace("--requests 20", f"--requests {v}"),
                 "--requests"))  # fmt: skip
    for flag in ("--max-batch", "--max-tokens"):
        for v in ("0", "-1"):
            add(Case(f"serve{flag}={v}", f"{SERVE} {flag} {v}", flag))
    for v in ("nan", "-0.1", "1", "1.5", "inf"):
        add(Case(f"serve--prefix-hit-rate={v}", f"{SERVE} --prefix-hit-rate {v}",
                 "--prefix-hit-rate"))  # fmt: skip
    for v in ("0:1", "1:0", "a:b", "1:2:3", "-1:2"):
        add(Case(f"serve--pd-ratio={v}", f"{SERVE} --scheduler disaggregated --pd-ratio {v}",
                 "--pd-ratio"))  # fmt: skip
    add(Case("serve--scheduler=prefill_only", f"{SERVE} --scheduler prefill_only",
             "--scheduler"))  # fmt: skip
    add(Case("serve--scheduler=empty", [*SERVE.split(), "--scheduler", ""], "--scheduler"))
    for v in ("0", "-1", "nan"):
        add(Case(f"serve--slo-tpot-ms={v}", f"{SERVE} --slo-tpot-ms {v}", "--slo-tpot-ms"))
        add(Case(f"serve--slo-ttft-ms={v}", f"{SERVE} --slo-ttft-ms {v}", "--slo-ttft-ms"))
    for v in ("-1", "2e30"):
        add(Case(f"serve--seed={v}", f"{SERVE} --seed {v}", "--seed"))
    for flag in ("--input-len", "--output-len"):
        for v in (
            "lognormal:inf:0",
            "lognormal:0:1",
            "lognormal:1e400:1",
            "uniform:0:5",
            "0",
            "nan",
            "file:{d}/none.txt",
            "file:{d}/lens.txt",
            "file:{d}/bin.txt",
            "file:{d}/ld",
            "file:{d}/neg.txt",
        ):
            add(Case(f"serve{flag}={v.replace('{d}/', '')}",
                     SERVE.replace(f"{flag} 8", f"{flag} {v}"), flag,
                     files={"lens.txt": "12\nsecret-token\n", "bin.txt": BINARY,
                            "neg.txt": "5\n-3\n"},
                     dirs=("ld",)))  # fmt: skip
    add(Case("serve--input-len>context", SERVE.replace("--input-len 8", "--input-len 100000"),
             "--input-len"))  # fmt: skip
    add(Case("serve--plot=parent-is-file", f"{SERVE} --plot {{d}}/f.txt/plots", "--plot",
             files={"f.txt": "x"}))  # fmt: skip
    add(Case("serve--plot=readonly", f"{SERVE} --plot {{d}}/ro/plots", "--plot",
             dirs=("ro",), readonly=("ro",)))  # fmt: skip
    add(Case("serve--rate-search-no-slo", f"{SERVE} --rate-search", "slo"))


def _trace_csv(add) -> None:
    """Trace CSV."""
    T = SERVE + " --arrivals trace --trace-file {d}/t.csv"
    for name, content, names in [
        ("nan-arrival", TRACE.replace("0.1,8,8", "nan,8,8"), "arrival_s"),
        ("inf-arrival", TRACE.replace("0.1,8,8", "inf,8,8"), "arrival_s"),
        ("neg-arrival", TRACE.replace("0.1,8,8", "-1,8,8"), "arrival_s"),
        ("text-arrival", TRACE.replace("0.1,8,8", "soon,8,8"), "arrival_s"),
        ("zero-input", TRACE.replace("0.1,8,8", "0.1,0,8"), "input_len"),
        ("neg-output", TRACE.replace("0.1,8,8", "0.1,8,-2"), "output_len"),
        ("float-input", TRACE.replace("0.1,8,8", "0.1,8.5,8"), "input_len"),
        ("missing-col", "arrival_s,input_len\n0.0,8\n", "output_len"),
        ("empty", "", "trace"),
        ("header-only", "arrival_s,input_len,output_len\n", "trace"),
        ("binary", BINARY, "trace"),
        ("short-row", TRACE + "0.3,8\n", "output_len"),
        ("huge-len", TRACE.replace("0.1,8,8", "0.1,99999999999,8"), "input_len"),
    ]:
        add(Case(f"trace-{name}", T, names, files={"t.csv": content}))
    add(Case("trace-missing", T, "trace"))
    add(Case("trace-dir", T, "trace", dirs=("t.csv",)))
    add(Case("trace-no-file-flag", f"{SERVE} --arrivals trace", "--trace-file"))


def _serve_scenario_toml(add) -> None:
    """Serve scenario TOML."""
    S_SC = "serve --scenario {d}/s.toml"
    for name, old, new, names in [
        ("rate=nan", "rate = 10.0", "rate = nan", "serving.rate"),
        ("rate=0", "rate = 10.0", "rate = 0", "serving.rate"),
        ("rate=str", "rate = 10.0", 'rate = "fast"', "serving.rate"),
        ("requests=0", "requests = 20", "requests = 0", "serving.requests"),
        ("cv=0", "rate = 10.0", 'rate = 10.0\narrivals = "gamma"\ncv = 0', "serving.cv"),
        ("users=0", "rate = 10.0", 'arrivals = "closed"\nusers = 0', "serving.users"),
        ("scheduler=bogus", "rate = 10.0", 'rate = 10.0\nscheduler = "bogus"', "scheduler"),
        (
            "input_len=lognormal-inf",
            "input_len = 8\noutput_len = 8\n",
            'input_len = "lognormal:inf:0"\noutput_len = 8\n',
            "input_len",
        ),
        (
            "spec-k-mismatch",
            "rate = 10.0",
            "rate = 10.0\n[serving.spec]\nk = 2\nacceptance = [0.5]",
            "acceptance",
        ),
        (
            "spec-acc>1",
            "rate = 10.0",
            "rate = 10.0\n[serving.spec]\nk = 1\nacceptance = [1.5]",
            "acceptance",
        ),
        (
            "trace-relative-missing",
            "rate = 10.0",
            'arrivals = "trace"\ntrace = "nope.csv"',
            "nope.csv",
        ),
        ("prefix=nan", "rate = 10.0", "rate = 10.0\nprefix_hit_rate = nan", "prefix_hit_rate"),
        ("seed=-1", "rate = 10.0", "rate = 10.0\nseed = -1", "seed"),
    ]:
        add(Case(f"serve-scenario-{name}", S_SC, names, files=_scen(old, new)))


def _tco_toml(add) -> None:
    """TCO TOML."""
    TC = "tco {d}/t.toml"
    for name, old, new, names in [
        (
            "load=0",
            "load_output_tokens_per_s = 1000",
            "load_output_tokens_per_s = 0",
            "load_output_tokens_per_s",
        ),
        (
            "load=-1",
            "load_output_tokens_per_s = 1000",
            "load_output_tokens_per_s = -1",
            "load_output_tokens_per_s",
        ),
        (
            "load=nan",
            "load_output_tokens_per_s = 1000",
            "load_output_tokens_per_s = nan",
            "load_output_tokens_per_s",
        ),
        (
            "load=inf",
            "load_output_tokens_per_s = 1000",
            "load_output_tokens_per_s = inf",
            "load_output_tokens_per_s",
        ),
        (
            "load=str",
            "load_output_tokens_per_s = 1000",
            'load_output_tokens_per_s = "many"',
            "load_output_tokens_per_s",
        ),
        (
            "tps-user=0",
            "tokens_per_s_per_user = 10",
            "tokens_per_s_per_user = 0",
            "tokens_per_s_per_user",
        ),
        ("profile=[]", "daily_profile = [1.0, 2.0]", "daily_profile = []", "daily_profile"),
        (
            "profile=zeros",
            "daily_profile = [1.0, 2.0]",
            "daily_profile = [0.0, 0.0]",
            "daily_profile",
        ),
        (
            "profile=neg",
            "daily_profile = [1.0, 2.0]",
            "daily_profile = [-1.0, 2.0]",
            "daily_profile",
        ),
        (
            "profile=nan",
            "daily_profile = [1.0, 2.0]",
            "daily_profile = [nan, 2.0]",
            "daily_profile",
        ),
        ("profile=str", "daily_profile = [1.0, 2.0]", 'daily_profile = ["busy"]', "daily_profile"),
        ("samples=0", "samples = 10", "samples = 0", "monte_carlo.samples"),
        ("samples=-1", "samples = 10", "samples = -1", "monte_carlo.samples"),
        ("samples=huge", "samples = 10", "samples = 1000000000000", "monte_carlo.samples"),
        ("samples=str", "samples = 10", 'samples = "many"', "monte_carlo.samples"),
        ("price=-1", 'quant = "bf16"', 'quant = "bf16"\nprice_usd = -1', "price_usd"),
        ("price=nan", 'quant = "bf16"', 'quant = "bf16"\nprice_usd = nan', "price_usd"),
        ("price=str", 'quant = "bf16"', 'quant = "bf16"\nprice_usd = "cheap"', "price_usd"),
        ("kwh=-1", "[monte_carlo]", "[tco]\nusd_per_kwh = -0.1\n[monte_carlo]", "usd_per_kwh"),
        ("pue=0.5", "[monte_carlo]", "[tco]\npue = 0.5\n[monte_carlo]", "pue"),
        ("years=0", "[monte_carlo]", "[tco]\nyears = 0\n[monte_carlo]", "years"),
        ("years=inf", "[monte_carlo]", "[tco]\nyears = inf\n[monte_carlo]", "years"),
        (
            "fleet-tco=-1",
            'quant = "bf16"',
            'quant = "bf16"\ntco = { host_usd_per_chip = -5 }',
            "host_usd_per_chip",
        ),
        (
            "uncertainty=bad-key",
            "[monte_carlo]",
            "[uncertainty]\nspeed = [1, 2]\n[monte_carlo]",
            "uncertainty.speed",
        ),
        (
            "uncertainty=low>high",
            "[monte_carlo]",
            "[uncertainty]\npue = [2.0, 1.2]\n[monte_carlo]",
            "uncertainty.pue",
        ),
        (
            "uncertainty=neg-scale",
            "[monte_carlo]",
            "[uncertainty]\nload_scale = [-1, 2]\n[monte_carlo]",
            "load_scale",
        ),
        ("fleet-tp=0", "tp = 1", "tp = 0", "tp"),
        ("fleet-system=bad", 'system = "h100-sxm:1"', 'system = "h100-sxm:0"', "system"),
        (
            "fleet-none",
            '[[fleet]]\nname = "one"\nsystem = "h100-sxm:1"\nquant = "bf16"\ntp = 1\n',
            "",
            "fleet",
        ),
        (
            "fleet-dup",
            "[monte_carlo]",
            '[[fleet]]\nname = "one"\nsystem = "h100-sxm:1"\n[monte_carlo]',
            "name",
        ),
        ("input_len=lognormal-inf", "input_len = 8", 'input_len = "lognormal:inf:0"', "input_len"),
        (
            "input_len=file-outside",
            "input_len = 8",
            'input_len = "file:/proc/sys/kernel/pid_max"',
            "input_len",
        ),
        (
            "payback-ref",
            "[monte_carlo]",
            '[payback]\nreference = "nope"\n[monte_carlo]',
            "payback.reference",
        ),
        (
            "design-link=0",
            '[[fleet]]\nname = "one"\nsystem = "h100-sxm:1"\n',
            '[[fleet]]\nname = "one"\nchips = 2\n[fleet.design]\nnode = "N4"\n'
            'peak_bf16_flops_per_s = "800 TFLOP/s"\nsram_bytes = "256 MB"\nhbm_stacks = 4\n'
            'link_bytes_per_s = 0\n[[fleet]]\nname = "two"\nsystem = "h100-sxm:1"\n',
            "link_bytes_per_s",
        ),
        (
            "api-price=-1",
            "tokens_per_s_per_user = 10",
            "tokens_per_s_per_user = 10\napi_usd_per_m_output_tokens = -1",
            "api_usd_per_m_output_tokens",
        ),
        ("unknown-key", "[scenario]", "[scenario]\nloadd = 5", "loadd"),
    ]:
        add(Case(f"tco-{name}", TC, names, files=_tco(old, new)))
    add(Case("tco-missing", "tco {d}/none.toml", "none.toml"))
    add(Case("tco-dir", "tco {d}/td", "td", dirs=("td",)))
    add(Case("tco-binary", "tco {d}/t.toml", "t.toml", files={"t.toml": BINARY}))
    add(Case("tco-empty", "tco {d}/t.toml", "scenario", files={"t.toml": ""}))
    add(Case("tco--report=parent-is-file", "tco {d}/t.toml --report {d}/f.txt/r.md", "--report",
             files={"t.toml": TCO, "f.txt": "x"}))  # fmt: skip
    add(Case("tco--report=readonly", "tco {d}/t.toml --report {d}/ro/r.md", "--report",
             files={"t.toml": TCO}, dirs=("ro",), readonly=("ro",)))  # fmt: skip
    add(Case("tco--report=bad-suffix", "tco {d}/t.toml --report {d}/r.pdf", "--report",
             files={"t.toml": TCO}))  # fmt: skip


def _search_sweep(add) -> None:
    """Search / sweep."""
    SW = "sweep {d}/sp.toml --out {d}/o.csv"
    SE = "search {d}/sp.toml --n-trials 1 --out {d}/out"
    for name, old, new, names in [
        ("batch=0", "chips = 1\nbatch = 1", "chips = 1\nbatch = 0", "base.batch"),
        ("stacks=str", "[2, 4]", '["many"]', "hbm_stacks"),
        (
            "stacks-low>high",
            "{ choices = [2, 4] }",
            "{ low = 4, high = 2, step = 1 }",
            "hbm_stacks",
        ),
        ("peak=nan", "[400e12, 800e12]", "[nan, 800e12]", "peak_bf16_flops_per_s"),
        ("peak=neg", "[400e12, 800e12]", "[-400e12, 800e12]", "peak_bf16_flops_per_s"),
        (
            "unknown-dim",
            "hbm_stacks = { choices",
            "sram_bytez = { choices = [1] }\nhbm_stacks = { choices",
            "sram_bytez",
        ),
        ("objective=bogus", '["tokens_per_s_per_user"]', '["speed"]', "objectives"),
        ("constraint=bogus", '"tdp_w <= 700"', '"tdp_w <= lots"', "constraints"),
        ("link=-1", 'link_bytes_per_s = "200 GB/s"', "link_bytes_per_s = -1", "link_bytes_per_s"),
        ("input_len=0", "input_len = 128", "input_len = 0", "input_len"),
    ]:
        add(Case(f"sweep-{name}", SW, names, files=_space(old, new)))
        add(Case(f"search-{name}", SE, names, files=_space(old, new)))
    for cmd in (SW, SE):
        k = cmd.split()[0]
        add(Case(f"{k}-missing", cmd, "sp.toml"))
        add(Case(f"{k}-dir", cmd, "sp.toml", dirs=("sp.toml",)))
        add(Case(f"{k}-binary", cmd, "sp.toml", files={"sp.toml": BINARY}))
    for v in ("0", "-1", "x"):
        add(Case(f"search--n-trials={v}", SE.replace("--n-trials 1", f"--n-trials {v}"),
                 "--n-trials", files={"sp.toml": SPACE}))  # fmt: skip
    for v in ("0", "-2"):
        add(Case(f"search--workers={v}", f"{SE} --workers {v}", "--workers",
                 files={"sp.toml": SPACE}))  # fmt: skip
    add(Case("search--confirm=-1", f"{SE} --confirm -1", "--confirm", files={"sp.toml": SPACE}))
    add(Case("search--seed=-1", f"{SE} --seed -1", "--seed", files={"sp.toml": SPACE}))
    add(Case("sweep--out=parent-is-file", "sweep {d}/sp.toml --out {d}/f.txt/o.csv", "--out",
             files={"sp.toml": SPACE, "f.txt": "x"}))  # fmt: skip
    add(Case("sweep--out=bad-suffix", "sweep {d}/sp.toml --out {d}/o.xlsx", "--out",
             files={"sp.toml": SPACE}))  # fmt: skip
    add(Case("sweep--out=readonly", "sweep {d}/sp.toml --out {d}/ro/o.csv", "--out",
             files={"sp.toml": SPACE}, dirs=("ro",), readonly=("ro",)))  # fmt: skip


def _validate_calibrate(add) -> None:
    """Validate / calibrate."""
    V = "validate --measurements {d}/m.csv --only-measurements"
    CA = "calibrate --measurements {d}/m.csv --only-measurements --out {d}/fit.toml"
    for name, row, names in [
        ("value=text", MEAS_ROW.replace(",100,", ",fast,"), "value"),
        ("value=nan", MEAS_ROW.replace(",100,", ",nan,"), "value"),
        ("value=inf", MEAS_ROW.replace(",100,", ",inf,"), "value"),
        ("value=-1", MEAS_ROW.replace(",100,", ",-1,"), "value"),
        ("value=0", MEAS_ROW.replace(",100,", ",0,"), "value"),
        ("value=empty", MEAS_ROW.replace(",100,", ",,"), "value"),
    ]:
        add(Case(f"validate-{name}", V, names, files=_meas(row)))
        add(Case(f"calibrate-{name}", CA, names, files=_meas(row)))
    for k, cmd in (("validate", V), ("calibrate", CA)):
        add(Case(f"{k}-missing", cmd, "--measurements"))
        add(Case(f"{k}-dir", cmd, "--measurements", dirs=("m.csv",)))
        add(Case(f"{k}-binary", cmd, "--measurements", files={"m.csv": BINARY}))
        add(Case(f"{k}-empty", cmd, "--measurements", files={"m.csv": ""}))
        add(Case(f"{k}-no-value-col", cmd, "value",
                 files={"m.csv": "id,hardware,metric\nX,H100,ttft_ms_mean\n"}))  # fmt: skip
        add(Case(f"{k}-only-without-file", f"{k} --only-measurements", "--measurements"))
    add(Case("validate--csv=parent-is-file", "validate --csv {d}/f.txt/rows.csv", "--csv",
             files={"f.txt": "x"}))  # fmt: skip
    add(Case("validate--csv=readonly", "validate --csv {d}/ro/rows.csv", "--csv",
             dirs=("ro",), readonly=("ro",)))  # fmt: skip
    add(Case("validate--csv=dir", "validate --csv {d}/cd", "--csv", dirs=("cd",)))
    add(Case("validate--workers-no-loo", "validate --workers 2", "--workers"))
    add(Case("validate--loo--workers=0", "validate --loo --workers 0", "--workers"))
    add(Case("calibrate--out=parent-is-file", "calibrate --out {d}/f.txt/fit.toml", "--out",
             files={"f.txt": "x"}))  # fmt: skip
    add(Case("calibrate--out=dir", "calibrate --out {d}/od", "--out", dirs=("od",)))
    add(Case("calibrate--out=readonly", "calibrate --out {d}/ro/fit.toml", "--out",
             dirs=("ro",), readonly=("ro",)))  # fmt: skip


def _physical_show_presets(add) -> None:
    """Physical / show / presets."""
    add(Case("physical--bogus", "physical --bogus", "--bogus"))
    add(Case("physical-extra-arg", "physical extra", "extra"))
    add(Case("show-unknown", "show nope", "nope"))
    add(Case("show-traversal", "show ../../etc/passwd", "passwd"))
    add(Case("show-newline", ["show", "h100\nsxm"], "h100"))
    add(Case("show-empty", ["show", ""], "preset"))
    add(Case("show-toml-dir", "show {d}/x.toml", "x.toml", dirs=("x.toml",)))
    add(Case("presets--bogus", "presets --bogus", "--bogus"))
    add(Case("no-command", "", "command"))
    add(Case("unknown-command", "frobnicate", "frobnicate"))


def _cases() -> list[Case]:
    c: list[Case] = []
    groups = (
        _predict_flags,
        _predict_scenario_toml,
        _chip_toml_custom_chip,
        _model_toml,
        _serve_flags,
        _trace_csv,
        _serve_scenario_toml,
        _tco_toml,
        _search_sweep,
        _validate_calibrate,
        _physical_show_presets,
    )
    for group in groups:
        group(c.append)
    return c


CASES = _cases()


def materialize(case: Case, d: Path) -> list[str]:
    """Write the case's files and folders under ``d``; the argv with ``{d}`` filled in."""
    for name in case.dirs:
        (d / name).mkdir(parents=True, exist_ok=True)
    for name, content in case.files.items():
        p = d / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    for name in case.readonly:
        (d / name).chmod(0o500)
    argv = case.argv.split() if isinstance(case.argv, str) else case.argv
    return [a.replace("{d}", str(d)) for a in argv]


def _writable_anyway(case: Case, d: Path) -> bool:
    """A read-only folder does not stop root: such a case cannot fail here."""
    for name in case.readonly:
        probe = d / name / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            continue
        probe.unlink()
        return True
    return False


def assert_one_line(rc: int, err: str, names: str) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    assert rc == 2, f"exit {rc}: {err!r}"
    assert len(lines) == 1, f"{len(lines)} lines: {err!r}"
    assert names.lower() in lines[0].lower(), f"{names!r} not named: {lines[0]!r}"
    assert "nan" not in lines[0].split(":")[0].lower()


def test_corpus_size():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=False, reason=c.xfail)] if c.xfail else []
        )
        for c in CASES
    ],
)
def test_bad_input(case: Case, tmp_path: Path, capsys):
    argv = materialize(case, tmp_path)
    if case.readonly and _writable_anyway(case, tmp_path):
        pytest.skip("running as root: a read-only folder does not stop the write")
    try:
        rc = main(argv)
    finally:
        for name in case.readonly:
            (tmp_path / name).chmod(0o700)
    out, err = capsys.readouterr()
    assert_one_line(rc, err, case.names)
    assert "secret-token" not in err + out, "file content echoed"


# --------------------------------------------------------------------------- hypothesis

BAD_POSITIVE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0]),
    st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
)
BAD_NON_NEGATIVE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False),
)
FUZZ = settings(max_examples=12, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err


@FUZZ
@given(x=BAD_POSITIVE)
def test_fuzz_serve_rate(x, capsys):
    argv = [*SERVE.replace("--rate 10", "").split(), "--rate", repr(x)]
    assert_one_line(*_run(argv, capsys), "--rate")


@FUZZ
@given(x=BAD_POSITIVE)
def test_fuzz_serve_cv(x, capsys):
    argv = [*SERVE.split(), "--arrivals", "gamma", "--cv", repr(x)]
    assert_one_line(*_run(argv, capsys), "--cv")


@FUZZ
@given(x=BAD_NON_NEGATIVE)
def test_fuzz_routing_skew(x, capsys):
    assert_one_line(*_run([*PREDICT.split(), "--routing-skew", repr(x)], capsys),
                    "--routing-skew")  # fmt: skip


@FUZZ
@given(x=BAD_POSITIVE)
def test_fuzz_tpot_slo(x, capsys):
    argv = [*PREDICT.replace("--batch 1", "--batch max").split(), "--tpot-slo-ms", repr(x)]
    assert_one_line(*_run(argv, capsys), "--tpot-slo-ms")


@FUZZ
@given(x=st.one_of(BAD_NON_NEGATIVE, st.floats(min_value=1.0, allow_nan=False)))
def test_fuzz_prefix_hit_rate(x, capsys):
    assert_one_line(*_run([*SERVE.split(), "--prefix-hit-rate", repr(x)], capsys),
                    "--prefix-hit-rate")  # fmt: skip


@FUZZ
@given(n=st.integers(max_value=0), flag=st.sampled_from(["--tp", "--pp", "--dp", "--ep"]))
def test_fuzz_degrees(n, flag, capsys):
    argv = [*PREDICT.replace("--tp 1", "").split(), flag, str(n)]
    assert_one_line(*_run(argv, capsys), flag)


@FUZZ
@given(x=BAD_POSITIVE, key=st.sampled_from(["load_output_tokens_per_s", "tokens_per_s_per_user"]))
def test_fuzz_tco_scenario_numbers(x, key, tmp_path_factory, capsys):
    d = tmp_path_factory.mktemp("tco")
    value = repr(x).replace("inf", "inf").replace("nan", "nan")
    text = "\n".join(f"{key} = {value}" if line.startswith(key + " ") else line
                     for line in TCO.splitlines())  # fmt: skip
    (d / "t.toml").write_text(text)
    assert_one_line(*_run(["tco", str(d / "t.toml")], capsys), key)


def test_no_root_assumption_for_parent_is_file(tmp_path):
    """The always-failing variant of the unwritable output (a path under a regular file) fails
    for root too; the read-only-folder variants are skipped for root where the write works."""
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(OSError):
        (tmp_path / "f.txt" / "o.csv").write_text("x")
    assert os.path.exists(tmp_path / "f.txt")
