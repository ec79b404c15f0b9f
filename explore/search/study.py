"""Co-design search with Optuna: chip x model shape x deployment, under area, power and cost.

Each trial samples the space's dimensions, rejects a point that cannot run before costing it
(:class:`explore.search.objectives.Infeasible`: recorded as PRUNED with its reason), and otherwise
costs it with the analytic model. Constraints go to the sampler through
``Trial.set_constraint`` (Optuna 5's successor of ``constraints_func``): a violated constraint
keeps the real objective values; the trial is just infeasible.

Storage and resumption: by default a journal file (``OUT/study.journal``); ``--storage`` also
takes ``sqlite:///file.db`` or ``postgresql://...`` (Optuna's RDB storage, with heartbeats so a
dead worker's trial is failed and its parameters retried). A study resumes by name: ``n_trials``
is the total of finished trials (COMPLETE + PRUNED); a rerun adds only what is missing. Trials a
killed process left RUNNING in a journal are failed and their parameters enqueued again, so none
is lost; trial numbers are allocated by the storage and a trial whose number ranks beyond
``n_trials`` is discarded before it runs (FAIL, ``surplus``), so concurrent workers never
overshoot and nothing is evaluated twice.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from arch.base import ConfigError
from explore.search.objectives import METRICS, Infeasible, chinchilla_loss, evaluate_point
from explore.search.space import (
    Constraint,
    Space,
    load_space,
    parse_constraint,
    parse_objectives,
)
from workloads.presets import load_model

__all__ = ["SearchResult", "pareto_front", "search"]

FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class SearchResult:
    study_name: str
    storage: str
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    n_trials_complete: int
    n_trials_feasible: int
    pareto: list[dict]
    trials: list[dict] = field(repr=False, default_factory=list)
    wall_s: float = 0.0
    n_trials_done_here: int = 0
    confirmed: list[dict] = field(default_factory=list)
    space: Space | None = field(default=None, repr=False)  # as run (overrides applied)
    study: Any = field(default=None, repr=False)  # the Optuna study, for plots

    def to_json(self) -> dict:
        return {
            "study_name": self.study_name,
            "n_trials_complete": self.n_trials_complete,
            "n_trials_feasible": self.n_trials_feasible,
            "objectives": [{"name": n, "direction": d}
                           for n, d in zip(self.objectives, self.directions, strict=True)],
            "pareto": [{"params": p["params"], "values": p["values"], "number": p["number"],
                        "metrics": p["metrics"]} for p in self.pareto],
            "storage": self.storage,
            "trials_per_s": self.n_trials_done_here / self.wall_s if self.wall_s else None,
            "confirmed": self.confirmed,
        }  # fmt: skip


# --------------------------------------------------------------------------- storage & sampler


def _storage(url: str | None, out: Path):
    """(Optuna storage, URL workers can reopen)."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

    if url is None or url.endswith(".journal"):
        path = Path(url) if url else out / "study.journal"
        path.parent.mkdir(parents=True, exist_ok=True)
        # a lock is held for milliseconds; one older than 5 s belongs to a killed process
        lock = JournalFileSymlinkLock(str(path), grace_period=5)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock)), str(path)
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise ConfigError(f"--storage {url!r}: give a .journal path, sqlite:///F or postgresql://")
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5
            warnings.simplefilter("ignore")
            retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
            storage = RDBStorage(url, heartbeat_interval=5, grace_period=20,
                                 heartbeat_stale_trial_callback=retry)  # fmt: skip
    except Exception as exc:
        raise ConfigError(f"--storage {url}: cannot open ({type(exc).__name__}: {exc})") from None
    return storage, url


def _sampler(space: Space, seed: int):
    import optuna

    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.sampler == "grid":
        return optuna.samplers.GridSampler({d.key: d.grid() for d in space.dims}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _open(space: Space, storage, *, create: bool, seed: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kw = {"study_name": space.name, "storage": storage, "sampler": _sampler(space, seed)}
    if not create:
        return optuna.load_study(**kw)
    try:
        study = optuna.create_study(directions=list(space.directions), load_if_exists=True, **kw)
    except ValueError as exc:
        raise ConfigError(f"study {space.name!r}: {exc}") from None
    if tuple(d.name.lower() for d in study.directions) != space.directions:
        raise ConfigError(f"study {space.name!r} exists with other objectives; use another "
                          "--study-name or --storage")  # fmt: skip
    return study


# --------------------------------------------------------------------------- trials


def _run_one(study, space: Space, trial) -> str:
    """Evaluate a trial and tell the study; returns the final state name."""
    from optuna.trial import TrialState

    params = {d.key: d.suggest(trial) for d in space.dims}
    try:
        point = evaluate_point(space.base, params, space.quality)
    except Infeasible as exc:
        trial.set_user_attr("infeasible", str(exc))
        study.tell(trial, state=TrialState.PRUNED)
        return "PRUNED"
    m = point.metrics
    cons = [c.violation(m[c.metric]) for c in space.constraints]
    trial.set_user_attr("metrics", m)
    trial.set_user_attr("constraints", cons)
    for c, v in zip(space.constraints, cons, strict=True):
        trial.set_constraint(str(c), v)  # read by the samplers (Optuna >= 5)
    trial.set_user_attr("notes", [n for n in point.notes if n.startswith("EXTRAPOLATED")])
    study.tell(trial, [m[o] for o in space.objectives])
    return "COMPLETE"


def _rank(study, number: int) -> int:
    """How many not-failed trials precede ``number`` (the storage numbers trials atomically)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return sum(1 for t in trials if t.number < number and t.state != TrialState.FAIL)


def _loop(study, space: Space, n_target: int, on_done=None) -> int:
    """Ask/evaluate/tell until ``n_target`` trials exist that are not failed; returns how many
    this process finished."""
    from optuna.storages import RDBStorage, fail_stale_trials
    from optuna.storages._heartbeat import get_heartbeat_thread  # what Study.optimize uses
    from optuna.trial import TrialState

    done = 0
    heartbeat = isinstance(study._storage, RDBStorage)
    while True:
        if heartbeat:  # fail (and retry) the trials of workers that stopped beating
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fail_stale_trials(study)
        with warnings.catch_warnings():  # we run the heartbeat ourselves, below
            warnings.simplefilter("ignore", UserWarning)
            trial = study.ask()
        if _rank(study, trial.number) >= n_target:
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            return done
        # heartbeats (RDB storages) let other workers fail and retry this trial if we die
        with get_heartbeat_thread(trial._trial_id, study._storage):
            _run_one(study, space, trial)
        done += 1
        if on_done:
            on_done()


def _worker(space: Space, storage_url: str, out: str, n_target: int, seed: int) -> int:
    storage, _ = _storage(storage_url, Path(out))
    study = _open(space, storage, create=False, seed=seed)
    return _loop(study, space, n_target)


def _recover_journal(study) -> int:
    """Fail trials a killed process left RUNNING and enqueue their parameters again."""
    from optuna.trial import TrialState

    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        n += 1
    return n


# --------------------------------------------------------------------------- results


def pareto_front(values: np.ndarray, directions: tuple[str, ...]) -> np.ndarray:
    """Indices of the non-dominated rows of ``values[n, k]`` (all objectives minimized after
    flipping maximized ones)."""
    if len(values) == 0:
        return np.array([], dtype=int)
    v = values * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    keep = []
    for i in range(len(v)):
        dominated = np.any(np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1))
        if not dominated:
            keep.append(i)
    return np.array(keep, dtype=int)


def _rows(study, space: Space) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        cons = t.user_attrs.get("constraints", [])
        rows.append({
            "number": t.number, "state": t.state.name, "params": dict(t.params),
            "values": list(t.values) if t.values else None,
            "metrics": t.user_attrs.get("metrics", {}),
            "feasible": t.state.name == "COMPLETE" and all(c <= 0 for c in cons),
            "constraints": cons, "reason": t.user_attrs.get("infeasible", ""),
            "notes": t.user_attrs.get("notes", []),
        })  # fmt: skip
    return rows


def _result(study, space: Space, storage_url: str) -> SearchResult:
    rows = _rows(study, space)
    finished = [r for r in rows if r["state"] in FINISHED]
    feas = [r for r in rows if r["feasible"]]
    vals = np.array([r["values"] for r in feas]) if feas else np.zeros((0, len(space.objectives)))
    front = [feas[i] for i in pareto_front(vals, space.directions)]
    front.sort(key=lambda r: r["values"][0], reverse=space.directions[0] == "maximize")
    return SearchResult(
        study_name=space.name, storage=storage_url, objectives=space.objectives,
        directions=space.directions, n_trials_complete=len(finished),
        n_trials_feasible=len(feas), pareto=front, trials=rows,
    )  # fmt: skip


# --------------------------------------------------------------------------- front door


def _apply(space: Space, **kw) -> Space:
    """Overrides from the API or CLI on top of the space file."""
    upd: dict[str, Any] = {}
    if kw.get("objectives"):
        upd["objectives"], upd["directions"] = parse_objectives(list(kw["objectives"]), METRICS)
    if kw.get("constraints") is not None:
        upd["constraints"] = tuple(
            c if isinstance(c, Constraint) else parse_constraint(c, METRICS)
            for c in kw["constraints"]
        )
    if kw.get("base"):
        upd["base"] = {**space.base, **kw["base"]}
    for key in ("study_name", "n_trials", "seed"):
        if kw.get(key) is not None:
            upd["name" if key == "study_name" else key] = kw[key]
    space = replace(space, **upd)
    return _with_quality(space)


def _with_quality(space: Space) -> Space:
    """Resolve the quality guard: iso_loss adds a loss constraint at the base model's loss."""
    q = dict(space.quality)
    mode = q.get("mode", "none")
    if mode not in ("none", "iso_params", "iso_loss"):
        raise ConfigError(f"[quality] mode {mode!r}: none, iso_params or iso_loss")
    if mode == "iso_params" and any(d.key == "model.num_layers" for d in space.dims):
        raise ConfigError("[quality] iso_params solves num_layers; remove model.num_layers")
    if mode != "iso_loss":
        return replace(space, quality=q)
    base = load_model(space.base["model"])
    n = float(base.total_params())
    q["train_tokens"] = float(q.get("train_tokens", 20.0 * n))
    limit = chinchilla_loss(n, q["train_tokens"]) * (1 + float(q.get("tolerance", 0.0)))
    cons = tuple(c for c in space.constraints if c.metric != "loss")
    return replace(space, quality=q, constraints=(*cons, Constraint("loss", "<=", limit)))


def search(
    space: str | Path | Space,
    *,
    objectives: list[str] | None = None,
    constraints: list[str] | None = None,
    base: dict | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    seed: int | None = None,
    workers: int = 1,
    out: str | Path | None = None,
    progress: bool = False,
) -> SearchResult:
    """Run (or resume) a study until it has ``n_trials`` finished trials; returns the Pareto set
    of feasible trials and every trial's record."""
    sp = space if isinstance(space, Space) else load_space(space)
    sp = _apply(sp, objectives=objectives, constraints=constraints, base=base,
                study_name=study_name, n_trials=n_trials, seed=seed)  # fmt: skip
    out_dir = Path(out) if out else Path("xpusim-search") / sp.name
    st, url = _storage(storage, out_dir)
    study = _open(sp, st, create=True, seed=sp.seed)
    if url.endswith(".journal"):
        _recover_journal(study)
    # a resumed study continues its sampler's stream instead of replaying it from the start
    run_sp = replace(sp, seed=sp.seed + len(study.get_trials(deepcopy=False)))
    study.sampler = _sampler(run_sp, run_sp.seed)
    t0 = time.perf_counter()
    done = _run(study, run_sp, url, out_dir, workers, progress)
    res = _result(study, sp, url)
    res.wall_s, res.n_trials_done_here = time.perf_counter() - t0, done
    res.space, res.study = sp, study
    return res


def _run(study, sp: Space, url: str, out_dir: Path, workers: int, progress: bool) -> int:
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    with _Bar(study, sp.n_trials, progress) as bar:
        if workers == 1:
            return _loop(study, sp, sp.n_trials, on_done=bar.tick)
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers) as pool:
            jobs = [pool.apply_async(_worker, (sp, url, str(out_dir), sp.n_trials, sp.seed + i))
                    for i in range(workers)]  # fmt: skip
            while not all(j.ready() for j in jobs):
                bar.tick()
                time.sleep(0.5)
            return sum(j.get() for j in jobs)


class _Bar:
    """A rich progress bar with ETA over finished trials (stderr; off for --json)."""

    def __init__(self, study, total: int, enabled: bool):
        self.study, self.total, self.enabled = study, total, enabled
        self._p = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TimeRemainingColumn

            self._p = Progress("[progress.description]{task.description}", BarColumn(),
                               "{task.completed}/{task.total}", TimeRemainingColumn(),
                               console=Console(stderr=True), transient=True)  # fmt: skip
            self._p.start()
            self._task = self._p.add_task("trials", total=self.total, completed=self._n())
        return self

    def _n(self) -> int:
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED)
        return len(self.study.get_trials(deepcopy=False, states=states))

    def tick(self) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=self._n())

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.stop()


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def dumps(obj: Any) -> str:
    """JSON with non-finite floats as null."""

    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return _finite(o)

    return json.dumps(clean(obj), indent=2)
