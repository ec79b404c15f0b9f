"""The preset contract: every chip loads, every number has a source, physical invariants hold."""

from pathlib import Path

import pytest

from arch.base import ConfigError
from arch.chip import Chip
from arch.presets import chip_names, load_chip, load_chip_file, parse_system

CONTRACT_CHIPS = {
    "a100-80gb",
    "h100-sxm",
    "h800",
    "gh200",
    "h200",
    "b200",
    "gb200-nvl72",
    "l40s",
    "mi300x",
    "mi325x",
    "mi355x",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "groq-lpu",
    "cerebras-wse3",
    "sambanova-sn40l",
    "gaudi2",
    "gaudi3",
    "custom-asic",
}


def test_contract_preset_names_exist():
    assert set(chip_names()) >= CONTRACT_CHIPS


def _numeric_paths(data, prefix=""):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _numeric_paths(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            yield from _numeric_paths(v, f"{prefix}.{i}")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix


@pytest.mark.parametrize("name", sorted(CONTRACT_CHIPS))
def test_every_number_sourced(name):
    chip = load_chip(name)
    paths = set(
        _numeric_paths(chip.model_dump(exclude={"sources", "year"}, exclude_defaults=True))
    )
    missing = sorted(p for p in paths if p not in chip.sources)
    assert missing == []
    assert all(s.ref for s in chip.sources.values()), "every source needs a reference"


@pytest.mark.parametrize("name", sorted(CONTRACT_CHIPS))
def test_physical_invariants(name):
    c: Chip = load_chip(name)
    assert c.idle_w < c.tdp_w
    bw = [m.bandwidth_bytes_per_s for m in c.memory]
    assert bw == sorted(bw, reverse=True), "memory levels fastest first"
    sixteen = c.matrix.peak("bf16") or c.matrix.peak("fp16")
    assert sixteen > 0
    for low in ("fp8", "int8", "fp4"):  # narrower formats never have a lower peak
        if c.matrix.peak(low):
            assert c.matrix.peak(low) >= sixteen
    assert c.scale_up.domain_chips >= 1


def test_strict_loader_rejects_unsourced_number(tmp_path: Path):
    text = (Path(__file__).parents[1] / "data" / "tiny_chip.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('tdp_w = ["100 W", "assumption", "t"]', 'tdp_w = "100 W"'))
    with pytest.raises(ConfigError, match="tdp_w: number without a source"):
        load_chip_file(bad)


def test_unknown_key_is_one_line_error(tmp_path: Path):
    text = (Path(__file__).parents[1] / "data" / "tiny_chip.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("vendor =", 'colour = "red"\nvendor ='))
    with pytest.raises(ConfigError, match=r"colour: unknown key") as info:
        load_chip_file(bad)
    assert "\n" not in str(info.value)


def test_unknown_chip_names_closest():
    with pytest.raises(ConfigError, match="closest: h100-sxm"):
        load_chip("h100-sxn")


def test_system_domain_and_fabric():
    s = parse_system("h100-sxm:16")
    assert s.domain_chips == 8
    assert s.fabric_for(8).name.startswith("NVLink")
    assert s.fabric_for(16).name.startswith("InfiniBand")


def test_system_is_n_chips_of_the_preset():
    """'mi300x:8' is 8 MI300X, each with 192 GB of HBM3 at 5.3 TB/s (AMD Instinct MI300X
    datasheet, shared/hardware/specs.csv); the count must be a positive integer."""
    s = parse_system("mi300x:8")
    assert s.count == 8 and s.name == "mi300x:8"
    assert s.chip.main_memory.capacity_bytes == pytest.approx(192e9)
    assert s.chip.main_memory.bandwidth_bytes_per_s == pytest.approx(5.3e12)
    assert parse_system("mi300x").count == 1
    for bad in ("mi300x:0", "mi300x:-2", "mi300x:eight"):
        with pytest.raises(ConfigError, match="chip count"):
            parse_system(bad)


def test_h100_dense_is_half_of_sparse_headline():
    """NVIDIA's headline 1,979 TFLOPS BF16 is 2:4 sparse; the dense figure is 989.4
    (shared/hardware/README.md, 'Dense vs sparse')."""
    assert load_chip("h100-sxm").matrix.peak("bf16") == pytest.approx(989.4e12)
