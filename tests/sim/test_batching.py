"""``--batch max`` (sim.batching) around weight-placement cliffs, and its TPOT SLO checks."""

from __future__ import annotations

import io
import math

import pytest
from rich.console import Console

from arch.base import ConfigError
from arch.chip import System
from arch.presets import load_chip
from explore.report.tables import print_predict
from sim.batching import STREAM_GAIN, batch_choice, evaluate_max
from sim.evaluate import evaluate, resolve_workload

CS3 = {"system": "cerebras-wse3:4", "model": "llama-3.1-70b", "tp": 1, "pp": 4,
       "input_len": 1024, "output_len": 256}  # fmt: skip
GH200 = {"system": "gh200:1", "model": "mixtral-8x7b", "input_len": 128, "output_len": 32}


def test_batch_max_stays_resident_and_names_the_cliff_it_avoided():
    """Llama-3.1-70B BF16 on four CS-3 (PP4): batches up to 53 keep the weights in SRAM, the
    largest that fits (368) streams 81 % of them from MemoryX: ~100x fewer tokens/s. The choice
    stays resident, the first note is a CLIFF: naming both batches, the JSON says where the
    weights stream from."""
    w = resolve_workload(**CS3)
    c = batch_choice(w)
    assert (c.batch, c.resident, c.top, c.largest_fitting) == (53, 53, 368, 368)
    assert c.tokens_per_s > 50 * c.tokens_per_s_at[368]
    r = evaluate_max(w)
    assert r.notes[0].startswith("CLIFF: past batch 53 the weights stream from MemoryX")
    assert "batch 368, the largest that fits, gives 332 tokens/s, 99.3x fewer" in r.notes[0]
    d = r.to_dict()
    assert d["regime"]["weights"] == "resident" and d["regime"]["streams_above_batch"] == 53


def test_a_streaming_batch_needs_more_than_the_margin_to_be_chosen():
    """Mixtral BF16 on one GH200 (128 in / 32 out): past batch 1,704 the KV cache pushes weights
    out to the Grace LPDDR; batch 2,048 would give 0.3 % more tokens/s than the best resident
    batch, less than STREAM_GAIN, so the resident batch is kept and a STREAMING: note says
    what was left on the table."""
    c = batch_choice(resolve_workload(**GH200))
    streaming = max(t for b, t in c.tokens_per_s_at.items() if b > c.resident)
    assert c.batch <= c.resident == 1704
    assert c.tokens_per_s < streaming <= (1 + STREAM_GAIN) * c.tokens_per_s
    assert c.cliff_note.startswith("STREAMING: past batch 1704 the weights stream from Grace")
    assert "gives only 0.3% more tokens/s" in c.cliff_note


def test_a_streaming_batch_that_is_really_faster_is_chosen_and_flagged():
    """A GH200 whose capacity tier is as fast as its HBM, Llama-3.1-70B FP8, 2048 in / 2048
    out: past batch 84 weights stream, but at HBM speed that costs little and the bigger batch
    wins by far more than the margin (~30 %), so --batch max crosses the boundary; the result
    is marked STREAMING (not CLIFF: it is faster than resident) and its regime holds the
    resident batch for comparison (slowdown < 1)."""
    chip = load_chip("gh200")
    hbm = chip.main_memory.bandwidth_bytes_per_s
    memory = tuple(m.model_copy(update={"bandwidth_bytes_per_s": hbm}) if m.role == "capacity"
                   else m for m in chip.memory)  # fmt: skip
    fast = chip.model_copy(update={"memory": memory})
    w = resolve_workload(system=System(chip=fast, count=1), model="llama-3.1-70b",
                         quant="fp8", input_len=2048, output_len=2048)  # fmt: skip
    c = batch_choice(w)
    stay = max(t for b, t in c.tokens_per_s_at.items() if b <= c.resident)
    assert c.batch > c.resident > 0 and c.tokens_per_s > (1 + STREAM_GAIN) * stay
    r = evaluate_max(w)
    assert r.regime["weights"] == "streaming"
    assert r.regime["cliff"]["resident_batch"] == c.resident
    assert r.regime["cliff"]["slowdown"] < 1
    assert r.notes[0].startswith("STREAMING: past batch")  # the evaluation's own note
    assert any(n.startswith(f"STREAMING: past batch {c.resident}") and "still gives" in n
               for n in r.notes)  # fmt: skip


@pytest.mark.parametrize("slo", [0.0, -0.01, math.nan, math.inf])
def test_a_tpot_slo_that_is_not_a_positive_time_is_refused(slo):
    with pytest.raises(ConfigError, match="give a positive number of ms"):
        batch_choice(resolve_workload(**GH200), tpot_slo_s=slo)


def test_an_slo_unmet_even_at_batch_1_is_an_error_not_a_number():
    with pytest.raises(ConfigError, match="not met even at batch 1"):
        batch_choice(resolve_workload(**CS3), tpot_slo_s=1e-6)


def test_the_predict_table_prints_the_cliff_above_the_numbers():
    """The flag is printed right under the memory table, before the performance table, and not
    again among the plain notes."""
    w = resolve_workload(**CS3)
    buf = io.StringIO()
    print_predict(evaluate(w, 200), Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    assert text.index("CLIFF: past batch 53") < text.index("Performance")
    assert text.count("CLIFF:") == 1 and "note: CLIFF" not in text
