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


def test_no_effective_8bit_rate_beats_the_hardware_ratio():
    """Peak x efficiency: a chip's 8-bit GEMM rate over its 16-bit rate never exceeds its peak
    ratio (2x on MI300X, where borrowing B200's absolute 8-bit factor once gave 2.95x); a
    family with no 8-bit rows takes its own 16-bit fit times the cross-family ratio."""
    from arch.presets import chip_names, load_chip

    for name in chip_names():
        c, e = load_chip(name), efficiency_for(load_chip(name).family)
        p16 = c.matrix.peak("bf16") or c.matrix.peak("fp16")
        p8 = c.matrix.peak("fp8") or c.matrix.peak("int8")
        if p16 and p8:
            rate = p8 * e.value("gemm_8bit") / (p16 * e.value("gemm_16bit"))
            assert rate <= p8 / p16 * (1 + 1e-9), name
    amd = efficiency_for("amd-cdna3")
    assert amd.gemm_8bit.source == "derived" and amd.gemm_8bit.value <= amd.gemm_16bit.value
