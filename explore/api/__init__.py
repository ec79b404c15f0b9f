"""Front doors in Python, mirroring the CLI: :func:`predict` (one static batch), :func:`serve`
(a serving simulation) and :func:`write_step_trace` (a step replayed op by op)."""

from explore.api.predict import predict
from explore.api.serve import ServeRequest, rate_search, serve
from explore.api.trace import step_simulations, write_step_trace

__all__ = ["ServeRequest", "predict", "rate_search", "serve", "step_simulations",
           "write_step_trace"]  # fmt: skip
