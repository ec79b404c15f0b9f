"""Automatic mapping (sim.mapping through predict/serve) and the generalized ``--ep``."""

import json

import pytest

from arch.base import ConfigError
from explore.api.predict import predict
from explore.cli import main
from sim.evaluate import resolve_workload
from sim.mapping import OBJECTIVES, choose_mapping, enumerate_mappings, smallest_sram_system
from workloads.graph import build_graph
from workloads.parallel import Parallelism
from workloads.presets import load_model

ARGS = {"input_len": 256, "output_len": 32}


def _all_mappings_8_chips():
    """Every (tp, pp, dp) of 8 chips: tp, pp powers of two, dp the rest (llama-3.1-8b: 32 heads,
    8 KV heads, 32 layers, so all 10 are valid)."""
    return [(t, p, 8 // (t * p)) for t in (1, 2, 4, 8) for p in (1, 2, 4, 8) if t * p <= 8]


def _brute_force(objective: str, batch):
    runs = {
        m: predict(
            "h100-sxm:8",
            "llama-3.1-8b",
            "fp8",
            tp=m[0],
            pp=m[1],
            ep=1,
            dp=m[2],
            batch=batch,
            **ARGS,
        )
        for m in _all_mappings_8_chips()
    }
    attr, sign, _ = OBJECTIVES[objective]
    return max(runs, key=lambda m: (sign * getattr(runs[m], attr), -runs[m].tpot_s)), runs


@pytest.mark.parametrize(
    ("objective", "batch"),
    [
        (None, 4),  # per-user speed at a given batch
        ("ttft_s", 4),
        ("energy_j_per_token", 16),
        ("tokens_per_s_per_chip", 16),
        (None, "max"),  # throughput at the largest batch
    ],
)
def test_chooser_equals_brute_force(objective, batch):
    """Every mapping of 8 H100s for Llama-3.1-8B costed with explicit flags; the automatic choice
    is the argmax of the objective and reports the same numbers."""
    name = objective or ("tokens_per_s" if batch == "max" else "tokens_per_s_per_user")
    best, runs = _brute_force(name, batch)
    r = predict("h100-sxm:8", "llama-3.1-8b", "fp8", batch=batch, objective=objective, **ARGS)
    par = r.config["parallelism"]
    assert (par["tp"], par["pp"], par["dp"]) == best
    assert r.tpot_s == runs[best].tpot_s and r.batch == runs[best].batch
    m = r.config["mapping"]
    assert m["objective"] == name and m["candidates_valid"] == len(runs) == 10
    attr, sign, _ = OBJECTIVES[name]
    values = sorted((getattr(x, attr) for x in runs.values()), key=lambda v: -sign * v)
    assert [u["value"] for u in m["runners_up"]] == pytest.approx(values[1:3])


def test_explicit_flags_are_held_fixed():
    r = predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=2, batch=4, **ARGS)
    m = r.config["mapping"]
    assert r.config["parallelism"]["tp"] == 2 and m["searched"] == ["pp", "dp"]  # ep: dense, 1
    assert m["candidates_valid"] == 3  # pp 1, 2, 4
    assert all(u["parallelism"]["tp"] == 2 for u in m["runners_up"])
    r = predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp="auto", pp=2, dp=2, batch=4, **ARGS)
    assert r.config["parallelism"] == {"tp": 2, "pp": 2, "ep": 1, "dp": 2}
    everything = predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=8, pp=1, ep=1, dp=1, **ARGS)
    assert "mapping" not in everything.config  # nothing searched: the plain path


def test_enumeration_respects_heads_layers_and_experts():
    llama = load_model("llama-3.1-70b")  # 64 heads, 8 KV heads, 80 layers
    pars = enumerate_mappings(llama, 576)
    assert pars and all(p.chips == 576 and 64 % p.tp == 0 and p.pp <= 80 for p in pars)
    assert {p.tp for p in pars} == {1, 2, 4, 8, 16, 32, 64}
    mixtral = load_model("mixtral-8x7b")  # 8 experts
    eps = {p.ep for p in enumerate_mappings(mixtral, 8, tp=1, pp=1)}
    assert eps == {1, 2, 4, 8}  # attention-DP over 2, 4 or all 8 replicas


def test_sram_systems_run_without_flags(capsys):
    """The issue's failing commands: no --tp/--pp on Groq and on four CS-3 wafers."""
    for system in ("groq-lpu:576", "cerebras-wse3:4"):
        argv = [
            "predict",
            "--system",
            system,
            "--model",
            "llama-3.1-70b",
            "--quant",
            "fp8",
            "--batch",
            "1",
            "--input-len",
            "1024",
            "--output-len",
            "256",
        ]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "mapping:" in out and "smallest system whose SRAM holds the model" in out
    r = predict("cerebras-wse3:4", "llama-3.1-70b", "fp8", batch=1, input_len=1024, output_len=256)
    assert r.fits and r.workload.par.chips == 4
    sram = r.config["mapping"]["sram_min_chips"]
    assert 1 <= sram["chips"] <= 4


def _groq_8b(chips: int, par: Parallelism):
    return resolve_workload(
        system=f"groq-lpu:{chips}",
        model="llama-3.1-8b",
        quant="fp8",
        **par.model_dump(),
        input_len=1024,
        output_len=256,
    )


def test_smallest_sram_system_is_smallest():
    """The SRAM minimum holds the model at batch 1; no valid TP x PP on fewer chips does."""
    fit = smallest_sram_system(_groq_8b(256, Parallelism(tp=8, pp=32)))
    assert fit is not None and fit.par.tp * fit.par.pp == fit.chips
    assert _groq_8b(fit.chips, fit.par).plan(1).fits
    model = load_model("llama-3.1-8b")
    for n in range(1, fit.chips):
        for p in enumerate_mappings(model, n, dp=1):
            assert not _groq_8b(n, p).plan(1).fits


def test_json_has_parallelism_and_mapping(capsys):
    argv = [
        "predict",
        "--system",
        "h100-sxm:8",
        "--model",
        "llama-3.1-70b",
        "--quant",
        "fp8",
        "--batch",
        "max",
        "--tpot-slo-ms",
        "60",
        "--input-len",
        "1024",
        "--output-len",
        "256",
        "--json",
    ]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["parallelism"]) == {"tp", "pp", "ep", "dp"}
    assert d["parallelism"] == d["config"]["parallelism"] and "mapping" not in d["config"]
    m = d["mapping"]
    assert {"chosen_by", "objective", "runners_up", "candidates_evaluated"} <= set(m)
    assert m["objective"] == "tokens_per_s" and "TPOT <= 60 ms" in m["chosen_by"]
    assert len(m["runners_up"]) == 2
    assert all(set(u) == {"parallelism", "value"} for u in m["runners_up"])
    assert all(u["value"] <= d["output_tokens_per_s"] for u in m["runners_up"])
    assert d["tpot_s"] <= 0.060 * 1.05  # the SLO is met at mid context


def test_objective_flag(capsys):
    argv = [
        "predict",
        "--system",
        "h100-sxm:8",
        "--model",
        "llama-3.1-8b",
        "--quant",
        "fp8",
        "--batch",
        "8",
        "--objective",
        "ttft_s",
        "--input-len",
        "256",
        "--output-len",
        "32",
        "--json",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["mapping"]["objective"] == "ttft_s"
    assert main([*argv[:-1], "--objective", "speed"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tp", "3"], "must equal the system's 8 chips"),
        (["--tp", "16", "--pp", "1", "--dp", "1"], "must equal the system's 8 chips"),
        (["--ep", "2"], "has no experts"),
        (["--tp", "0"], "positive integer or 'auto'"),
        (["--pp", "x"], "positive integer or 'auto'"),
    ],
)
def test_invalid_explicit_flag_is_one_line_exit_2(capsys, flags, message):
    argv = [
        "predict",
        "--system",
        "h100-sxm:8",
        "--model",
        "llama-3.1-8b",
        "--batch",
        "1",
        "--input-len",
        "64",
        "--output-len",
        "8",
        *flags,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_python_degree_errors():
    with pytest.raises(ConfigError, match="must equal the system's 8 chips"):
        predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=3, **ARGS)
    with pytest.raises(ConfigError, match="positive integer or 'auto'"):
        predict("h100-sxm:8", "llama-3.1-8b", "fp8", tp=0, **ARGS)
    with pytest.raises(ConfigError, match="objective"):
        choose_mapping(system="h100-sxm:8", model="llama-3.1-8b", objective="x", **ARGS)


def test_nothing_fits_returns_the_closest_or_raises_for_max():
    r = predict("h100-sxm:2", "llama-3.1-405b", "bf16", batch=1, **ARGS)
    assert not r.fits and "none of the" in r.config["mapping"]["chosen_by"]
    with pytest.raises(ConfigError, match="no mapping of 2 chips fits"):
        predict("h100-sxm:2", "llama-3.1-405b", "bf16", batch="max", **ARGS)


# --------------------------------------------------------------------------- --ep generalized


def test_ep8_with_attention_dp_72_on_nvl72():
    """DeepSeek-V3 (256 experts) on 72 GB200: attention-DP 72, experts over groups of 8 chips:
    32 whole experts per chip, all-to-all over 8 chips carrying 8 replicas' tokens."""
    kw = {"tp": 1, "pp": 1, "dp": 72, "batch": 8, **ARGS}
    r8 = predict("gb200-nvl72:72", "deepseek-v3", "fp8", ep=8, **kw)
    r4 = predict("gb200-nvl72:72", "deepseek-v3", "fp8", ep=4, **kw)
    assert r8.fits and r8.config["parallelism"] == {"tp": 1, "pp": 1, "ep": 8, "dp": 72}
    assert r8.memory.weights < r4.memory.weights  # 32 experts per chip instead of 64
    par = Parallelism(tp=1, dp=72, ep=8)
    assert par.attention_dp and par.ep_replicas == 8 and par.expert_tp == 1
    model = load_model("deepseek-v3")
    g = build_graph(
        model,
        phase="decode",
        batch=8,
        seq_len=1,
        context_len=300,
        parallelism=par,
        quant=r8.workload.quant,
    )
    a2a = [i for i, n in enumerate(g.names) if n == "moe_dispatch"]
    assert a2a and all(g.group[i] == 8 for i in a2a)


def test_ep_expert_weights_scale_with_the_group():
    """Expert bytes per chip scale as 1/ep: with 8 and with 4 chips per EP group, the difference
    in weights per chip is the experts' bytes x (1/4 - 1/8)."""
    from workloads.capacity import weight_bytes_per_chip
    from workloads.quant import get_quant

    model, q = load_model("mixtral-8x7b"), get_quant("bf16")
    w8 = weight_bytes_per_chip(model, Parallelism(tp=1, dp=8, ep=8), q)
    w4 = weight_bytes_per_chip(model, Parallelism(tp=1, dp=8, ep=4), q)
    w1 = weight_bytes_per_chip(model, Parallelism(tp=1, dp=8, ep=1), q)
    experts = (w1 - w8) * 8 / 7  # all experts' bytes on one chip
    assert w4 - w8 == pytest.approx(experts * (1 / 4 - 1 / 8))


def test_ep_rules():
    ds = load_model("deepseek-v3")
    Parallelism(tp=2, dp=36, ep=8).validate_for(ds, 72)  # 4 replicas per EP group
    Parallelism(tp=8, dp=9, ep=8).validate_for(ds, 72)  # EP inside TP
    with pytest.raises(ConfigError, match="divides a stage's tp\\*dp = 72"):
        Parallelism(tp=1, dp=72, ep=16).validate_for(ds, 72)  # 16 does not divide 72
    with pytest.raises(ConfigError, match="divides a stage's tp\\*dp = 6"):
        Parallelism(tp=2, dp=3, ep=4).validate_for(ds, 6)  # a multiple of tp, not dividing 6
    assert Parallelism(tp=2, dp=4, ep=8).ep_replicas == 4  # the old ep == tp*dp case


def test_serve_chooses_the_mapping():
    from explore.api.serve import ServeRequest, serve
    from sim.traffic import Fixed, Poisson

    req = ServeRequest(
        "h100-sxm:2", "llama-3.1-8b", "fp8", Fixed(256), Fixed(32), Poisson(2.0), requests=20
    )
    s, _ = serve(req, slo_tpot_s=0.05)
    par = s["config"]["parallelism"]
    assert all(isinstance(par[k], int) for k in ("tp", "pp", "ep", "dp"))
    assert par["tp"] * par["pp"] * par["dp"] == 2
    assert s["mapping"]["objective"] == "tokens_per_s"
