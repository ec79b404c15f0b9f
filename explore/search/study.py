"""Co-design search with Optuna: chip x model shape x deployment, under area, power and cost.

Each trial evaluates one point, rejects a point that cannot run before costing it
(:class:`explore.search.objectives.Infeasible`: ``optuna.TrialPruned``, with the reason in the
``infeasible`` user attr), and otherwise costs it with the analytic model. Constraints go to the
samplers and to ``Study.best_trials`` through ``Trial.set_constraint`` (Optuna 5's successor of
``constraints_func``): a violated constraint keeps the real objective values; the trial is just
infeasible. The Pareto set is Optuna's ``study.best_trials`` (feasible COMPLETE trials only).
Only Optuna's public API is used.

Slots: one seeded sequence, whoever runs it. The study's budget is ``n_trials`` *slots*,
numbered 0, 1, 2, ...; slot k's parameters are a pure function of the seed, k and (adaptive
samplers) the results of the slots before k's batch (:class:`_Plan`):

* ``random``: slot k draws from ``RandomSampler(seed=SeedSequence([seed, k]))``;
* ``grid``: slot k is the k-th point of a seeded permutation of the grid (cycling);
* ``tpe`` and ``nsga2``: slots come in batches (TPE_BATCH for TPE; one NSGA-II generation,
  the population size); batch j is asked from the seeded sampler (seed from ``[seed, j]``) in
  an in-memory shadow study that holds the results of batches < j in slot order, so no worker
  can see a different history. Batch j+1 waits for batch j to finish.

Any worker enqueues the next missing slots (``Study.enqueue_trial`` with the ``slot`` user
attr, up to WINDOW waiting) and runs waiting trials (``Study.ask`` pops one, ``Study.tell``
finishes it; pops on a SQLite file hold a file lock, as SQLite ignores ``FOR UPDATE``). So
``--workers N``, two processes, a killed-and-resumed run and one uninterrupted process all
produce the same set of (slot, parameters, values), and ``trials.csv`` (one row per slot, in
slot order) is identical. Optuna's trial *numbers* are storage ids in order of creation: they
match the slots in one uninterrupted process, and may differ with several workers (two
workers can enqueue one slot at once, or ask as the queue runs dry), so outputs name slots.

The budget. The study is done when every slot < ``n_trials`` is *finished*: its trial is
COMPLETE or PRUNED (infeasible), or its point was given up after killing its worker MAX_RETRY +
1 times (FAIL; counted as spent so that a point that crashes every process cannot hold the
study forever, and reported in ``n_trials_given_up``). A rerun with the same ``n_trials`` does
nothing, a larger one tops the study up. A trial that finds its slot already held by an
earlier not-failed trial (two workers enqueued it), or that was asked when no slot was waiting,
is discarded before it samples anything (FAIL, user attr ``surplus``, no parameters): each
slot is finished exactly once, so the study never overshoots and never repeats a point.

Liveness. A worker killed mid-trial leaves the trial RUNNING; it must be failed (its slot is
then enqueued again), but only once its process is really gone: failing a live worker's trial
makes that worker die with ``UpdateFinishedTrialError``. "Whoever starts next" is no evidence
of death, so liveness comes from heartbeats, the same on every storage (journal, SQLite,
PostgreSQL): a thread renews the trial's ``heartbeat`` user attr every HEARTBEAT_S while it
runs (``Trial.set_user_attr``; a trial of milliseconds never writes). Whenever it runs no trial
of its own, every worker watches the RUNNING trials of others: one that for GRACE_S of the
watcher's own monotonic clock neither finished nor renewed its beat is dead, and is failed
(``Study.tell(number, state=FAIL)``); its slot is enqueued again. Watching with one's own clock
needs no agreement of clocks between hosts, and it also catches a trial killed before its
first beat. (Optuna's own RDB heartbeat is not used: it beats only inside ``Study.optimize``,
never for a trial killed before its first heartbeat (optuna#4026), not at all on the journal
in Optuna 5.0 (``JournalStorage`` is no ``BaseHeartbeat``), and ``Study.optimize`` pops waiting
trials without the SQLite lock.) A worker whose remaining slots are held by others' RUNNING
trials waits for them to finish or die. A worker stopped (not killed) for longer than GRACE_S
is declared dead as well: its slot runs elsewhere and the stopped worker fails when it resumes
(rerun to carry on).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from arch.base import ConfigError
from explore.search.objectives import METRICS, Infeasible, chinchilla_loss, evaluate_point
from explore.search.space import (
    Constraint,
    Space,
    check_study_name,
    load_space,
    parse_constraint,
    parse_objectives,
)
from workloads.presets import load_model

__all__ = [
    "SearchResult",
    "apply_overrides",
    "check_out_dir",
    "search",
    "slot_key",
    "study_result",
]

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
    n_trials_given_up: int = 0

    def to_dataframe(self):
        """One row per trial (in slot order): slot, number, state, feasible, each parameter,
        each objective's value, each metric (``metric.NAME``), the infeasibility reason (needs
        pandas)."""
        from sim.evaluate import require_pandas

        pd = require_pandas("SearchResult.to_dataframe()")
        rows = []
        for r in sorted(self.trials, key=slot_key):
            vals = r["values"] or [None] * len(self.objectives)
            rows.append({"slot": r["slot"], "number": r["number"], "state": r["state"],
                         "feasible": r["feasible"], **r["params"],
                         **dict(zip(self.objectives, vals, strict=True)),
                         **{f"metric.{k}": v for k, v in r["metrics"].items()},
                         "reason": r["reason"]})  # fmt: skip
        return pd.DataFrame(rows)

    def to_json(self) -> dict:
        return {
            "study_name": self.study_name,
            "n_trials_complete": self.n_trials_complete,
            "n_trials_feasible": self.n_trials_feasible,
            "n_trials_given_up": self.n_trials_given_up,
            "objectives": [{"name": n, "direction": d}
                           for n, d in zip(self.objectives, self.directions, strict=True)],
            "pareto": [{"params": p["params"], "values": p["values"], "slot": p["slot"],
                        "number": p["number"], "metrics": p["metrics"]} for p in self.pareto],
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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--storage {path}: cannot create its folder ({exc.strerror}); "
                              "give a writable path") from None  # fmt: skip
        if path.is_dir():
            raise ConfigError(f"--storage {path} is a folder; give a .journal file path")
        # a lock is held for milliseconds; one older than 5 s belongs to a killed process
        lock = JournalFileSymlinkLock(str(path), grace_period=5)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock)), str(path)
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise ConfigError(f"--storage {url!r}: give a .journal path, sqlite:///F or postgresql://")
    for attempt in range(5):
        try:
            return RDBStorage(url), url
        except Exception as exc:
            # two processes creating the schema of a fresh database at once: one of them
            # fails (PostgreSQL: "duplicate key ... pg_type"); the schema is there a moment later
            racing = "duplicate key" in str(exc) or "already exists" in str(exc)
            if attempt == 4 or not racing:
                raise ConfigError(f"--storage {url}: cannot open ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0]})") from None  # fmt: skip
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sampler(space: Space, seed: int):
    """The space's sampler, for the shadow study of :class:`_Plan` (adaptive samplers)."""
    import optuna

    if space.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def _seed(*key: int) -> int:
    """A 32-bit seed for ``key`` (the study's seed, then a slot or batch index)."""
    return int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])


def _open(space: Space, storage, *, create: bool, seed: int):
    import optuna

    # ERROR: a surplus trial is a FAIL that Study.tell would log as a warning
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # parameters come from the plan (enqueued); the study's own sampler only ever serves a
    # surplus ask that samples nothing
    kw = {"study_name": space.name, "storage": storage,
          "sampler": optuna.samplers.RandomSampler(seed=seed)}  # fmt: skip
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


# --------------------------------------------------------------------------- the plan

HEARTBEAT_S = 2  # a running trial renews its heartbeat this often (s; RDB wants an int)
GRACE_S = 10  # ... and is dead after this long without one (s)
POLL_S = 0.1  # how often a worker waiting on others' trials looks again
MAX_RETRY = 3  # a point whose trial died is retried at most this often, then given up
BEAT = "heartbeat"  # the user attr a running trial renews
SLOT = "slot"  # the user attr naming a trial's slot
SURPLUS = "surplus"  # the user attr of a discarded trial
WINDOW = 16  # slots kept waiting ahead of the workers
TPE_BATCH = 8  # TPE slots asked together from one history
GRID_SHUFFLE_MAX = 1 << 20  # grids up to this size are permuted; larger ones drawn per slot


class _Plan:
    """The seeded sequence of points (see the module docstring): ``params(k, done)`` is slot
    k's parameters, or None while the batches before k's have not all finished."""

    def __init__(self, space: Space):
        import optuna

        self.space = space
        self.adaptive = space.sampler in ("tpe", "nsga2")
        self.batch = _batch_size(space)
        self.shadow = optuna.create_study(directions=list(space.directions))
        self.made: dict[int, list[dict]] = {}  # batch -> its slots' parameters
        self.asked: dict[int, list] = {}  # batch -> its shadow trials (adaptive samplers)
        self.told = 0  # batches whose results the shadow holds
        self._grid = _Grid(space) if space.sampler == "grid" else None

    def params(self, slot: int, done: dict) -> dict | None:
        if self._grid is not None:
            return self._grid.point(slot)
        if not self.adaptive:
            return self._random(slot)
        j = slot // self.batch
        while self.told < j:
            first = self.told * self.batch
            rows = [done.get(k, _MISSING) for k in range(first, first + self.batch)]
            if any(r is _MISSING for r in rows):
                return None
            self._make(self.told)
            self._tell(self.told, rows)
            self.told += 1
        self._make(j)
        return self.made[j][slot - j * self.batch]

    def _random(self, slot: int) -> dict:
        import optuna

        if slot not in self.made:
            self.shadow.sampler = optuna.samplers.RandomSampler(seed=_seed(self.space.seed, slot))
            trial = self.shadow.ask()
            self.made[slot] = [{d.key: d.suggest(trial) for d in self.space.dims}]
        return self.made[slot][0]

    def _make(self, j: int) -> None:
        if j in self.made:
            return
        self.shadow.sampler = _sampler(self.space, _seed(self.space.seed, j))
        with warnings.catch_warnings():  # multivariate TPE is marked experimental
            warnings.simplefilter("ignore")
            trials = [self.shadow.ask() for _ in range(self.batch)]
            self.made[j] = [{d.key: d.suggest(t) for d in self.space.dims} for t in trials]
        self.asked[j] = trials

    def _tell(self, j: int, rows: list) -> None:
        """Batch j's results into the shadow, in slot order (None: given up)."""
        from optuna.trial import TrialState

        for trial, row in zip(self.asked.pop(j), rows, strict=True):
            if row is None:
                self.shadow.tell(trial, state=TrialState.FAIL)
            elif row.state == TrialState.PRUNED:
                self.shadow.tell(trial, state=TrialState.PRUNED)
            else:
                cons = row.user_attrs.get("constraints", [])
                for c, v in zip(self.space.constraints, cons, strict=False):
                    trial.set_constraint(str(c), v)
                self.shadow.tell(trial, list(row.values))


_MISSING = object()


def _batch_size(space: Space) -> int:
    if space.sampler == "nsga2":
        import optuna

        return int(optuna.samplers.NSGAIISampler().population_size or 50)
    return TPE_BATCH if space.sampler == "tpe" else 1


class _Grid:
    """Slot k -> the k-th point of a seeded permutation of the grid (first dimension slowest),
    starting over once every point was visited."""

    def __init__(self, space: Space):
        self.space = space
        self.values = [d.grid() for d in space.dims]
        self.size = math.prod(len(v) for v in self.values)
        small = self.size <= GRID_SHUFFLE_MAX
        self.order = np.random.default_rng(space.seed).permutation(self.size) if small else None

    def point(self, slot: int) -> dict:
        if self.order is not None:
            index = int(self.order[slot % self.size])
        else:
            index = int(np.random.default_rng(_seed(self.space.seed, slot)).integers(self.size))
        out = {}
        for d, vals in zip(reversed(self.space.dims), reversed(self.values), strict=True):
            index, i = divmod(index, len(vals))
            v = vals[i]
            out[d.key] = v.item() if hasattr(v, "item") else v
        return {d.key: out[d.key] for d in self.space.dims}


@dataclass
class _Slots:
    """The study's trials by slot: ``done`` maps a finished slot to its trial (None: given
    up); ``live`` holds slots with a WAITING or RUNNING trial."""

    done: dict[int, Any]
    live: set[int]
    waiting: int

    def finished(self, n: int) -> bool:
        return all(k in self.done for k in range(n))


def _slots(trials) -> _Slots:
    from optuna.trial import TrialState

    done: dict[int, Any] = {}
    live: set[int] = set()
    deaths: dict[int, int] = {}
    waiting = 0
    for t in trials:
        k = t.user_attrs.get(SLOT)
        if k is None:
            continue
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            done.setdefault(k, t)
        elif t.state in (TrialState.WAITING, TrialState.RUNNING):
            live.add(k)
            waiting += t.state == TrialState.WAITING
        elif not t.user_attrs.get(SURPLUS):
            deaths[k] = deaths.get(k, 0) + 1
    for k, n in deaths.items():
        if n > MAX_RETRY and k not in done and k not in live:
            done[k] = None
    return _Slots(done, live, waiting)


def _ensure(study, slots: _Slots, plan: _Plan, n_target: int) -> int:
    """Enqueue the lowest slots that have no trial, until WINDOW wait; returns how many."""
    added = 0
    for k in range(n_target):
        if slots.waiting + added >= WINDOW:
            break
        if k in slots.done or k in slots.live:
            continue
        params = plan.params(k, slots.done)
        if params is None:  # an adaptive batch waits for the one before it
            break
        study.enqueue_trial(params, user_attrs={SLOT: k})
        added += 1
    return added


# --------------------------------------------------------------------------- trials


def _evaluate(space: Space, trial) -> list[float]:
    """Cost one point (the enqueued slot's). Infeasible: ``TrialPruned`` with the reason in a
    user attr; constraint values go to the samplers and keep the real objective values."""
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


def _held(trial, slot: int) -> bool:
    """Whether an earlier not-failed trial holds ``slot`` (the storage numbers atomically)."""
    from optuna.trial import TrialState

    return any(t.number < trial.number and t.state != TrialState.FAIL
               and t.user_attrs.get(SLOT) == slot
               for t in trial.study.get_trials(deepcopy=False))  # fmt: skip


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


class _Watch:
    """Fails the trials of dead workers: a RUNNING trial that, for GRACE_S of this process's
    own monotonic clock, neither finished nor renewed its ``heartbeat`` attr. Only called
    while this process runs no trial, so every RUNNING trial it sees is another's."""

    def __init__(self, study, storage):
        import optuna

        # telling a trial runs the sampler's after_trial: a plain RandomSampler has none
        self.study = optuna.load_study(study_name=study.study_name, storage=storage,
                                       sampler=optuna.samplers.RandomSampler())  # fmt: skip
        self.seen: dict[int, tuple[Any, float]] = {}  # number -> (last beat, when it changed)

    def __call__(self) -> None:
        from optuna.trial import TrialState

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


def _loop(study, storage, space: Space, n_target: int, url: str, on_done=None) -> int:
    """Run slots until slots 0..n_target-1 are all finished; returns how many trials this
    process finished. Waits while others' RUNNING trials (or an adaptive batch) hold the rest,
    until they finish or the watch declares them dead (their slots are then enqueued again)."""
    watch, plan, n = _Watch(study, storage), _Plan(space), 0
    pop = _pop_lock(url)
    while True:
        watch()
        slots = _slots(study.get_trials(deepcopy=False))
        if slots.finished(n_target):
            return n
        waiting = slots.waiting + _ensure(study, slots, plan, n_target)
        if not waiting:
            time.sleep(POLL_S)
            continue
        for _ in range(waiting):
            state = _run_one(study, space, pop)
            n += state in FINISHED
            if state in FINISHED and on_done:
                on_done()
            if state == "EMPTY":
                break


def _run_one(study, space: Space, pop) -> str:
    """Pop a waiting slot and run it (``Study.ask`` / ``Study.tell``); returns the final state
    (EMPTY: the queue ran dry, another worker took the last slot). A trial whose slot an
    earlier trial holds, or asked with none waiting, is failed as ``surplus``."""
    import optuna
    from optuna.trial import TrialState

    with pop:
        trial = study.ask()
    slot = trial.user_attrs.get(SLOT)
    if slot is None or _held(trial, slot):
        trial.set_user_attr(SURPLUS, True)
        study.tell(trial, state=TrialState.FAIL)
        return "EMPTY" if slot is None else "FAIL"
    try:
        with _beating(trial):
            values = _evaluate(space, trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return "PRUNED"
    except BaseException:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    return study.tell(trial, values).state.name  # FAIL if a value is NaN


class _FileLock:
    """An exclusive ``flock`` on a file (all processes on one SQLite file share a host)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a")  # held until __exit__
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.fh.close()  # releases the lock (and so does the death of the process)


def _pop_lock(url: str):
    """What makes popping a waiting trial atomic. PostgreSQL and MySQL lock the row (``SELECT
    ... FOR UPDATE``) and the journal orders every write, but SQLite ignores ``FOR UPDATE``:
    two processes can both pop one waiting trial (seen in the kill tests: one of them then
    dies telling a trial the other finished), so pops on a SQLite file take a file lock."""
    db = url.split("///", 1)[1] if url.startswith("sqlite:///") else ""
    if not db or db == ":memory:":
        return contextlib.nullcontext()
    return _FileLock(Path(db).with_name(Path(db).name + ".pop-lock"))


def _worker(space: Space, storage_url: str, out: str, n_target: int, beat: tuple) -> int:
    """One spawned worker process: take the parent's heartbeat and grace (``beat``), reopen the
    storage and the study, run the shared budget."""
    global HEARTBEAT_S, GRACE_S
    HEARTBEAT_S, GRACE_S = beat
    storage, _ = _storage(storage_url, Path(out))
    study = _open(space, storage, create=False, seed=space.seed)
    return _loop(study, storage, space, n_target, storage_url)


# --------------------------------------------------------------------------- results


def _row(t) -> dict:
    cons = t.user_attrs.get("constraints", [])
    return {
        "number": t.number, "slot": t.user_attrs.get(SLOT), "state": t.state.name,
        "params": dict(t.params), "values": list(t.values) if t.values else None,
        "metrics": t.user_attrs.get("metrics", {}),
        "feasible": t.state.name == "COMPLETE" and all(c <= 0 for c in cons),
        "constraints": cons, "reason": t.user_attrs.get("infeasible", ""),
        "notes": t.user_attrs.get("notes", []),
    }  # fmt: skip


def study_result(study, space: Space, storage_url: str) -> SearchResult:
    """Every trial's row (in number order), and the Pareto set from ``study.best_trials``
    (feasible COMPLETE trials, non-dominated) sorted by the first objective, best first, ties
    by slot."""
    trials = study.get_trials(deepcopy=False)
    rows = [_row(t) for t in trials]
    by_number = {r["number"]: r for r in rows}
    front = [by_number[t.number] for t in study.best_trials]
    sign = -1.0 if space.directions[0] == "maximize" else 1.0
    front.sort(key=lambda r: (sign * r["values"][0], slot_key(r)))
    given_up = sum(1 for v in _slots(trials).done.values() if v is None)
    return SearchResult(
        study_name=space.name, storage=storage_url, objectives=space.objectives,
        directions=space.directions,
        n_trials_complete=sum(r["state"] in FINISHED for r in rows),
        n_trials_feasible=sum(r["feasible"] for r in rows), pareto=front, trials=rows,
        n_trials_given_up=given_up,
    )  # fmt: skip


def slot_key(row: dict) -> tuple[int, int]:
    """Order rows by slot (rows of a study without slots by number)."""
    return (row["slot"] if row["slot"] is not None else row["number"], row["number"])


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
    if kw.get("study_name") is not None:
        check_study_name(kw["study_name"], "--study-name")
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
    progress=None,
) -> SearchResult:
    """Run (or resume) a study until it has ``n_trials`` finished trials; returns the Pareto set
    of feasible trials and every trial's record. ``progress(n)``, if given, is called as trials
    finish (n more; trials a resumed study already had come first), up to ``n_trials``."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more worker processes")
    sp = space if isinstance(space, Space) else load_space(space)
    sp = apply_overrides(sp, objectives=objectives, constraints=constraints, base=base,
                study_name=study_name, n_trials=n_trials, seed=seed)  # fmt: skip
    out_dir = Path(out) if out else Path("xpusim-search") / sp.name
    check_out_dir(out_dir)
    st, url = _storage(storage, out_dir)
    study = _open(sp, st, create=True, seed=sp.seed)
    t0 = time.perf_counter()
    done = _run(study, st, sp, url, out_dir, workers, progress)
    res = study_result(study, sp, url)
    res.wall_s, res.n_trials_done_here = time.perf_counter() - t0, done
    res.space, res.study = sp, study
    return res


def check_out_dir(out: Path) -> None:
    """``--out`` must be a folder this process can create and write (checked before any
    trial runs)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder (it gets trials.csv, designs/)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".xpusim-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({exc.strerror}); give a writable "
                          "folder") from None  # fmt: skip


def _run(study, st, sp: Space, url: str, out_dir: Path, workers: int, progress) -> int:
    """Trials this process (or its ``workers`` spawned processes) finished."""
    tick = _Ticker(study, sp.n_trials, progress)
    tick()
    if workers == 1:
        return _loop(study, st, sp, sp.n_trials, url, on_done=tick)
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        args = (sp, url, str(out_dir), sp.n_trials, (HEARTBEAT_S, GRACE_S))
        jobs = [pool.apply_async(_worker, args) for _ in range(workers)]
        while not all(j.ready() for j in jobs):
            tick()
            time.sleep(0.5)
        tick()
        return sum(j.get() for j in jobs)


class _Ticker:
    """Calls ``progress(n)`` with the finished trials (COMPLETE or PRUNED) of the study since
    the last call, up to ``total`` (a no-op without ``progress``)."""

    def __init__(self, study, total: int, progress):
        self.study, self.total, self.progress = study, total, progress
        self.shown = 0

    def __call__(self) -> None:
        if self.progress is None:
            return
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED)
        n = min(self.total, len(self.study.get_trials(deepcopy=False, states=states)))
        if n > self.shown:
            self.progress(n - self.shown)
            self.shown = n
