"""Files stay inside their folder whatever the study is called, and a seeded study is the same
set of trials however many workers run it."""

import json
import tomllib
from pathlib import Path

import pytest

from arch.base import ConfigError
from explore.cli import main
from explore.search.output import inside, write_outputs
from explore.search.space import check_study_name, load_space, safe_name
from explore.search.study import search

DATA = Path(__file__).parents[2] / "data"
BW_SPACE = DATA / "space_bandwidth.toml"

HOSTILE = ["../../escaped/evil", "/tmp/xpusim-abs-evil", "a\nb", "a\x00b", "tab\there", "..",
           "", "a/b", "a\\b", ".hidden", "x" * 101, "ok..no", 'quote"d', "sp ace",
           "\u00e9"]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_study_name_is_one_line_exit_2(tmp_path, capsys, monkeypatch, name):
    """--study-name is checked before it names a folder: exit 2, one line naming the flag and
    the fix; nothing is written anywhere (the default --out would be xpusim-search/NAME)."""
    monkeypatch.chdir(tmp_path)
    assert main(["search", str(BW_SPACE), "--study-name", name, "--n-trials", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--study-name" in err and "letters, digits" in err
    assert list(tmp_path.iterdir()) == []
    assert not Path("/tmp/xpusim-abs-evil").exists()


@pytest.mark.parametrize("name", ["../../escaped/evil", "a\nb", "/abs", "nul\x00"])
def test_a_hostile_name_in_the_space_file_names_the_field(tmp_path, capsys, name):
    toml_string = json.dumps(name)  # a JSON string is a valid TOML basic string here
    text = BW_SPACE.read_text().replace('"bandwidth-corner"', toml_string)
    space = tmp_path / "s.toml"
    space.write_text(text)
    assert main(["search", str(space), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study.name" in err and "letters, digits" in err
    assert not (tmp_path / "out").exists()


def test_the_api_checks_the_name_too(tmp_path):
    with pytest.raises(ConfigError, match="--study-name"):
        search(BW_SPACE, study_name="../evil", out=tmp_path, n_trials=1)
    assert check_study_name("llama-70b_v2.1+fp8", "--study-name") == "llama-70b_v2.1+fp8"


def test_a_file_name_stem_becomes_a_safe_default_name(tmp_path):
    """A space file called 'my "odd" space.toml' without [study] name: the study is named by
    its stem made safe, and the Pareto presets written under --out are valid TOML that name
    the design and the study."""
    assert safe_name('my "odd" space') == "my-odd-space"
    assert safe_name("../..") == "study" and safe_name("..x") == "x"
    text = BW_SPACE.read_text().replace('name = "bandwidth-corner"\n', "")
    space = tmp_path / 'my "odd" space.toml'
    space.write_text(text)
    sp = load_space(space)
    assert sp.name == "my-odd-space"
    out = tmp_path / "out"
    res = search(sp, out=out, n_trials=6)
    files = [Path(f) for f in write_outputs(res, res.space, out)]
    presets = [f for f in files if f.suffix == ".toml"]
    assert presets and all(f.resolve().is_relative_to(out.resolve()) for f in files)
    for f in presets:
        data = tomllib.loads(f.read_text())
        assert data["name"].startswith("my-odd-space-s")
        assert "my-odd-space" in data["refs"]["design"]


def test_inside_refuses_a_path_that_leaves_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    assert inside(out, out / "designs" / "a.toml") == out / "designs" / "a.toml"
    for bad in (out / ".." / "x.csv", out / "link" / "x.csv", Path("/etc/x.toml")):
        with pytest.raises(ConfigError, match="outside --out"):
            inside(out, bad)


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["search", str(BW_SPACE), "--out", str(f), "--n-trials", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "is a file" in err


def _by_slot(res) -> dict:
    return {t["slot"]: (t["params"], t["values"]) for t in res.trials
            if t["state"] in ("COMPLETE", "PRUNED")}  # fmt: skip


def test_seeded_tpe_is_the_same_set_of_trials_with_one_or_two_workers(tmp_path):
    """TPE asks its slots in batches of 8 from the history of the batches before (slot order),
    so one process and two spawned workers run the same 24 points with the same results, and
    write the same trials.csv byte for byte; another seed gives other points."""
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        res = search(BW_SPACE, out=out, n_trials=24, workers=workers)
        write_outputs(res, res.space, out)
        runs[workers] = (_by_slot(res), (out / "trials.csv").read_bytes())
    assert sorted(runs[1][0]) == list(range(24))
    assert runs[1][0] == runs[2][0]
    assert runs[1][1] == runs[2][1]
    other = search(BW_SPACE, out=tmp_path / "seed2", n_trials=24, seed=2)
    assert _by_slot(other) != runs[1][0]


def test_seeded_grid_and_random_are_the_same_set_after_a_resume(tmp_path):
    """Random and grid slots do not depend on other results: 5 trials then a top-up to 12
    equals 12 at once (and the grid visits distinct points until it has seen them all)."""
    for sampler in ("random", "grid"):
        text = BW_SPACE.read_text().replace('sampler = "tpe"', f'sampler = "{sampler}"')
        space = tmp_path / f"{sampler}.toml"
        space.write_text(text.replace("hbm_stacks = { low = 1, high = 8 }",
                                      "hbm_stacks = { low = 1, high = 8, step = 1 }"))  # fmt: skip
        once = search(space, out=tmp_path / f"{sampler}-once", n_trials=12)
        search(space, out=tmp_path / f"{sampler}-twice", n_trials=5)
        twice = search(space, out=tmp_path / f"{sampler}-twice", n_trials=12)
        assert twice.n_trials_done_here == 7
        assert _by_slot(once) == _by_slot(twice)
        if sampler == "grid":
            points = [tuple(sorted(p.items())) for p, _ in _by_slot(once).values()]
            assert len(set(points)) == 12
