"""Co-design search: spaces as data (:func:`load_space`), one design point costed
(:func:`evaluate_point`, metrics registered in :data:`METRICS`), the Optuna study
(:func:`search`), dense grids (:func:`sweep`) and what a search writes (designs, tables, plots)."""

from explore.search.objectives import METRICS, Infeasible, Point, evaluate_point
from explore.search.space import Constraint, Dim, Space, load_space
from explore.search.study import SearchResult, search
from explore.search.sweep import SweepResult, sweep

__all__ = ["METRICS", "Constraint", "Dim", "Infeasible", "Point", "SearchResult", "Space",
           "SweepResult", "evaluate_point", "load_space", "search", "sweep"]  # fmt: skip
