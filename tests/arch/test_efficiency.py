from arch.efficiency import FACTORS, efficiency_for


def test_every_factor_resolves_with_provenance():
    for fam in ("nvidia-hopper", "groq-tsp", "no-such-family"):
        eff = efficiency_for(fam)
        for f in FACTORS:
            factor = getattr(eff, f)
            assert factor.value >= 0
            assert factor.source in ("fitted", "derived", "assumption", "user")


def test_fractions_of_peak_never_exceed_one():
    for fam in ("nvidia-hopper", "nvidia-ampere", "amd-cdna3", "intel-gaudi", "nvidia-blackwell"):
        eff = efficiency_for(fam)
        for f in (
            "gemm_16bit",
            "gemm_8bit",
            "attention",
            "memory",
            "collective_bus",
            "collective_in_network",
        ):
            assert 0 < eff.value(f) <= 1.0, (fam, f)


def test_family_prior_beats_borrowed_default():
    """Groq is statically scheduled: its own prior of zero kernel overhead must win over any
    default derived from GPU families."""
    assert efficiency_for("groq-tsp").value("kernel_overhead_s") == 0.0


def test_uncalibrated_family_is_flagged():
    """No row calibrates a TPU; Groq's per-user speed row fits its layer latency."""
    assert not efficiency_for("google-tpu").calibrated
    assert efficiency_for("groq-tsp").calibrated
    assert efficiency_for("nvidia-hopper").calibrated


def test_override_is_recorded_as_user():
    eff = efficiency_for("nvidia-hopper", overrides={"memory": 0.5})
    assert eff.memory.value == 0.5 and eff.memory.source == "user"


def test_no_effective_low_precision_rate_beats_the_hardware_ratio():
    """Peak x efficiency as the kernels read it (the packed design row): FP8 GEMMs never run more
    than 2x BF16 and FP4 never more than 2x FP8, on every preset chip under every engine (MI300X
    once got 2.95x by borrowing B200's absolute 8-bit factor); a family with no 8-bit rows takes
    its own 16-bit fit times the cross-family ratio."""
    from arch.chip import System
    from arch.engine import engine_names
    from arch.presets import chip_names, load_chip
    from kernels import layout as L
    from kernels.pack import pack_design
    from workloads.ops import precision_code as code

    for name in chip_names():
        c = load_chip(name)
        for engine in (None, *engine_names()):
            d = pack_design(System(chip=c, count=1), efficiency_for(c.family, engine=engine))
            rate = {p: d[L.PEAK0 + code(p)] for p in ("bf16", "fp8", "fp4")}
            rate["bf16"] *= d[L.EFF_GEMM16]
            rate["fp8"] *= d[L.EFF_GEMM16 if d[L.LOW0 + code("fp8")] < 0.5 else L.EFF_GEMM8]
            cls = d[L.LOW0 + code("fp4")]
            rate["fp4"] *= d[(L.EFF_GEMM16, L.EFF_GEMM8, L.EFF_GEMM4)[int(cls)]]
            assert rate["fp8"] <= 2 * rate["bf16"] * (1 + 1e-9), (name, engine)
            assert rate["fp4"] <= 2 * rate["fp8"] * (1 + 1e-9), (name, engine)
    amd = efficiency_for("amd-cdna3")
    assert amd.gemm_8bit.source == "derived" and amd.gemm_8bit.value <= amd.gemm_16bit.value


def test_engine_tables_layer_on_the_family_and_do_not_calibrate_it():
    """engine:NAME then engine:NAME@FAMILY override the family's factors; the kernels alone (no
    engine) keep the family's; a fitted engine factor does not make a family 'calibrated'."""
    base = efficiency_for("amd-cdna3")
    legacy = efficiency_for("amd-cdna3", engine="vllm-legacy")
    assert base.value("kernel_scale") == 1.0 and base.value("step_overhead_s") == 0.0
    assert legacy.engine == "vllm-legacy" and legacy.value("step_overhead_s") > 0
    assert legacy.gemm_16bit == base.gemm_16bit  # the silicon's factors are the family's
    assert not efficiency_for("google-tpu", engine="jetstream").calibrated


def test_engines_resolve_by_family_and_refuse_unknown_names():
    import pytest

    from arch.base import ConfigError
    from arch.engine import resolve_engine

    assert resolve_engine(None, "nvidia-hopper").name == "trtllm"
    assert resolve_engine(None, "nvidia-hopper").assumed
    assert resolve_engine(None, "google-tpu").padded_cache
    assert resolve_engine("vllm", "nvidia-hopper").max_batch == 256
    with pytest.raises(ConfigError, match="--engine 'nope'"):
        resolve_engine("nope", "nvidia-hopper")


def test_use_fitted_replaces_the_stored_factors_even_after_a_memoized_call():
    """Leave-one-out predictions resolve factors from a refit's tables: a factor resolved (and
    memoized) before the block must not leak into it, nor the block's after it."""
    from arch.efficiency import use_fitted

    stored = efficiency_for("nvidia-hopper").value("memory")
    refit = {"nvidia-hopper": {"memory": {"value": 0.5, "source": "fitted", "rows": ["X"]}}}
    with use_fitted(refit):
        assert efficiency_for("nvidia-hopper").value("memory") == 0.5
        assert efficiency_for("nvidia-hopper").memory.rows == ("X",)
    assert efficiency_for("nvidia-hopper").value("memory") == stored != 0.5
