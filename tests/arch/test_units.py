import pytest

from arch.units import UnitError, parse_quantity


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("3.35 TB/s", "bandwidth_bytes_per_s", 3.35e12),
        ("50 MiB", "capacity_bytes", 50 * 2**20),
        ("400 Gb/s", "bandwidth_bytes_per_s", 50e9),  # bits -> bytes
        ("989.4 TFLOP/s", "peak_flops_per_s", 989.4e12),
        ("600 ns", "latency_s", 600e-9),
        ("31 pJ/B", "energy_j_per_byte", 31e-12),
        ("700 W", "tdp_w", 700.0),
        (42, "capacity_bytes", 42.0),
    ],
)
def test_parse(text, field, expected):
    assert parse_quantity(text, field) == pytest.approx(expected)


def test_unit_must_match_field():
    with pytest.raises(UnitError, match="field expects bytes_per_s"):
        parse_quantity("80 GB", "bandwidth_bytes_per_s")


def test_garbage_is_rejected():
    with pytest.raises(UnitError):
        parse_quantity("fast", "bandwidth_bytes_per_s")
