"""Models, quantization, parallelism and the op graph of one step."""

from workloads.capacity import WEIGHT_PLACES, MemoryPlan, place_weights, plan_memory
from workloads.graph import build_graph
from workloads.model import ModelSpec
from workloads.ops import OpGraph, OpKind
from workloads.parallel import Parallelism
from workloads.presets import load_model, model_names
from workloads.quant import QuantSpec, get_quant

__all__ = [
    "WEIGHT_PLACES",
    "MemoryPlan",
    "ModelSpec",
    "OpGraph",
    "OpKind",
    "Parallelism",
    "QuantSpec",
    "build_graph",
    "get_quant",
    "load_model",
    "model_names",
    "place_weights",
    "plan_memory",
]
