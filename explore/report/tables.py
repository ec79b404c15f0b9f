"""Render results and presets as terminal tables (compute happens elsewhere)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from arch.base import strict_json
from arch.presets import chip_names, load_chip
from explore.api.predict import OBJECTIVES, Result
from explore.report.units import field_unit, human, percent
from sim.intervals import result_interval
from sim.step import BOUNDS
from workloads.presets import load_model, model_names

__all__ = ["print_curve", "print_ops", "print_predict", "print_presets", "print_show"]

# notes sim.evaluate / sim.batching mark as regime flags, printed under the memory table
FLAGS = {"CLIFF": "red", "STREAMING": "red", "SPILLED": "yellow"}


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:,.2f} ms"


def _num(x: float | None, fmt: str = ",.1f") -> str:
    return "-" if x is None else format(x, fmt)


def make_console() -> Console:
    """Terminal width on a TTY; a wide fixed width when piped, so tables are not squeezed."""
    con = Console()
    return con if con.is_terminal else Console(width=140)


def print_predict(r: Result, console: Console | None = None) -> None:
    con = console or make_console()
    cfg = r.config
    par = cfg["parallelism"]
    con.print(
        f"[bold]{cfg['model']}[/] on [bold]{cfg['system']}[/]  quant {cfg['quant']['name']}"
        f" (GEMMs at {cfg['gemm_precision']})  TP{par['tp']} PP{par['pp']} EP{par['ep']} "
        f"DP{par['dp']}  batch {r.batch}/replica  in {cfg['input_len']} out "
        f"{cfg['output_len']}"
    )
    if cfg.get("mapping"):
        _print_mapping(con, par, cfg["mapping"])
    if not r.fits:
        con.print(
            f"[bold red]DOES NOT FIT[/]: {r.memory.reason}"
            + (f"; needs >= {r.memory.min_chips} chips" if r.memory.min_chips else "")
        )
    _print_memory(con, r)
    flagged = [n for n in r.notes if n.partition(": ")[0] in FLAGS]
    for note in flagged:  # a cliff or a weight placement the numbers below depend on
        mark, _, rest = note.partition(": ")
        con.print(f"[bold {FLAGS[mark]}]{mark}:[/] {escape(rest)}")
    if r.fits:
        _print_perf(con, r)
        _print_bounds(con, r)
    _print_efficiency(con, r)
    for note in r.notes:
        if note not in flagged:
            con.print(f"[yellow]note:[/] {note}")


def _value(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else human(x)


def _par(p: dict) -> str:
    return f"TP{p['tp']} PP{p['pp']} EP{p['ep']} DP{p['dp']}"


def _print_mapping(con: Console, par: dict, m: dict) -> None:
    """How the automatic mapping chose ``par``: rule, candidates, runners-up, SRAM minimum."""
    label = OBJECTIVES[m["objective"]][2]
    con.print(
        f"mapping: [bold]{_par(par)}[/], chosen over {'/'.join(m['searched'])} for "
        f"{m['chosen_by']} ({m['candidates_valid']} valid, {m['candidates_fit']} fit, "
        f"{m['candidates_evaluated']} costed)"
    )
    if m["runners_up"]:
        ups = "; ".join(f"{_par(u['parallelism'])} ({_value(u['value'])} {label})"
                        for u in m["runners_up"])  # fmt: skip
        con.print(f"  runners-up: {ups}")
    sram = m.get("sram_min_chips")
    if sram:
        con.print(
            f"  smallest system whose SRAM holds the model: {sram['chips']} chips as "
            f"{_par(sram['parallelism'])} ({sram['method']})"
        )


def _banded(x: float | None, band: list[float] | None, fmt) -> str:
    """``fmt(x)`` followed by its error band, e.g. ``2,780 (2,400–3,100)``."""
    if x is None:
        return "-"
    return fmt(x) + (f" ({fmt(band[0])}–{fmt(band[1])})" if band else "")


def _print_perf(con: Console, r: Result) -> None:
    iv = result_interval(r)
    band = iv["interval"]
    t = Table(title="Performance (in brackets: the p10–p90 band of out-of-sample validation "
              "error)", show_header=False)  # fmt: skip
    ms = _ms
    rows = [
        ("TTFT (prefill of the batch)", ms, "ttft_s"),
        ("TPOT (mean over output)", ms, "tpot_s"),
        ("tokens/s per user", _num, "tokens_per_s_per_user"),
        ("output tokens/s (system)", _num, "output_tokens_per_s"),
        ("output tokens/s per chip", _num, "output_tokens_per_s_per_chip"),
        ("end-to-end (static batch)", lambda x: f"{x:,.3f} s", "e2e_s"),
        ("power per chip (mean)", lambda x: f"{x:,.0f} W", "power_w"),
        ("energy per output token", lambda x: f"{x:,.3f} J", "energy_j_per_token"),
    ]
    for label, fmt, key in rows:
        t.add_row(label, _banded(getattr(r, key), band.get(key), fmt))
    con.print(t)
    if iv["extrapolated"]:
        con.print("[bold yellow]EXTRAPOLATED[/]: bands widened (sim/intervals.py): "
                  + "; ".join(iv["extrapolated"]))  # fmt: skip


def _print_memory(con: Console, r: Result) -> None:
    m = r.memory
    streamed = m.weight_split[2]
    where = f"weights in {m.weights_level}"
    if m.fits and max(m.weight_split) < 1 and r.workload is not None:
        c = r.workload.system.chip
        levels = (c.scratch, c.main_memory, c.capacity_tier)
        where = "weights: " + ", ".join(
            f"{percent(f)} {'streamed from ' if i == 2 else 'in '}{lvl.name}"
            for i, (f, lvl) in enumerate(zip(m.weight_split, levels, strict=True))
            if f > 0
        )
    t = Table(title=f"Memory per chip ({where})")
    for col in ("weights held", "KV cache", "activations", "reserve", "total", "capacity", "fits"):
        t.add_column(col, justify="right")
    held = m.weights * (1 - streamed) if m.fits else m.weights  # streamed bytes are not resident
    total = held + m.kv_cache + m.activations + m.reserve
    t.add_row(
        *(human(x, "B") for x in (held, m.kv_cache, m.activations, m.reserve, total,
                                    m.capacity)),
        "yes" if m.fits else "NO",
    )
    con.print(t)


def _print_bounds(con: Console, r: Result) -> None:
    t = Table(title="What binds each phase (share of step time)")
    t.add_column("phase")
    for b in BOUNDS:
        t.add_column(b, justify="right")
    t.add_column("bound")
    for phase, shares in r.bound_shares.items():
        t.add_row(phase, *(percent(shares.get(b, 0.0)) for b in BOUNDS), r.bound[phase])
    con.print(t)


def _print_efficiency(con: Console, r: Result) -> None:
    eff = r.efficiency
    t = Table(title=f"Efficiency factors applied ({eff['family']})")
    for col in ("factor", "value", "source"):
        t.add_column(col)
    t.add_column("fitted on rows / note", no_wrap=True, overflow="ellipsis", max_width=60)
    for name, f in eff.items():
        if not isinstance(f, dict):
            continue
        where = ", ".join(f["rows"]) if f.get("rows") else f.get("note", "")
        t.add_row(name, human(f["value"], field_unit(name) or "", digits=4), f["source"], where)
    con.print(t)


def print_ops(r: Result, console: Console | None = None) -> None:
    """The per-op table of the prefill and the mid-context decode step
    (:func:`explore.report.ops.ops_of`): time, share of the op time, what binds, bytes moved,
    collective bytes, FLOPs, arithmetic intensity and achieved FLOP/s, per chip."""
    from explore.report.ops import ops_of

    con = console or make_console()
    steps = {"prefill": r.prefill_step, "decode": r.decode_step}
    for phase, rows in ops_of(r).items():
        step = steps[phase]
        if step is None:
            con.print(f"{phase}: no per-op view (the design does not fit)")
            continue
        t = Table(title=f"{phase}: ops of one pass per chip (step {human(step.total_s, 's')}, "
                  f"ops {human(sum(x['seconds'] for x in rows), 's')})")  # fmt: skip
        for col in ("op", "count", "time", "share", "bound", "bytes", "comm", "FLOPs",
                    "FLOP/B", "achieved"):  # fmt: skip
            t.add_column(col, justify="left" if col in ("op", "bound") else "right")
        for x in rows:
            t.add_row(x["name"], str(x["count"]), human(x["seconds"], "s"),
                      percent(x["share"], decimals=1),
                      x["bound"], human(x["bytes"], "B"), human(x["comm_bytes"], "B"),
                      human(x["flops"], "FLOP"), human(x["arithmetic_intensity"]),
                      human(x["achieved_flops_per_s"], "FLOP/s"))  # fmt: skip
        con.print(t)


def print_curve(c, console: Console | None = None) -> None:
    """Each system's Pareto front of :func:`explore.api.curve.curve` (fastest per user first),
    with how many points were costed and which mappings could not run."""
    con = console or make_console()
    slo = [f"TPOT <= {human(c.tpot_slo_s, 's')}" if c.tpot_slo_s else "",
           f"TTFT <= {human(c.ttft_slo_s, 's')}" if c.ttft_slo_s else ""]  # fmt: skip
    slo_text = " and ".join(x for x in slo if x)
    con.print(f"[bold]{c.model}[/] ({c.quant}), input {c.input_len} / output {c.output_len} "
              f"tokens; static batches over every mapping"
              + (f"; front among points meeting {slo_text}" if slo_text else ""))  # fmt: skip
    for system in c.systems:
        pts = [p for p in c.points if p.system == system]
        t = Table(title=f"{system}: Pareto front ({len(pts)} points costed, "
                  f"{sum(p.meets_slo for p in pts)} meet the SLOs)")  # fmt: skip
        for col in ("mapping", "batch", "tokens/s per user", "tokens/s per chip",
                    "tokens/s (system)", "TPOT", "TTFT"):  # fmt: skip
            t.add_column(col, justify="left" if col == "mapping" else "right")
        for p in c.frontier(system):
            t.add_row(p.mapping, f"{p.batch:,}", f"{p.tokens_per_s_per_user:,.1f}",
                      f"{p.output_tokens_per_s_per_chip:,.1f}", f"{p.output_tokens_per_s:,.0f}",
                      human(p.tpot_s, "s"), human(p.ttft_s, "s"))  # fmt: skip
        con.print(t)
        if not c.frontier(system):
            con.print(f"{system}: no point meets {slo_text}")
    if c.skipped:
        con.print(f"[yellow]not run[/] (no batch fits): {len(c.skipped)} mapping(s), e.g. "
                  f"{escape(c.skipped[0])}")  # fmt: skip


def print_presets(*, as_json: bool = False) -> None:
    chips = [load_chip(n) for n in chip_names()]
    models = [load_model(n) for n in model_names()]
    if as_json:
        print(
            strict_json(
                {
                    "chips": {
                        c.name: {
                            "family": c.family,
                            "bf16_flops_per_s": c.matrix.peak("bf16"),
                            "memory_bytes": c.main_memory.capacity_bytes,
                            "memory_bytes_per_s": c.main_memory.bandwidth_bytes_per_s,
                            "tdp_w": c.tdp_w,
                            "domain_chips": c.scale_up.domain_chips,
                        }
                        for c in chips
                    },
                    "models": {
                        m.name: {
                            "params": m.total_params(),
                            "layers": m.num_layers,
                            "hidden": m.hidden_size,
                        }
                        for m in models
                    },
                },
            )
        )
        return
    con = make_console()
    con.print(_chips_table(chips))
    con.print(_models_table(models))


def _chips_table(chips) -> Table:
    t = Table(title="Chips (CHIP:N = N chips on the chip's standard fabric)")
    for col in (
        "name",
        "family",
        "16-bit dense",
        "8-bit",
        "4-bit",
        "main memory",
        "bandwidth",
        "scale-up (per dir)",
        "domain",
        "TDP",
    ):
        names = {"name": [c.name for c in chips], "family": [c.family for c in chips]}
        _column(t, col, names.get(col, []))
    for c in chips:
        m = c.main_memory
        t.add_row(
            c.name,
            c.family,
            _pf(c.matrix.peak("bf16") or c.matrix.peak("fp16")),
            _pf(c.matrix.peak("fp8") or c.matrix.peak("int8")),
            _pf(c.matrix.peak("fp4")),
            f"{human(m.capacity_bytes, 'B')} {m.kind}",
            human(m.bandwidth_bytes_per_s, "B/s"),
            f"{human(c.scale_up.bandwidth_bytes_per_s, 'B/s')} {c.scale_up.topology}",
            f"{c.scale_up.domain_chips:,}",
            human(c.tdp_w, "W"),
        )
    return t


def _column(t: Table, header: str, names: list[str]) -> None:
    """A column whose cells wrap whole (never cut with an ellipsis); the name column never
    wraps at all: it is as wide as the longest name."""
    if names:
        t.add_column(header, no_wrap=True, min_width=max(map(len, names)))
    else:
        t.add_column(header, overflow="fold")


def _models_table(models) -> Table:
    t = Table(title="Models")
    for col in ("name", "params", "active", "layers", "hidden", "attention", "experts"):
        _column(t, col, [m.name for m in models] if col == "name" else [])
    for m in models:
        a = m.attention
        attn = (
            f"MLA r={a.kv_lora_rank}"
            if a.kind == "mla"
            else f"{a.num_heads}q/{a.num_kv_heads}kv x {a.head_dim}"
        )
        moe = f"{m.moe.num_experts} top-{m.moe.top_k}" if m.moe else "-"
        t.add_row(
            m.name,
            human(m.total_params()),
            human(m.total_params(active=True)),
            str(m.num_layers),
            str(m.hidden_size),
            attn,
            moe,
        )
    return t


def _pf(x: float) -> str:
    return human(x, "FLOP/s") if x else "-"


def print_show(name: str, *, as_json: bool = False) -> None:
    from arch.base import ConfigError, strict_json

    if name in chip_names():
        obj = load_chip(name)
    elif name in model_names():
        obj = load_model(name)
    else:
        raise ConfigError(
            f"unknown preset {name!r}; known chips: {', '.join(chip_names())}; "
            f"models: {', '.join(model_names())}"
        )
    data = obj.model_dump(exclude={"sources"})
    sources = {k: v.model_dump() for k, v in obj.sources.items()}
    if as_json:
        print(strict_json({"values": data, "sources": sources}))
        return
    con = make_console()
    t = Table(title=f"{name}: every number and its source")
    for col in ("field", "value", "source", "reference"):
        t.add_column(col, overflow="fold")
    for path, value in _flatten(data):
        src = sources.get(path)
        t.add_row(path, _field(path, value), src["kind"] if src else "",
                  src["ref"] if src else "")  # fmt: skip
    con.print(t)
    if hasattr(obj, "config_source"):
        con.print(f"config source: {obj.config_source}")


def _field(path: str, value) -> str:
    """A preset value as people read it: in the unit its name carries (``human``), 4 digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    unit = field_unit(path)
    if unit is None:
        if isinstance(value, int) or float(value).is_integer():
            return f"{value:.0f}"  # a count or a year: every digit
        return human(value, digits=4)
    return human(value, unit, digits=4)


def _flatten(data, prefix: str = ""):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, (list, tuple)) and data and isinstance(data[0], dict):
        for i, v in enumerate(data):
            yield from _flatten(v, f"{prefix}.{i}")
    else:
        yield prefix, data


def print_serving(s: dict, console: Console | None = None) -> None:
    """Human-readable ``xpusim serve`` summary: latency table and throughput lines."""
    con = console or make_console()
    cfg = s.get("config", {})
    if "rate_search" in s:
        rs = s["rate_search"]
        con.print(
            f"[bold]highest Poisson rate meeting p99 TTFT <= {rs['slo_ttft_ms']:g} ms and "
            f"p99 TPOT <= {rs['slo_tpot_ms']:g} ms: {human(rs['max_rate_per_s'])} "
            "requests/s[/bold]"
        )
    con.print(
        f"{cfg.get('system', '')} {cfg.get('model', '')} {cfg.get('quant', '')} "
        f"{cfg.get('scheduler', '')}, {cfg.get('requests', '')} requests, "
        f"KV {cfg.get('kv_tokens_per_replica', 0):,} tokens/replica"
    )
    if s.get("mapping"):
        _print_mapping(con, cfg["parallelism"], s["mapping"])
    band = s.get("interval", {})
    t = Table(title="latency (in brackets: the p10–p90 band of out-of-sample validation error)")
    for col in ("metric", "mean", "p50", "p90", "p99"):
        t.add_column(col, justify="right" if col != "metric" else "left")
    for key, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "end to end"),
                       ("queue_s", "queueing")):  # fmt: skip
        d = s[key]
        t.add_row(label, *(_banded(d[q], band.get(f"{key}.{q}"), _ms)
                           for q in ("mean", "p50", "p90", "p99")))  # fmt: skip
    con.print(t)
    tok, chip = ("output_tokens_per_s", "output_tokens_per_s_per_chip")
    con.print(
        f"output tokens/s {_banded(s[tok], band.get(tok), _num)} "
        f"({_banded(s[chip], band.get(chip), _num)} per chip), requests/s "
        f"{human(s['requests_per_s'])}, goodput {human(s['goodput_requests_per_s'])}"
        f" req/s, KV utilization {s['kv_utilization_mean']:.1%}, preemptions {s['preemptions']}"
    )
    e = s["energy_j_per_token"]
    e_band = _banded(e, band.get("energy_j_per_token"), human)
    con.print(
        f"energy {e_band} J/token; simulated {s['simulated_s']:.1f} s in "
        f"{s['wall_s']:.2f} s wall"
    )
    if s.get("extrapolated"):
        con.print("[bold yellow]EXTRAPOLATED[/]: bands widened (sim/intervals.py): "
                  + "; ".join(s["extrapolated"]))  # fmt: skip
    for p in s.get("plots", []):
        con.print(f"plot: {p}")
