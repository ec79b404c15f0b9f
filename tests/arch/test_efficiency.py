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
