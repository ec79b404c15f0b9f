"""Co-design search with Optuna: chip x model shape x deployment, under area, power and cost.

Each trial samples the space's dimensions, rejects a point that cannot run before costing it
(:class:`explore.search.objectives.Infeasible`: ``optuna.TrialPruned``, with the reason in the
``infeasible`` user attr), and otherwise costs it with the analytic model. Constraints go to the
samplers and to ``Study.best_trials`` through ``Trial.set_constraint`` (Optuna 5's successor of
``constraints_func``): a violated constraint keeps the real objective values; the trial is just
infeasible. The Pareto set is Optuna's ``study.best_trials`` (feasible COMPLETE trials only).

Only Optuna's public API is used. Trials run in ``Study.optimize``; ``n_trials`` is the study's
total budget of finished (COMPLETE + PRUNED) trials, so a rerun tops a study up and a rerun with
the same number does nothing. Workers share the budget: ``MaxTrialsCallback`` stops a worker once
the budget is spent, and because two workers can both start the last trial, a trial whose
number ranks beyond the budget among the study's not-failed trials is discarded before it
samples anything (FAIL, user attr ``surplus``): the storage numbers trials atomically, so exactly
one worker wins each slot and the study never overshoots.

Liveness. A worker killed mid-trial leaves the trial RUNNING; it must be failed and its
parameters retried (``RetryHeartbeatStaleTrialCallback``, at most 3 times), but only once its
process is really gone: failing a live worker's trial makes that worker die with
``UpdateFinishedTrialError``. "Whoever starts next" is no evidence of death, so liveness comes
from heartbeats:

* ``sqlite:///F``, ``postgresql://``, ``mysql://``: Optuna's RDB heartbeat
  (``RDBStorage(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
  heartbeat_stale_trial_callback=...)``); ``Study.optimize`` fails stale trials before each new
  one. (``failed_trial_callback`` and ``RetryFailedTrialCallback`` are deprecated in Optuna 5.)
* the journal file (default ``OUT/study.journal``): ``JournalStorage`` does not implement
  Optuna's heartbeat in 5.0 (it is no ``BaseHeartbeat``, and ``fail_stale_trials`` skips it).

So every trial also beats through the public API, on any storage: a thread renews its
``heartbeat`` user attr every HEARTBEAT_S while it runs (``Trial.set_user_attr``; a trial of
milliseconds never writes). Whenever it runs no trial of its own (before its first, and while
it waits for the budget), every worker watches the RUNNING trials of others: one that for
GRACE_S of the watcher's own monotonic clock neither finished nor renewed its beat is dead, and
is failed (``Study.tell(number, state=FAIL)``) and retried. Watching with one's own clock needs
no agreement of clocks or time zones between hosts. This is the only mechanism for the journal;
on RDB it also catches the trial Optuna never fails, one killed between its creation and its
first heartbeat (Optuna leaves a trial without a heartbeat row RUNNING forever, by design:
optuna#4026). A worker whose remaining budget is held by others' RUNNING trials waits for them
to finish or die, so a resumed study always ends with exactly ``n_trials`` finished trials.
A worker stopped (not killed) for longer than GRACE_S is declared dead as well: its point is
retried elsewhere and the stopped worker fails when it resumes (rerun to carry on).

Each process seeds its sampler with ``seed`` + the number of its first trial: one process is
reproducible, and concurrent ones (same ``--seed``) do not sample the same points.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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

__all__ = ["SearchResult", "apply_overrides", "search", "study_result"]

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
    """(Optuna storage, URL workers can reopen). RDB storages carry Optuna's heartbeat; the
    journal has none (see the module docstring)."""
    from optuna.storages import RDBStorage
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
            storage = RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                 heartbeat_stale_trial_callback=_retry())  # fmt: skip
    except Exception as exc:
        raise ConfigError(f"--storage {url}: cannot open ({type(exc).__name__}: {exc})") from None
    return storage, url


def _retry():
    """Re-enqueue a dead trial's parameters (WAITING), at most MAX_RETRY times per point."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # experimental in Optuna 5
        warnings.simplefilter("ignore")
        return RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


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

    # ERROR: a surplus trial is a FAIL that Study.optimize would log as a warning
    optuna.logging.set_verbosity(optuna.logging.ERROR)
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

HEARTBEAT_S = 2  # a running trial renews its heartbeat this often (s; RDB wants an int)
GRACE_S = 10  # ... and is dead after this long without one (s)
POLL_S = 0.25  # how often a worker waiting on others' trials looks again
MAX_RETRY = 3  # a point whose trial died is retried at most this often
BEAT = "heartbeat"  # the user attr a running trial renews


class _SurplusError(Exception):
    """The trial ranks beyond the budget: another worker took the last slot."""


def _evaluate(space: Space, trial) -> list[float]:
    """Sample and cost one point. Infeasible: ``TrialPruned`` with the reason in a user attr;
    constraint values go to the samplers and keep the real objective values."""
    import optuna

    params = {d.key: d.suggest(trial) for d in space.dims}
    try:
        point = evaluate_point(space.base, params, space.quality)
        _known(point, space)
    except Infeasible as exc:
        trial.set_user_attr("infeasible", str(exc))
        raise optuna.TrialPruned(str(exc)) from None
    m = point.metrics
    cons = [c.violation(m[c.metric]) for c in space.constraints]
    trial.set_user_attr("metrics", m)
    trial.set_user_attr("constraints", cons)
    for c, v in zip(space.constraints, cons, strict=True):
        trial.set_constraint(str(c), v)  # read by the samplers and best_trials (Optuna >= 5)
    trial.set_user_attr("notes", [n for n in point.notes if n.startswith("EXTRAPOLATED")])
    return [m[o] for o in space.objectives]


def _known(point, space: Space) -> None:
    """Objectives and constraints need numbers: a metric the chip does not define (the die area
    of a preset with no published area) makes the point Infeasible, with that reason."""
    used = (*space.objectives, *(c.metric for c in space.constraints))
    unknown = [k for k in dict.fromkeys(used) if not math.isfinite(point.metrics[k])]
    if unknown:
        raise Infeasible(
            f"{', '.join(unknown)} unknown for chip {point.chip.name} "
            "(no published figure); drop it from the objectives and constraints"
        )


def _rank(study, number: int) -> int:
    """How many not-failed trials precede ``number`` (the storage numbers trials atomically)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return sum(1 for t in trials if t.number < number and t.state != TrialState.FAIL)


@contextmanager
def _beating(trial):
    """Renew the trial's ``heartbeat`` user attr every HEARTBEAT_S while the block runs, so that
    other workers see it alive however long it takes (a trial of milliseconds never writes)."""
    from optuna.exceptions import UpdateFinishedTrialError

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                trial.set_user_attr(BEAT, time.time())
            except UpdateFinishedTrialError:  # declared dead after all (e.g. a stopped host)
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass
class _Objective:
    """``Study.optimize``'s objective: claim a slot of the budget, then beat and evaluate."""

    space: Space
    n_target: int
    seeded: bool = False

    def __call__(self, trial) -> list[float]:
        study = trial.study
        if not self.seeded:  # distinct streams for concurrent workers; see the module docstring
            study.sampler = _sampler(self.space, self.space.seed + trial.number)
            self.seeded = True
        if _rank(study, trial.number) >= self.n_target:
            trial.set_user_attr("surplus", True)
            study.stop()
            raise _SurplusError(trial.number)
        with _beating(trial):
            return _evaluate(self.space, trial)


class _Tally:
    """Callback: counts the trials this process finished and ticks the progress bar."""

    def __init__(self, on_done=None):
        self.n, self.on_done = 0, on_done

    def __call__(self, study, trial) -> None:
        if trial.state.name in FINISHED:
            self.n += 1
            if self.on_done:
                self.on_done()


class _Watch:
    """Fails (and retries) the trials of dead workers: a RUNNING trial that, for GRACE_S of this
    process's own monotonic clock, neither finished nor renewed its ``heartbeat`` attr. Only
    called while this process runs no trial, so every RUNNING trial it sees is another's."""

    def __init__(self, study, storage):
        import optuna

        self.rdb = isinstance(storage, optuna.storages.RDBStorage)
        # telling a trial runs the sampler's after_trial: a plain RandomSampler has none
        self.study = optuna.load_study(study_name=study.study_name, storage=storage,
                                       sampler=optuna.samplers.RandomSampler())  # fmt: skip
        self.seen: dict[int, tuple[Any, float]] = {}  # number -> (last beat, when it changed)
        self.retry = _retry()

    def __call__(self) -> None:
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        if self.rdb:  # Optuna's own heartbeat first (what Study.optimize also does)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fail_stale_trials(self.study)
        now, seen = time.monotonic(), {}
        for t in self.study.get_trials(deepcopy=True, states=(TrialState.RUNNING,)):
            mark = t.user_attrs.get(BEAT)
            last = self.seen.get(t.number)
            seen[t.number] = last if last is not None and last[0] == mark else (mark, now)
            if now - seen[t.number][1] > GRACE_S:
                self._fail(t)
        self.seen = seen

    def _fail(self, trial) -> None:
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        try:
            self.study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, UpdateFinishedTrialError):  # finished, or failed by another worker
            return
        self.retry(self.study, trial)


def _counts(study) -> tuple[int, int]:
    """(finished, running) trials of the study."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                      TrialState.RUNNING))  # fmt: skip
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return len(trials) - running, running


def _loop(study, storage, space: Space, n_target: int, on_done=None) -> int:
    """Run trials until the study has ``n_target`` finished ones; returns how many this process
    finished. Waits while others' RUNNING trials hold the rest of the budget, until they finish
    or the watch declares them dead (their parameters then come back as WAITING trials)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    watch, tally = _Watch(study, storage), _Tally(on_done)
    objective = _Objective(space, n_target)
    stop = MaxTrialsCallback(n_target, states=(TrialState.COMPLETE, TrialState.PRUNED))
    while True:
        watch()
        finished, running = _counts(study)
        if finished >= n_target:
            return tally.n
        if finished + running >= n_target:
            time.sleep(POLL_S)
            continue
        study.optimize(objective, n_trials=n_target - finished - running,
                       callbacks=[stop, tally], catch=(_SurplusError,))  # fmt: skip


def _worker(space: Space, storage_url: str, out: str, n_target: int) -> int:
    """One spawned worker process: reopen the storage and the study, run the shared budget."""
    storage, _ = _storage(storage_url, Path(out))
    study = _open(space, storage, create=False, seed=space.seed)
    return _loop(study, storage, space, n_target)


# --------------------------------------------------------------------------- results


def _row(t) -> dict:
    cons = t.user_attrs.get("constraints", [])
    return {
        "number": t.number, "state": t.state.name, "params": dict(t.params),
        "values": list(t.values) if t.values else None,
        "metrics": t.user_attrs.get("metrics", {}),
        "feasible": t.state.name == "COMPLETE" and all(c <= 0 for c in cons),
        "constraints": cons, "reason": t.user_attrs.get("infeasible", ""),
        "notes": t.user_attrs.get("notes", []),
    }  # fmt: skip


def study_result(study, space: Space, storage_url: str) -> SearchResult:
    """Every trial's row, and the Pareto set from ``study.best_trials`` (feasible COMPLETE
    trials, non-dominated) sorted by the first objective, best first."""
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    by_number = {r["number"]: r for r in rows}
    front = [by_number[t.number] for t in study.best_trials]
    front.sort(key=lambda r: r["values"][0], reverse=space.directions[0] == "maximize")
    return SearchResult(
        study_name=space.name, storage=storage_url, objectives=space.objectives,
        directions=space.directions,
        n_trials_complete=sum(r["state"] in FINISHED for r in rows),
        n_trials_feasible=sum(r["feasible"] for r in rows), pareto=front, trials=rows,
    )  # fmt: skip


# --------------------------------------------------------------------------- front door


def apply_overrides(space: Space, **kw) -> Space:
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
    sp = apply_overrides(sp, objectives=objectives, constraints=constraints, base=base,
                study_name=study_name, n_trials=n_trials, seed=seed)  # fmt: skip
    out_dir = Path(out) if out else Path("xpusim-search") / sp.name
    st, url = _storage(storage, out_dir)
    study = _open(sp, st, create=True, seed=sp.seed)
    t0 = time.perf_counter()
    done = _run(study, st, sp, url, out_dir, workers, progress)
    res = study_result(study, sp, url)
    res.wall_s, res.n_trials_done_here = time.perf_counter() - t0, done
    res.space, res.study = sp, study
    return res


def _run(study, st, sp: Space, url: str, out_dir: Path, workers: int, progress: bool) -> int:
    """Trials this process (or its ``workers`` spawned processes) finished."""
    if workers < 1:
        raise ConfigError("--workers must be >= 1")
    with _Bar(study, sp.n_trials, progress) as bar:
        if workers == 1:
            return _loop(study, st, sp, sp.n_trials, on_done=bar.tick)
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers) as pool:
            jobs = [pool.apply_async(_worker, (sp, url, str(out_dir), sp.n_trials))
                    for _ in range(workers)]  # fmt: skip
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
