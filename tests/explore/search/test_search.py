"""Co-design search: a landscape with a known answer, infeasibility before costing, resumption
after SIGKILL, concurrent workers on a journal file and on a real PostgreSQL server, the CLI
contract, and sweep == search on the same point."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from explore.cli import main
from explore.search.objectives import Infeasible, evaluate_point
from explore.search.space import load_space
from explore.search.study import search

DATA = Path(__file__).parents[2] / "data"
BW_SPACE = DATA / "space_bandwidth.toml"
ROOT = Path(__file__).parents[3]


def _brute_force_best(space):
    """Every point of the (small, discrete) space, costed directly: the known answer (points
    that cannot be built, e.g. more HBM stacks than the die's edge carries, are skipped)."""
    best = None
    for p, s, g in itertools.product([100e12, 200e12, 400e12, 800e12], range(1, 9),
                                     ["hbm3", "hbm3e"]):  # fmt: skip
        params = {"chip.peak_bf16_flops_per_s": p, "chip.hbm_stacks": s, "chip.hbm_gen": g}
        try:
            m = evaluate_point(space.base, params).metrics
        except Infeasible:
            continue
        if m["tdp_w"] <= 300 and (best is None or m["tokens_per_s_per_user"] > best[0]):
            best = (m["tokens_per_s_per_user"], params)
    return best


def test_search_finds_the_bandwidth_corner(tmp_path):
    """Batch-1 decode is bandwidth bound: the best design under 300 W has the most HBM
    bandwidth its die can carry. Stacks sit at the die edge (11 mm each), so a small die holds
    few: 3 HBM3e stacks + 200 GB/s of SerDes need 39 mm of edge, which the 149 mm2 die of 400 TF
    offers (41.5 mm usable) and the 83-105 mm2 dies of 100-200 TF do not; 4 stacks (50 mm) fit
    only on 800 TF, whose compute breaks 300 W. TPE finds the brute-force optimum within 60
    trials."""
    space = load_space(BW_SPACE)
    want, params = _brute_force_best(space)
    assert params == {"chip.peak_bf16_flops_per_s": 400e12, "chip.hbm_stacks": 3,
                      "chip.hbm_gen": "hbm3e"}  # fmt: skip
    res = search(space, out=tmp_path)
    assert res.n_trials_complete == 60
    best = res.pareto[0]
    assert best["params"] == params
    assert best["values"][0] == pytest.approx(want)


def test_violated_constraint_keeps_real_values(tmp_path):
    res = search(BW_SPACE, out=tmp_path, n_trials=25)
    bad = [t for t in res.trials if t["state"] == "COMPLETE" and not t["feasible"]]
    assert bad, "some sampled designs exceed 300 W"
    for t in bad:
        assert t["metrics"]["tdp_w"] > 300
        assert t["values"][0] == pytest.approx(t["metrics"]["tokens_per_s_per_user"])
    assert all(t["feasible"] for t in res.pareto)


def test_memory_misfit_is_rejected_before_costing(tmp_path):
    """A 70B model in BF16 (141 GB) on one chip with one 16 GB stack cannot fit: the trial is
    PRUNED with the capacity reason and has no objective values."""
    space = load_space(BW_SPACE)
    base = {**space.base, "model": "llama-3.1-70b", "quant": "bf16"}
    with pytest.raises(Infeasible, match="memory"):
        evaluate_point(base, {"chip.hbm_stacks": 1, "chip.hbm_gen": "hbm3",
                              "chip.peak_bf16_flops_per_s": 1e14})  # fmt: skip
    res = search(space, base={"model": "llama-3.1-70b", "quant": "bf16"}, out=tmp_path,
                 n_trials=12, study_name="misfit")  # fmt: skip
    per_stack = {"hbm3": 16e9, "hbm3e": 24e9}
    pruned = 0
    for t in _finished(res.trials):
        cap = t["params"]["chip.hbm_stacks"] * per_stack[t["params"]["chip.hbm_gen"]]
        if t["state"] == "PRUNED" and "shoreline" in t["reason"]:
            continue  # cannot be built at all (more stacks than the die's edge carries)
        if t["state"] == "PRUNED":
            pruned += 1
            assert "memory" in t["reason"] and t["values"] is None
            assert cap < 141e9 / 0.9  # weights over the capacity left after the 10 % reserve
        else:
            assert cap >= 141e9
    assert pruned >= 1


def test_pareto_set_of_a_tiny_study_by_hand():
    """Maximize x, minimize y over a real Optuna study. (3,3) is dominated by (3,1); (1,0),
    (3,1) and (4,5) are not; (5,-1) would dominate them all but violates its constraint (kept
    with its real values, left off the set); the PRUNED trial has no values. Rows come best x
    first."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from explore.search.study import study_result

    study = optuna.create_study(directions=["maximize", "minimize"])
    points = [(1.0, 0.0), (3.0, 3.0), (3.0, 1.0), (4.0, 5.0), (0.5, 2.0), (5.0, -1.0)]
    for i, v in enumerate(points):
        c = 1.0 if i == 5 else 0.0
        study.add_trial(create_trial(values=list(v), constraints={"tdp_w <= 300": c},
                                     user_attrs={"constraints": [c]}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"infeasible": "memory"}))
    space = replace(load_space(BW_SPACE), objectives=("x", "y"),
                    directions=("maximize", "minimize"))  # fmt: skip
    res = study_result(study, space, "memory")
    assert [p["number"] for p in res.pareto] == [3, 2, 0]
    assert res.n_trials_complete == 7 and res.n_trials_feasible == 5
    assert res.trials[5]["values"] == [5.0, -1.0] and not res.trials[5]["feasible"]
    assert res.trials[6]["reason"] == "memory"


def _finished(study_rows):
    return [t for t in study_rows if t["state"] in ("COMPLETE", "PRUNED")]


def _assert_no_duplicates(rows, n):
    done = _finished(rows)
    assert len(done) == n
    assert len({t["number"] for t in done}) == n
    keys = [tuple(sorted(t["params"].items())) for t in done if t["state"] == "COMPLETE"]
    # a discrete space may legitimately resample a point; the test spaces here are continuous
    assert len(set(keys)) == len(keys)


CONT_SPACE = """
[study]
name = "resume"
objectives = ["tokens_per_s_per_user", "chip_cost_usd"]
sampler = "{sampler}"
n_trials = {n}
seed = 3
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


def _space(tmp_path, n, sampler="random"):
    p = tmp_path / "space.toml"
    p.write_text(CONT_SPACE.format(n=n, sampler=sampler))
    return p


def _study_trials(storage: str) -> list:
    """The trials of study "resume" in a journal path or an RDB URL ([] until it exists)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if storage.endswith(".journal"):
        if not Path(storage).exists():
            return []
        storage = JournalStorage(JournalFileBackend(storage))
    try:
        return optuna.load_study(study_name="resume", storage=storage).get_trials()
    except Exception:  # not created yet (KeyError), or the SQLite file is busy: ask again
        return []


def _count(storage: str) -> int:
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in _study_trials(storage))


@pytest.fixture
def quick_grace(monkeypatch):
    """Declare a silent trial dead after 2 s instead of 10, so a resume does not wait long for
    the trial the kill left RUNNING (this process only; a live trial beats every second)."""
    import explore.search.study as study_mod

    monkeypatch.setattr(study_mod, "HEARTBEAT_S", 1)
    monkeypatch.setattr(study_mod, "GRACE_S", 2)


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path, kind, quick_grace):
    """Killed mid-study, on a journal file or SQLite, the rerun fails the trial the kill left
    RUNNING once it has been silent for the grace period, runs its slot again and ends with
    exactly n finished trials (test_kill.py kills 5 times on every storage)."""
    n = 200
    space = _space(tmp_path, n)
    out = tmp_path / "out"
    storage = str(out / "study.journal") if kind == "journal" else f"sqlite:///{tmp_path}/s.db"
    code = (f"from explore.cli import main; main(['search', {str(space)!r}, '--out', "
            f"{str(out)!r}, '--storage', {storage!r}])")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 120
    while _count(storage) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed; raise n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count(storage)
    assert 40 <= killed_at < n
    res = search(space, out=out, storage=storage)
    assert res.n_trials_complete == n
    assert res.n_trials_done_here == n - killed_at
    assert not [t for t in res.trials if t["state"] == "RUNNING"]
    _assert_no_duplicates(res.trials, n)
    # a trial caught RUNNING by the kill is failed and the parameters it had drawn (all, or the
    # first ones if the kill came mid-sampling) are retried
    for f in [t for t in res.trials if t["state"] == "FAIL" and t["params"]]:
        drawn = f["params"].items()
        assert any(drawn <= t["params"].items() for t in _finished(res.trials)), f
    again = search(space, out=out, storage=storage)  # the same budget again: nothing to do
    assert again.n_trials_complete == n and again.n_trials_done_here == 0


def _search_in_process(space: Path, storage: str, out: Path, ready: Path, go: Path) -> list[str]:
    """A python command that imports everything, says it is ready, waits for the go, searches
    and prints how many trials it finished."""
    code = f"""
import time
from pathlib import Path
from explore.search.study import search
Path({str(ready)!r}).touch()
while not Path({str(go)!r}).exists():
    time.sleep(0.01)
res = search({str(space)!r}, storage={storage!r}, out={str(out)!r})
print(res.n_trials_done_here)
"""
    return [sys.executable, "-c", code]


def test_two_processes_on_one_journal_share_the_budget(tmp_path):
    """Two independent searches started together on one journal: both finish without error (a
    live worker's trial is never failed by the other), the study ends with exactly n finished
    trials, the two counts add up to n, and the only failed trials are surplus claims that
    sampled nothing (no parameters retried, so none duplicated)."""
    n = 300
    space = _space(tmp_path, n)
    storage = str(tmp_path / "shared.journal")
    go = tmp_path / "go"
    procs = []
    for i in range(2):
        cmd = _search_in_process(space, storage, tmp_path / f"out{i}", tmp_path / f"ready{i}", go)
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True))
    deadline = time.time() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    done = [int(o.split()[-1]) for o in outs]
    assert sum(done) == n and min(done) > 0, done  # both worked, together
    trials = _study_trials(storage)
    rows = [{"number": t.number, "state": t.state.name, "params": t.params} for t in trials]
    _assert_no_duplicates(rows, n)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert all(t.user_attrs.get("surplus") and not t.params for t in failed)
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]


def test_a_slow_live_trial_is_not_failed_by_another_worker(tmp_path, quick_grace):
    """Liveness comes from heartbeats, not from who starts next: a worker whose trial takes 3 s
    (more than the 2 s grace) keeps it alive by beating every second; a second worker spends
    the rest of the budget meanwhile and then waits for that trial instead of failing it."""
    space = _space(tmp_path, 3)
    storage = str(tmp_path / "slow.journal")
    code = f"""
import time
import explore.search.study as m
m.HEARTBEAT_S = 1
real = m.evaluate_point
m.evaluate_point = lambda *a: (time.sleep(3), real(*a))[1]
m.search({str(space)!r}, storage={storage!r}, out={str(tmp_path / "slow")!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 60
    while not any(t.state.name == "RUNNING" for t in _study_trials(storage)):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    res = search(space, storage=storage, out=tmp_path / "fast")
    assert proc.wait(timeout=60) == 0
    assert res.n_trials_complete == 3 and res.n_trials_done_here == 2
    assert not [t for t in res.trials if t["state"] == "FAIL" and t["params"]]
    assert _count(storage) == 3


def test_two_workers_on_one_journal(tmp_path):
    space = _space(tmp_path, 40)
    res = search(space, out=tmp_path / "out", workers=2)
    assert res.n_trials_complete == 40
    assert res.n_trials_done_here == 40
    _assert_no_duplicates(res.trials, 40)


def test_two_workers_on_postgresql(tmp_path, postgres):
    space = _space(tmp_path, 30)
    res = search(space, storage=postgres, out=tmp_path / "out", workers=2)
    assert res.n_trials_complete == 30
    _assert_no_duplicates(res.trials, 30)
    again = search(space, storage=postgres, out=tmp_path / "out", n_trials=36)
    assert again.n_trials_complete == 36 and again.n_trials_done_here == 6


def test_cli_json_contract(tmp_path, capsys):
    rc = main(["search", str(BW_SPACE), "--n-trials", "12", "--json", "--out", str(tmp_path),
               "--seed", "2"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["study_name"] == "bandwidth-corner"
    assert out["n_trials_complete"] == 12
    assert 0 <= out["n_trials_feasible"] <= 12
    assert out["objectives"] == [{"name": "tokens_per_s_per_user", "direction": "maximize"}]
    for p in out["pareto"]:
        assert set(p) >= {"params", "values"}
        assert len(p["values"]) == 1
    for f in ("trials.csv", "pareto.csv", "study.journal"):
        assert (tmp_path / f).exists()
    assert list((tmp_path / "designs").glob("*.toml"))


def test_written_design_is_a_ready_preset(tmp_path):
    """The best design loads with every number sourced and predicts what the search scored."""
    from arch.presets import load_chip_file
    from explore.api.predict import predict

    res = search(BW_SPACE, out=tmp_path, n_trials=20)
    from explore.search.output import write_presets

    files = write_presets(res, load_space(BW_SPACE), tmp_path)
    chip = load_chip_file(Path(files[0]))  # strict: every number must carry a source
    r = predict(f"{files[0]}:1", "llama-3.1-8b", "fp8", batch=1, input_len=128, output_len=32)
    assert r.tokens_per_s_per_user == pytest.approx(res.pareto[0]["values"][0], rel=1e-9)
    assert chip.family == "custom"


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        (
            "[study]\nobjectives = ['speed']\n[base]\nmodel='tiny'\n[chip]\nfp8={choices=[1]}",
            "objective 'speed': unknown",
        ),
        (
            "[study]\nobjectives = ['ttft_s']\n[base]\nmodel='tiny'\n[chip]\nwarp={low=0,high=1}",
            "chip.warp: not a searchable chip dimension",
        ),
        (
            "[study]\nobjectives = ['ttft_s']\nconstraints=['area_mm2 < 3']\n[base]\nmodel='tiny'"
            "\n[chip]\nsram_bytes={low=0,high=1}",
            "write 'metric <= value'",
        ),
    ],
)
def test_bad_space_is_one_line_exit_2(tmp_path, capsys, text, msg):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    assert main(["search", str(p), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_iso_params_keeps_the_model_size():
    """Under iso_params a wider model gets fewer layers, at the base size within 5 %."""
    from explore.search.objectives import build_model
    from workloads.presets import load_model

    base = load_model("llama-3.1-8b")
    m, _ = build_model(base, {"hidden_size": 5120}, {"mode": "iso_params", "tolerance": 0.05})
    assert m.num_layers < base.num_layers
    assert m.total_params() == pytest.approx(base.total_params(), rel=0.05)


def test_iso_loss_adds_the_base_loss_as_a_constraint():
    """Chinchilla at N = 8.03e9, D = 20 N: 1.69 + 406.4/N^0.34 + 410.7/D^0.28."""
    from dataclasses import replace

    from explore.search.study import apply_overrides
    from workloads.presets import load_model

    sp = apply_overrides(replace(load_space(BW_SPACE), quality={"mode": "iso_loss"}))
    n = float(load_model("llama-3.1-8b").total_params())
    want = 1.69 + 406.4 / n**0.34 + 410.7 / (20 * n) ** 0.28
    (loss,) = [c for c in sp.constraints if c.metric == "loss"]
    assert loss.limit == pytest.approx(want)


def test_sweep_point_equals_the_search_evaluation():
    """The vectorized sweep and the one-point analytic evaluation agree on every metric; a row
    the sweep writes with fits = 0 because the die's edge cannot carry 6 stacks is one the
    search rejects with that reason."""
    from explore.search.sweep import sweep

    space = load_space(BW_SPACE)
    res = sweep(space.__class__(**{**space.__dict__, "dims": tuple(
        d if d.name != "hbm_stacks" else d.__class__("chip", "hbm_stacks", choices=(2, 6))
        for d in space.dims)}))  # fmt: skip
    cols = res.columns
    assert 0 < cols["fits"].sum() < res.n_points  # 2 stacks fit every die, 6 fit none
    for i in range(res.n_points):
        params = {k: cols[k][i] for k in cols if k.startswith("chip.")}
        if cols["fits"][i] == 0:
            with pytest.raises(Infeasible, match=r"6 HBM stacks .* die edge"):
                evaluate_point(space.base, params)
            continue
        m = evaluate_point(space.base, params).metrics
        for key in ("tpot_s", "ttft_s", "tdp_w", "area_mm2", "usd_per_m_output_tokens",
                    "tokens_per_s_per_w"):  # fmt: skip
            assert cols[key][i] == pytest.approx(m[key], rel=1e-6), (key, params)


def test_a_metric_the_chip_does_not_define_makes_the_point_infeasible(tmp_path):
    """B200 has no published die area (its preset leaves it empty): a constraint on area_mm2
    cannot be judged, so every point is PRUNED with that reason instead of crashing the study."""
    space = tmp_path / "b200.toml"
    space.write_text(
        '[study]\nobjectives = ["tokens_per_s_per_user"]\nconstraints = ["area_mm2 <= 900"]\n'
        'n_trials = 3\n[base]\nmodel = "llama-3.1-8b"\nquant = "fp8"\nchip = "b200"\n'
        "input_len = 128\noutput_len = 32\n[deploy]\nbatch = { choices = [1, 2] }\n"
    )
    res = search(space, out=tmp_path / "out")
    assert res.n_trials_complete == 3 and res.n_trials_feasible == 0
    assert all("area_mm2 unknown for chip b200" in t["reason"] for t in res.trials)
