"""Co-design search: a landscape with a known answer, infeasibility before costing, resumption
after SIGKILL, concurrent workers on a journal file and on a real PostgreSQL server, the CLI
contract, and sweep == search on the same point."""

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from explore.cli import main
from explore.search.objectives import Infeasible, evaluate_point
from explore.search.space import load_space
from explore.search.study import pareto_front, search

DATA = Path(__file__).parents[1] / "data"
BW_SPACE = DATA / "space_bandwidth.toml"
ROOT = Path(__file__).parents[2]


def _brute_force_best(space):
    """Every point of the (small, discrete) space, costed directly: the known answer."""
    best = None
    for p, s, g in itertools.product([100e12, 200e12, 400e12, 800e12], range(1, 9),
                                     ["hbm3", "hbm3e"]):  # fmt: skip
        params = {"chip.peak_bf16_flops_per_s": p, "chip.hbm_stacks": s, "chip.hbm_gen": g}
        m = evaluate_point(space.base, params).metrics
        if m["tdp_w"] <= 300 and (best is None or m["tokens_per_s_per_user"] > best[0]):
            best = (m["tokens_per_s_per_user"], params)
    return best


def test_search_finds_the_bandwidth_corner(tmp_path):
    """Batch-1 decode is bandwidth bound: the best design under 300 W spends the least power on
    compute (100 TF) and the rest on the most HBM bandwidth (7 HBM3e stacks = 7 TB/s, where 8
    HBM3 stacks give only 5.4 TB/s). TPE finds the brute-force optimum within 60 trials."""
    space = load_space(BW_SPACE)
    want, params = _brute_force_best(space)
    assert params == {"chip.peak_bf16_flops_per_s": 100e12, "chip.hbm_stacks": 7,
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
        if t["state"] == "PRUNED":
            pruned += 1
            assert "memory" in t["reason"] and t["values"] is None
            assert cap < 141e9 / 0.9  # weights over the capacity left after the 10 % reserve
        else:
            assert cap >= 141e9
    assert pruned >= 1


def test_pareto_front_by_hand():
    """Maximize x, minimize y. (3,3) is dominated by (3,1); (1,0) and (3,1) and (4,5) are not."""
    v = np.array([[1.0, 0.0], [3.0, 3.0], [3.0, 1.0], [4.0, 5.0], [0.5, 2.0]])
    assert sorted(pareto_front(v, ("maximize", "minimize")).tolist()) == [0, 2, 3]


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


def _count(journal: Path) -> int:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if not journal.exists():
        return 0
    st = JournalStorage(JournalFileBackend(str(journal)))
    try:
        study = optuna.load_study(study_name="resume", storage=st)
    except KeyError:
        return 0
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False))


def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path):
    n = 200
    space = _space(tmp_path, n)
    out = tmp_path / "out"
    code = f"from explore.cli import main; main(['search', {str(space)!r}, '--out', {str(out)!r}])"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    journal = out / "study.journal"
    deadline = time.time() + 120
    while _count(journal) < 40 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed; raise n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _count(journal)
    assert 40 <= killed_at < n
    res = search(space, out=out)
    assert res.n_trials_complete == n
    assert res.n_trials_done_here == n - killed_at
    _assert_no_duplicates(res.trials, n)
    # a trial caught RUNNING by the kill is failed and its parameters retried
    failed = [t for t in res.trials if t["state"] == "FAIL" and t["params"]]
    retried = {tuple(sorted(t["params"].items())) for t in _finished(res.trials)}
    assert all(tuple(sorted(t["params"].items())) in retried for t in failed)


def test_two_workers_on_one_journal(tmp_path):
    space = _space(tmp_path, 40)
    res = search(space, out=tmp_path / "out", workers=2)
    assert res.n_trials_complete == 40
    assert res.n_trials_done_here == 40
    _assert_no_duplicates(res.trials, 40)


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if not found:
        pytest.fail(f"{name} not found: install PostgreSQL (.ci/run does) to run this test")
    return found


@pytest.fixture
def postgres(tmp_path):
    """A real PostgreSQL server on a free loopback port, for the life of one test."""
    pytest.importorskip("psycopg", reason="psycopg is in the [test] extra")
    # outside pytest's 0700 tmp tree: the server runs as the postgres user when we are root
    data = Path(tempfile.mkdtemp(prefix="xpusim-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-w", "start",
                    "-l", str(data / "log")], check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


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

    from explore.search.study import _apply
    from workloads.presets import load_model

    sp = _apply(replace(load_space(BW_SPACE), quality={"mode": "iso_loss"}))
    n = float(load_model("llama-3.1-8b").total_params())
    want = 1.69 + 406.4 / n**0.34 + 410.7 / (20 * n) ** 0.28
    (loss,) = [c for c in sp.constraints if c.metric == "loss"]
    assert loss.limit == pytest.approx(want)


def test_sweep_point_equals_the_search_evaluation():
    """The vectorized sweep and the one-point analytic evaluation agree on every metric."""
    from explore.search.sweep import sweep

    space = load_space(BW_SPACE)
    res = sweep(space.__class__(**{**space.__dict__, "dims": tuple(
        d if d.name != "hbm_stacks" else d.__class__("chip", "hbm_stacks", choices=(2, 6))
        for d in space.dims)}))  # fmt: skip
    cols = res.columns
    for i in range(res.n_points):
        params = {k: cols[k][i] for k in cols if k.startswith("chip.")}
        m = evaluate_point(space.base, params).metrics
        for key in ("tpot_s", "ttft_s", "tdp_w", "area_mm2", "usd_per_m_output_tokens",
                    "tokens_per_s_per_w"):  # fmt: skip
            assert cols[key][i] == pytest.approx(m[key], rel=1e-6), (key, params)
