"""Shared fixtures: a tiny chip and the tiny model, small enough to cost by hand."""

from pathlib import Path

import pytest

from arch.chip import System
from arch.presets import load_chip_file
from workloads.presets import load_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_chip():
    return load_chip_file(DATA / "tiny_chip.toml")


@pytest.fixture(scope="session")
def tiny_system(tiny_chip):
    return System(chip=tiny_chip, count=1)


@pytest.fixture(scope="session")
def tiny_model():
    return load_model("tiny")
