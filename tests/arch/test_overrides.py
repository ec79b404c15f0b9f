"""--set PATH=VALUE on a chip: path resolution, units, validation, one-line errors."""

import pytest

from arch.base import ConfigError
from arch.overrides import apply_edits, edit_system, format_value, parse_edit, valid_paths
from arch.presets import load_chip, parse_system


@pytest.mark.parametrize(
    ("edit", "path", "value"),
    [
        ("memory.hbm.bandwidth_bytes_per_s=6.7 TB/s", "memory.hbm.bandwidth_bytes_per_s", 6.7e12),
        ("matrix.peak_flops_per_s.fp8=2.5 PFLOP/s", "matrix.peak_flops_per_s.fp8", 2.5e15),
        ("scale_up.bandwidth_bytes_per_s=900 GB/s", "scale_up.bandwidth_bytes_per_s", 9e11),
    ],
)
def test_contract_spellings(edit, path, value):
    chip, (o,) = apply_edits(load_chip("h100-sxm"), [edit])
    assert o.path == path and o.value == pytest.approx(value)
    head = path.partition(".")[0]
    if head == "memory":
        assert chip.main_memory.bandwidth_bytes_per_s == pytest.approx(value)
    elif head == "matrix":
        assert chip.matrix.peak("fp8") == pytest.approx(value)
    else:
        assert chip.scale_up.bandwidth_bytes_per_s == pytest.approx(value)
    assert o.was != o.value


def test_level_by_name_kind_role_and_index_are_one_level():
    base = load_chip("h100-sxm")
    chips = [apply_edits(base, [f"memory.{p}.capacity_bytes=192 GB"])[0]
             for p in ("HBM3", "hbm3", "hbm", "main", "1")]  # fmt: skip
    assert {c.main_memory.capacity_bytes for c in chips} == {192e9}
    assert base.main_memory.capacity_bytes == 80e9  # the preset itself is untouched


def test_edit_is_sourced_user_and_precision_can_be_added():
    chip, (o,) = apply_edits(load_chip("h100-sxm"), ["matrix.peak_flops_per_s.fp4=4 PFLOP/s"])
    assert o.was is None and chip.supports("fp4")
    assert chip.sources["matrix.peak_flops_per_s.fp4"].kind == "user"


def test_plain_values_are_toml_literals():
    chip, _ = apply_edits(load_chip("h100-sxm"), ["scale_up.links=20", "fused_layers=true"])
    assert chip.scale_up.links == 20 and chip.fused_layers is True


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("memory.hbm.bandwith_bytes_per_s=6 TB/s", ["closest", "hbm.bandwidth_bytes_per_s"]),
        ("mtrix.units=3", ["closest", "matrix.units"]),
        ("memory.hbm.bandwidth_bytes_per_s=6.7 TFLOP/s", ["flops_per_s", "TB/s"]),
        ("memory.hbm.bandwidth_bytes_per_s=fast", ["number and a unit"]),
        ("memory.sram.capacity_bytes=1 GB", ["no memory level", "HBM3"]),
        ("memory.hbm=3", ["is a table", "memory.hbm.capacity_bytes"]),
        ("memory.hbm.capacity_bytes=-1 GB", ["greater than 0"]),
        ("tdp_w=50 W", ["idle_w must be below tdp_w"]),
        ("memory.hbm.bandwidth_bytes_per_s=20 TB/s", ["fastest first", "another --set"]),
        ("scale_up.bandwidth_bytes_per_s=0 B/s", ["cannot communicate"]),
        ("no-equals-sign", ["PATH=VALUE"]),
    ],
)
def test_errors_are_one_line_naming_the_edit(edit, words):
    with pytest.raises(ConfigError) as e:
        edit_system(parse_system("h100-sxm:8"), [edit])
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--set ")
    for w in words:
        assert w in msg


def test_missing_table_names_it():
    assert load_chip("groq-lpu").scale_out is None
    with pytest.raises(ConfigError, match="has no scale_out table"):
        apply_edits(load_chip("groq-lpu"), ["scale_out.links=2"])


def test_parse_edit_target_and_valid_paths():
    e = parse_edit("h100-sxm:tdp_w=800 W")
    assert (e.target, e.path, e.value) == ("h100-sxm", "tdp_w", "800 W")
    assert parse_edit("tdp_w=800 W").target is None
    paths = valid_paths(load_chip("h100-sxm"))
    assert "memory.hbm.bandwidth_bytes_per_s" in paths and "memory.HBM3.latency_s" in paths
    assert format_value(6.7e12, "memory.hbm.bandwidth_bytes_per_s") == "6.7 TB/s"
