"""``predict --batch max`` with length distributions: steady-state throughput, simulated.

The static ``--batch max`` (:func:`sim.batching.evaluate_max`) costs one batch of sequences all
at the mean lengths. With spread-out lengths a replica never runs that batch: continuous
batching refills it as sequences finish, long sequences attend over long contexts (the token-
weighted mean context exceeds the mean), and the run ends with the longest sequences draining
at a small batch. :func:`steady_state` measures that with the serving simulation: ``requests``
requests, all arriving at t=0 (a closed batch), on one replica that admits at most the static
``--batch max`` batch (the largest batch that fits, or meets the TPOT SLO, at the mean lengths,
:func:`sim.batching.batch_choice`) with continuous batching, prompts prefilled up to the engine's
token budget per step, steps costed by the memoized analytic step model (the one evaluation
path, as ``serve``). Throughput = all output tokens / the makespan (first arrival to last
completion), times the ``dp`` identical replicas; TTFT, TPOT and e2e are means over requests.

The relation at fixed lengths (``N`` and ``I`` as plain integers): the closed batch runs in
waves of ``B`` requests, each wave one token budget of prompts per prefill step until the batch
is full, then ``O - 1`` decode steps of the whole batch, which all finish together. That is
``predict``'s static batch, step for step, when ``pp = 1`` (``predict``'s prefill passes run back
to back too): with ``requests`` a multiple of ``B``, the throughput equals ``predict``'s up to
the step model's memo grid and ``predict``'s Simpson rule over the decode contexts (exact with
``exact=True`` and an affine decode step; ``tests/explore/api/test_steady.py``). TTFT differs:
the simulation reports the mean over the batch (the first prompts' tokens come after one pass),
``predict`` the last prompt's. At ``pp > 1`` each serving step fills and drains the pipeline by
itself, so a prefill of several steps runs slower than ``predict``'s one pipelined prefill.

How many requests (:func:`default_requests`): the first fill and the final drain last about as
long as the longest requests, independent of ``N``, so their share of the makespan falls like
``1 / N`` while the rate over the refilled middle of the run (``window_output_tokens_per_s`` in
``config["steady_state"]``: first completion to last admission) does not move with ``N``.
Measured on Llama-3.1-70B FP8, 8 x H100 TP8, lognormal 1,024 +- 512 in, 256 +- 256 out
(batch cap 2,198), throughput over the static estimate, seeds 0 and 1: 4 waves of ``B``
requests 0.857 / 0.859, 8 waves 0.921 / 0.876, 16 waves 0.925 / 0.951, 32 waves 0.954 / 0.960;
the window rate 0.963-0.972 at every size. The default, ``16 B`` requests (at least 2,000), keeps
the run to a few seconds with the makespan rate within ~4 % of its long-run value; ``requests``
buys more.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from arch.base import ConfigError
from arch.chip import System
from explore.api.predict import Degree, predict
from sim.evaluate import Result, Workload
from sim.metrics import distribution, request_arrays, summarize
from sim.serving import ServingConfig, ServingTrace, simulate_serving
from sim.stepmodel import AnalyticStepModel
from sim.traffic import Clipped, ClosedLoop, Fixed, LengthDist, LogNormal, Uniform, parse_length
from workloads.capacity import kv_bytes_per_chip
from workloads.model import ModelSpec
from workloads.quant import QuantSpec

__all__ = ["BLOCK", "default_requests", "is_distribution", "length_dist", "steady_state"]

BLOCK = 16  # KV block size, tokens (as serve)
WAVES = 16  # default requests per batch slot (module docstring)
MIN_REQUESTS = 2000


def length_dist(value: int | str | LengthDist, flag: str) -> LengthDist:
    """A length or a length distribution, in any spelling ``serve`` accepts (``N``,
    ``uniform:LO:HI``, ``lognormal:MEAN:STD``, ``file:PATH``); a bad one is a ConfigError
    naming ``flag``."""
    return value if isinstance(value, LengthDist) else parse_length(value, flag)


def is_distribution(value: int | str | LengthDist | None) -> bool:
    """True for a spelling or object that is not one fixed length."""
    if value is None or isinstance(value, int):
        return False
    if isinstance(value, LengthDist):
        return not isinstance(value, Fixed)
    return not str(value).strip().isdigit()


def default_requests(batch: int) -> int:
    """Requests simulated when none are given: ``WAVES`` per batch slot, at least
    ``MIN_REQUESTS`` (why: the module docstring)."""
    return max(MIN_REQUESTS, WAVES * batch)


def steady_state(
    system: str | System,
    model: str | ModelSpec,
    quant: str | QuantSpec = "bf16",
    *,
    input_len: int | str | LengthDist,
    output_len: int | str | LengthDist,
    tp: Degree = None,
    pp: Degree = None,
    ep: Degree = None,
    dp: Degree = None,
    batch: int | str = "max",
    tpot_slo_s: float | None = None,
    requests: int | None = None,
    seed: int = 0,
    exact: bool = False,
    **options: Any,
) -> Result:
    """Steady-state ``--batch max`` (module docstring): the static ``predict`` at the mean
    lengths chooses the mapping and the batch cap, then the serving simulation runs
    ``requests`` (default :func:`default_requests`) requests with these length distributions.

    Returns ``predict``'s :class:`Result` with the simulated TTFT, TPOT and e2e (means),
    throughput, power and energy per token, a note saying so, and ``config["steady_state"]``
    (requests, seed, the static throughput it replaces). ``options`` go to
    :func:`explore.api.predict.predict` (``routing_skew``, ``efficiency_overrides``,
    ``objective``, ...). ``batch``: only ``"max"`` (the CLI passes it). ``exact``: cost every
    step shape exactly (no memo grid)."""
    if batch != "max":
        raise ConfigError(f"--batch {batch!r}: the steady state runs at --batch max (a length "
                          "distribution needs it); give integer lengths for a fixed batch")
    if requests is not None and requests < 1:
        raise ConfigError("requests must be >= 1")
    din, dout = length_dist(input_len, "--input-len"), length_dist(output_len, "--output-len")
    static = predict(system, model, quant, tp=tp, pp=pp, ep=ep, dp=dp, batch="max",
                     tpot_slo_s=tpot_slo_s, input_len=_mean(din), output_len=_mean(dout),
                     **options)  # fmt: skip
    if not static.fits or static.workload is None:
        return static
    w, batch = static.workload, static.batch
    n = requests if requests is not None else default_requests(batch)
    cfg, clip = _config(w, batch, din, dout, requests=n, seed=seed)
    t0 = time.perf_counter()
    trace = simulate_serving(cfg, AnalyticStepModel(w, w.plan(batch), exact=exact).step)
    return _result(static, trace, wall_s=time.perf_counter() - t0, requests=n, seed=seed,
                   lengths=(din, dout), clip=clip)  # fmt: skip


def _mean(d: LengthDist) -> int:
    return max(1, round(d.mean))


def _config(
    w: Workload, batch: int, din: LengthDist, dout: LengthDist, *, requests: int, seed: int
) -> tuple[ServingConfig, int | None]:
    """One replica's closed batch: KV blocks from the memory plan at ``batch`` (main memory less
    weights, reserve and activations, as serve), lengths clipped so one request fits the model's
    context and the replica's KV (``clip``: the longest total, None when nothing is clipped)."""
    plan = w.plan(batch)
    per_token = kv_bytes_per_chip(w.model, w.par, w.quant, batch=1, context_len=1)
    blocks = int(plan.kv_budget_bytes // (per_token * BLOCK)) if per_token > 0 else 1 << 30
    longest = min(w.model.max_context + 1, max(blocks, 1) * BLOCK)
    clip = None
    if not (isinstance(din, Fixed) and isinstance(dout, Fixed)):
        cap_in = longest // 2
        din, dout, clip = Clipped(din, cap_in), Clipped(dout, longest - cap_in), longest
    chip = w.system.chip
    cfg = ServingConfig(
        arrivals=ClosedLoop(requests), input_len=din, output_len=dout, requests=requests,
        scheduler="continuous", max_batch=batch, max_tokens=w.prefill_chunk_tokens,
        kv_blocks=max(blocks, 1), block_size=BLOCK, swap_bytes_per_token=per_token,
        chips_per_replica=w.par.chips_per_replica, idle_w=chip.idle_w,
        busy_floor_w=w.floor_w(), seed=seed,
    )  # fmt: skip
    return cfg, clip


def _result(
    static: Result, trace: ServingTrace, *, wall_s: float, requests: int, seed: int,
    lengths: tuple[LengthDist, LengthDist], clip: int | None,
) -> Result:  # fmt: skip
    s = summarize(trace, wall_s=wall_s)
    lat = _admitted_latencies(trace)
    w = static.workload
    assert w is not None
    dp, chips = w.par.dp, trace.chips
    tok_s = s["output_tokens_per_s"]
    spelled = f"input {_spell(lengths[0])}, output {_spell(lengths[1])}"
    note = (f"steady state SIMULATED: {requests} requests at t=0 on one replica of {dp}, "
            f"continuous batching up to {static.batch} sequences, {spelled}, seed {seed} "
            "(throughput: all output tokens / makespan; TTFT and e2e from admission); "
            f"static batch at the mean lengths: {static.output_tokens_per_s:,.0f} tok/s")
    if clip is not None:
        note += f"; lengths clipped so input + output <= {clip} tokens"
    info = {"requests": requests, "seed": seed, "scheduler": "continuous",
            "input_len": _spell(lengths[0]), "output_len": _spell(lengths[1]),
            "static_output_tokens_per_s": static.output_tokens_per_s,
            "static_ttft_s": static.ttft_s, "static_tpot_s": static.tpot_s,
            "makespan_s": s["simulated_s"], "preemptions": s["preemptions"],
            "window_output_tokens_per_s": _window_rate(trace),
            "ttft_s": lat["ttft"], "tpot_s": s["tpot_s"], "e2e_s": lat["e2e"],
            "queue_s": s["queue_s"], "wall_s": wall_s}  # fmt: skip
    return dataclasses.replace(
        static,
        ttft_s=lat["ttft"]["mean"],
        tpot_s=s["tpot_s"]["mean"] or static.tpot_s,
        e2e_s=lat["e2e"]["mean"],
        output_tokens_per_s=tok_s * dp,
        output_tokens_per_s_per_chip=tok_s / chips,
        power_w=trace.energy_j / (chips * trace.simulated_s),
        energy_j_per_token=s["energy_j_per_token"],
        notes=(*static.notes, note),
        config={**static.config, "steady_state": info},
        run=None,
    )


def _admitted_latencies(trace: ServingTrace) -> dict[str, dict]:
    """TTFT and e2e distributions from admission (first scheduled), not arrival: every request
    of a closed batch arrives at t=0, so from arrival they would mostly be the queue."""
    a = request_arrays(trace)
    start = a["arrival"] + a["queue"]
    return {"ttft": distribution(a["arrival"] + a["ttft"] - start),
            "e2e": distribution(a["finish"] - start)}  # fmt: skip


def _window_rate(trace: ServingTrace) -> float | None:
    """Output tokens/s while the batch is kept full: from the first completion to the last
    admission (None when they do not overlap). Unlike the makespan rate it carries neither the
    first fill nor the final drain, so it does not move with the number of requests."""
    a = request_arrays(trace)
    t0, t1 = float(a["finish"].min()), float((a["arrival"] + a["queue"]).max())
    t, tok = np.asarray(trace.steps["t"]), np.asarray(trace.steps["tokens"], dtype=float)
    if t1 <= t0 or len(t) < 2:
        return None
    n0, n1 = np.interp([t0, t1], t, tok)
    return float((n1 - n0) / (t1 - t0))


def _spell(d: LengthDist) -> str:
    """The CLI spelling of a length distribution (``repr`` for a file's values)."""
    if isinstance(d, Clipped):
        d = d.dist
    if isinstance(d, Fixed):
        return str(d.n)
    if isinstance(d, LogNormal):
        return f"lognormal:{d.mean_len:g}:{d.std_len:g}"
    if isinstance(d, Uniform):
        return f"uniform:{d.lo}:{d.hi}"
    return f"{type(d).__name__} (mean {d.mean:.0f})"
