"""Validation rows carry the engine they ran; calibration fits engine factors on named rows."""

from explore.validation.calibrate import informed, ttft_engines
from explore.validation.cases import Case, engine_of


def _row(**kw):
    base = {"parallelism": "", "workload": "", "source": "", "notes": ""}
    return {**base, **kw}


def test_engine_of_reads_the_rows_text():
    assert engine_of(_row(source="xpusim benchmarks/device/measure_gpu.py")) == "pytorch"
    assert engine_of(_row(workload="TensorRT-LLM perf overview, trtllm-bench")) == "trtllm"
    assert engine_of(_row(workload="TRT-LLM gptSessionBenchmark, batch 1")) == "trtllm-2023"
    bench = "argonne-lcf/LLM-Inference-Bench"
    trt = _row(parallelism="TensorRT-LLM, 1 device(s)", source=bench)
    assert engine_of(trt) == "trtllm-legacy"
    assert engine_of(_row(parallelism="vLLM, 1 device(s)", source=bench)) == "vllm-legacy"
    assert engine_of(_row(notes="NVIDIA DGX-H100_H100-SXM-80GBx8_TRT; p99")) == "trtllm"
    assert engine_of(_row(parallelism="Deepspeed, 8 device(s)")) == "deepspeed"
    assert engine_of(_row(workload="JetStream benchmark_serving.py")) == "jetstream"
    assert engine_of(_row(workload="a measurement that names no engine")) is None


def _case(metric, engine, cls="end_to_end", family="amd-cdna3"):
    return Case(id="X", family=family, chip="mi300x", metric=metric, cls=cls, measured=1.0,
                unit="", describe="", predict=lambda ov: 1.0, engine=engine)  # fmt: skip


def test_engine_factors_are_fitted_on_named_rows_only():
    """TTFT rows fit their engine engine-wide; runs of an old release with no TTFT rows fit it
    per family; runs of today's releases and of the vendor stacks fit nothing (validation)."""
    ttft = _case("ttft_ms", "trtllm-2023", family="nvidia-hopper")
    run_old = _case("e2e_latency_s", "vllm-legacy")
    run_new = _case("throughput_output_tokens_per_s", "trtllm", family="nvidia-hopper")
    vendor = _case("e2e_latency_s", "vendor", family="sambanova-rdu")
    cases = [ttft, run_old, run_new, vendor]
    seen = ttft_engines(cases)
    assert seen == {"trtllm-2023"}
    assert informed(ttft, seen) == {("engine:trtllm-2023", "step_overhead_s"),
                                    ("engine:trtllm-2023", "kernel_scale")}  # fmt: skip
    table = "engine:vllm-legacy@amd-cdna3"
    assert informed(run_old, seen) == {(table, "step_overhead_s"), (table, "kernel_scale")}
    assert informed(run_new, seen) == set() and informed(vendor, seen) == set()
    # an old release's runs stay validation once TTFT rows fit it engine-wide, and an old
    # TensorRT-LLM (cuBLAS, the microbenchmarked kernels) is never fitted on runs
    assert informed(_case("e2e_latency_s", "trtllm-2023", family="nvidia-ampere"), seen) == set()
    assert informed(_case("e2e_latency_s", "trtllm-legacy", family="nvidia-ampere"), seen) == set()
