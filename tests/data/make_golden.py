"""Regenerate tests/data/golden.json: a fixed set of predictions stored before a speed change.

    .venv/bin/python tests/data/make_golden.py

Run it only when a change is meant to move numbers; tests/test_golden.py checks the current code
reproduces every number of every case to 1e-12 relative.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from explore.api.predict import predict, result_dict  # noqa: E402

# (system, model, quant, keyword arguments of predict)
CASES: list[tuple[str, str, str, dict]] = [
    ("h100-sxm:8", "llama-3.1-70b", "fp8",
     {"tp": 8, "pp": 1, "ep": 1, "dp": 1, "batch": 64, "input_len": 1024, "output_len": 256}),
    ("h100-sxm:8", "llama-3.1-70b", "fp8",
     {"tp": 8, "pp": 1, "ep": 1, "dp": 1, "batch": 1, "input_len": 2048, "output_len": 256}),
    ("h100-sxm:8", "llama-3.1-70b", "fp8",
     {"tp": 8, "pp": 1, "ep": 1, "dp": 1, "batch": "max", "input_len": 2048, "output_len": 256}),
    ("h100-sxm:8", "llama-3.1-70b", "fp8",
     {"tp": 2, "pp": 1, "ep": 1, "dp": 4, "batch": "max", "tpot_slo_s": 0.04,
      "input_len": 2048, "output_len": 256}),
    ("h200:8", "deepseek-v3", "fp8",
     {"tp": 1, "pp": 1, "ep": 8, "dp": 8, "batch": 32, "input_len": 2048, "output_len": 256}),
    ("h200:8", "deepseek-v3", "fp8",
     {"tp": 1, "pp": 1, "ep": 8, "dp": 8, "batch": "max", "input_len": 2048, "output_len": 256}),
    ("groq-lpu:640", "llama-2-70b", "fp8",
     {"tp": 8, "pp": 80, "ep": 1, "dp": 1, "batch": 1, "input_len": 1024, "output_len": 256}),
    ("cerebras-wse3:4", "llama-3.1-70b", "fp16",
     {"tp": 1, "pp": 4, "ep": 1, "dp": 1, "batch": 1, "input_len": 1024, "output_len": 256}),
    ("tpu-v5p:8", "llama-3.1-70b", "bf16",
     {"tp": 8, "pp": 1, "ep": 1, "dp": 1, "batch": 1, "input_len": 2048, "output_len": 256}),
    ("tpu-v5p:8", "llama-3.1-70b", "bf16",
     {"tp": 8, "pp": 1, "ep": 1, "dp": 1, "batch": "max", "input_len": 2048, "output_len": 256}),
]


def case_id(case: tuple[str, str, str, dict]) -> str:
    system, model, quant, kw = case
    return f"{system}/{model}/{quant}/" + ",".join(f"{k}={v}" for k, v in kw.items())


def compute(case: tuple[str, str, str, dict]) -> dict:
    system, model, quant, kw = case
    return json.loads(json.dumps(result_dict(predict(system, model, quant, **kw)), default=str))


def main() -> int:
    out = {case_id(c): compute(c) for c in CASES}
    (HERE / "golden.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out)} cases to {HERE / 'golden.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
