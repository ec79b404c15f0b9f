"""Kill-safe search storage: SIGKILL a search at seeded random points (5 times) on a journal
file, SQLite and a real PostgreSQL server, as one process, as ``--workers 2`` (the whole process
group killed) and as two separate processes on one study (one of them killed at a time, the
other must never crash). Afterwards the study holds exactly ``n`` finished trials, one per slot
0..n-1, with the same parameters as an uninterrupted run of the same seed: no duplicate, nothing
lost, no surviving process failed.

Searches here are forked from one warm process (no import per start), declare a silent trial
dead after 2 s (heartbeat 1 s) instead of 10 s, and sleep ``DELAY_S`` in each trial so that
kills land mid-trial. The spawned workers of ``--workers 2`` take the parent's heartbeat and
grace (they run the real, millisecond trials).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explore.search.study import search

ROOT = Path(__file__).parents[3]
KILLS = 5
DELAY_S = 0.02

SPACE = """
[study]
name = "kill"
objectives = ["tokens_per_s_per_user", "chip_cost_usd"]
sampler = "random"
n_trials = {n}
seed = 11
[base]
model = "llama-3.1-8b"
quant = "fp8"
input_len = 128
output_len = 32
chips = 1
batch = 4
[base.chip]
node = "N4"
hbm_stacks = 4
[chip]
peak_bf16_flops_per_s = {{ low = 1e14, high = 2e15, log = true }}
sram_bytes = {{ low = 0.0, high = 5e8 }}
"""

# A warm parent: imports the search once, then forks one search per line of stdin (each in its
# own session, so that killing it kills its spawned workers too), answering with the child's pid.
# A child writes "0 DONE_HERE" or "1 TRACEBACK" to its result file when it ends by itself.
ZYGOTE = """
import json, os, signal, sys, time, traceback
from pathlib import Path
import explore.search.study as m
m.HEARTBEAT_S, m.GRACE_S = 1, 2
real = m.evaluate_point
m.evaluate_point = lambda *a: (time.sleep({delay}), real(*a))[1]
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        code, text = 1, ""
        try:
            Path(job["ready"]).touch()
            res = m.search(job["space"], storage=job["storage"], out=job["out"],
                           workers=job["workers"])
            code, text = 0, str(res.n_trials_done_here)
        except BaseException:
            text = traceback.format_exc()
        Path(job["result"]).write_text(f"{{code}} {{text}}")
        os._exit(code)
    print(pid, flush=True)
"""


@pytest.fixture(scope="module")
def zygote():
    proc = subprocess.Popen([sys.executable, "-c", ZYGOTE.format(delay=DELAY_S)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


class Study:
    """Reads the study's trials from the test process (one storage object, reused)."""

    def __init__(self, storage: str):
        self.url, self.storage, self.last = storage, None, []

    def trials(self) -> list:
        import optuna
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            if self.storage is None:
                if self.url.endswith(".journal"):
                    if not Path(self.url).exists():
                        return []
                    self.storage = JournalStorage(JournalFileBackend(self.url))
                else:
                    self.storage = optuna.storages.RDBStorage(self.url)
            study = optuna.load_study(study_name="kill", storage=self.storage)
            self.last = study.get_trials(deepcopy=False)
        except Exception:  # not created yet, or SQLite busy: the last answer stands
            pass
        return self.last

    def finished(self) -> int:
        return sum(t.state.name in ("COMPLETE", "PRUNED") for t in self.trials())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Runner:
    """Starts searches (forked by the zygote) and kills them."""

    def __init__(self, tmp: Path, zygote, space: Path, storage: str, workers: int):
        self.tmp, self.zygote, self.job = tmp, zygote, {
            "space": str(space), "storage": storage, "out": str(tmp / "out"), "workers": workers
        }  # fmt: skip
        self.started = 0

    def start(self) -> tuple[int, Path, Path]:
        self.started += 1
        ready, result = self.tmp / f"ready{self.started}", self.tmp / f"result{self.started}"
        job = {**self.job, "ready": str(ready), "result": str(result)}
        self.zygote.stdin.write(json.dumps(job) + "\n")
        self.zygote.stdin.flush()
        return int(self.zygote.stdout.readline()), ready, result

    @staticmethod
    def kill(pid: int) -> None:
        os.killpg(pid, signal.SIGKILL)  # the search and its spawned workers
        _wait(lambda: not _alive(pid), "the killed search to go")


def _wait(cond, what: str, procs=(), timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while not cond():
        for _, _, result in procs:
            assert not result.exists(), f"a search ended before its kill: {result.read_text()}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _kill_cycles(rng, runner, study, procs: list, n: int) -> list:
    """KILLS times: pick a victim, wait until it is running and the study gained 2-7 more
    finished trials (plus 0-30 ms), SIGKILL it and start it again. Returns the processes left
    running, which must then finish the study."""
    for _ in range(KILLS):
        i = rng.randrange(len(procs))
        pid, ready, _ = procs[i]
        _wait(ready.exists, "the process to start", procs=procs)
        target = study.finished() + rng.randint(2, 7)
        _wait(lambda t=target: study.finished() >= t, "trials", procs=procs)
        time.sleep(rng.uniform(0, 0.03))
        runner.kill(pid)
        assert study.finished() < n, "the study finished before the kill: raise n"
        procs[i] = runner.start()
    return procs


def _finish(procs: list) -> None:
    """Every search still running ends by itself without an error: none crashed."""
    for pid, _, result in procs:
        _wait(lambda r=result, p=pid: r.exists() or not _alive(p), "the search to end",
              timeout=150)  # fmt: skip
        time.sleep(0.05)  # the result is written just before the exit
        assert result.exists(), f"search {pid} died without a word"
        code, text = result.read_text().split(" ", 1)
        assert code == "0", text[-3000:]


def _check(study: Study, n: int, reference: dict) -> dict:
    trials = study.trials()
    done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    slots = sorted(t.user_attrs["slot"] for t in done)
    failed = [t for t in trials if t.state.name == "FAIL"]
    row = {
        "finished": len(done),
        "duplicates": len(slots) - len(set(slots)),
        "lost": len(set(range(n)) - set(slots)),
        "killed_trials": sum(not t.user_attrs.get("surplus") for t in failed),
        "surplus": sum(bool(t.user_attrs.get("surplus")) for t in failed),
    }
    assert row["finished"] == n and row["duplicates"] == 0 and row["lost"] == 0, row
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    # the same points as an uninterrupted run of the same seed, each slot exactly once
    assert {t.user_attrs["slot"]: t.params for t in done} == reference
    # a surplus claim samples nothing; only trials caught by a kill died (<= 2 per kill)
    assert all(not t.params for t in failed if t.user_attrs.get("surplus"))
    assert row["killed_trials"] <= 2 * KILLS
    return row


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """{slot: params} of one uninterrupted single-process run (the seeded plan; a random
    sampler's slot k does not depend on n, so the longest study serves every n)."""
    tmp = tmp_path_factory.mktemp("ref")
    space = tmp / "space.toml"
    n = max(n for _, _, n in MODES.values())
    space.write_text(SPACE.format(n=n))
    res = search(space, out=tmp / "out")
    ref = {t["slot"]: t["params"] for t in res.trials if t["state"] in ("COMPLETE", "PRUNED")}
    assert sorted(ref) == list(range(n))
    return ref


def _storage(kind: str, tmp: Path, request) -> str:
    if kind == "journal":
        return str(tmp / "kill.journal")
    if kind == "sqlite":
        return f"sqlite:///{tmp}/kill.db"
    return request.getfixturevalue("postgres")


# mode: one process; --workers 2 (a parent and two spawned workers, killed as a group); two
# separate one-worker processes on the study (a random one of them killed each time)
MODES = {"one": (1, 1, 40), "workers2": (2, 1, 80), "two_processes": (1, 2, 60)}


@pytest.mark.parametrize("kind", ["journal", "sqlite", "postgresql"])
@pytest.mark.parametrize("mode", list(MODES))
def test_sigkill_five_times_loses_and_repeats_nothing(
    tmp_path, kind, mode, request, reference, zygote
):
    workers, n_procs, n = MODES[mode]
    space = tmp_path / "space.toml"
    space.write_text(SPACE.format(n=n))
    storage = _storage(kind, tmp_path, request)
    runner, study = Runner(tmp_path, zygote, space, storage, workers), Study(storage)
    rng = random.Random(f"{kind}-{mode}")
    procs = [runner.start() for _ in range(n_procs)]
    _finish(_kill_cycles(rng, runner, study, procs, n))
    row = _check(study, n, {k: v for k, v in reference.items() if k < n})
    print(f"{kind} {mode}: {KILLS} kills -> {row}")
