"""Request traffic: arrival processes and length distributions, sampled with a seeded generator.

Lengths: ``Fixed``, ``Uniform``, ``LogNormal`` (parameterized by the mean and standard deviation of
the lengths themselves, not of their logarithm), ``Empirical`` (resampled from a file of observed
lengths). Arrivals: ``Poisson`` (rate), ``Gamma`` (rate and coefficient of variation of the gaps: 1
is Poisson, > 1 bursty), ``ClosedLoop`` (a fixed number of users, each sending its next request as
soon as the previous one finishes), ``TraceReplay`` (CSV of arrival time, input and output length).
``parse_length`` reads the CLI spellings ``N``, ``uniform:LO:HI``, ``lognormal:MEAN:STD``,
``file:PATH``. ``Clipped`` caps another distribution's samples.
"""

from __future__ import annotations

import csv
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arch.base import ConfigError

__all__ = [
    "Clipped",
    "ClosedLoop",
    "Empirical",
    "Fixed",
    "Gamma",
    "LengthDist",
    "LogNormal",
    "Poisson",
    "TraceReplay",
    "Uniform",
    "parse_length",
]


class LengthDist(ABC):
    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` integer lengths >= 1."""

    @property
    @abstractmethod
    def mean(self) -> float: ...


@dataclass(frozen=True)
class Fixed(LengthDist):
    n: int

    def sample(self, rng, n):
        return np.full(n, self.n, dtype=np.int64)

    @property
    def mean(self):
        return float(self.n)


@dataclass(frozen=True)
class Uniform(LengthDist):
    lo: int
    hi: int

    def sample(self, rng, n):
        return rng.integers(self.lo, self.hi + 1, size=n, dtype=np.int64)

    @property
    def mean(self):
        return (self.lo + self.hi) / 2


@dataclass(frozen=True)
class LogNormal(LengthDist):
    """Lengths with this mean and standard deviation (moments of the lengths themselves)."""

    mean_len: float
    std_len: float
    max_len: int = 1 << 20

    def sample(self, rng, n):
        s2 = math.log1p((self.std_len / self.mean_len) ** 2)
        mu = math.log(self.mean_len) - s2 / 2
        x = rng.lognormal(mu, math.sqrt(s2), size=n)
        return np.clip(np.rint(x), 1, self.max_len).astype(np.int64)

    @property
    def mean(self):
        return self.mean_len


@dataclass(frozen=True)
class Empirical(LengthDist):
    values: tuple[int, ...]

    @classmethod
    def from_file(cls, path: Path) -> Empirical:
        try:
            vals = tuple(int(float(t)) for t in Path(path).read_text().split())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"length file {path}: {exc}; give one integer per line") from exc
        if not vals or min(vals) < 1:
            raise ConfigError(f"length file {path}: needs positive integers")
        return cls(vals)

    def sample(self, rng, n):
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=n)

    @property
    def mean(self):
        return float(np.mean(self.values))


@dataclass(frozen=True)
class Clipped(LengthDist):
    """``dist`` with every sample clipped to ``max_len`` (a request longer than the model's
    context or a replica's KV cannot run). ``mean`` is the mean of the clipped samples,
    estimated once from a fixed-seed draw of 100,000 (exact for a clip that cuts nothing of a
    fixed length)."""

    dist: LengthDist
    max_len: int

    def sample(self, rng, n):
        return np.minimum(self.dist.sample(rng, n), max(self.max_len, 1))

    @property
    def mean(self):
        if isinstance(self.dist, Fixed):
            return float(min(self.dist.n, max(self.max_len, 1)))
        return float(self.sample(np.random.default_rng(0), 100_000).mean())


def parse_length(text: str | int, field: str = "--input-len") -> LengthDist:
    """``512``, ``uniform:128:1024``, ``lognormal:MEAN:STD`` or ``file:PATH``."""
    s = str(text).strip()
    try:
        if s.isdigit() and int(s) >= 1:
            return Fixed(int(s))
        kind, _, rest = s.partition(":")
        if kind == "uniform":
            lo, hi = (int(v) for v in rest.split(":"))
            if 1 <= lo <= hi:
                return Uniform(lo, hi)
        elif kind == "lognormal":
            mean, std = (float(v) for v in rest.split(":"))
            if mean >= 1 and std >= 0:
                return LogNormal(mean, std)
        elif kind == "file":
            return Empirical.from_file(Path(rest))
    except ValueError:
        pass
    raise ConfigError(
        f"{field} {s!r}: give an integer >= 1, uniform:LO:HI, lognormal:MEAN:STD or file:PATH"
    )


class Arrivals(ABC):
    closed_loop = False

    @abstractmethod
    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Arrival times of ``n`` requests (open loop)."""


@dataclass(frozen=True)
class Poisson(Arrivals):
    rate: float

    def times(self, rng, n):
        return np.cumsum(rng.exponential(1.0 / self.rate, size=n))


@dataclass(frozen=True)
class Gamma(Arrivals):
    """Renewal process with Gamma gaps: mean 1/rate, coefficient of variation ``cv``."""

    rate: float
    cv: float = 2.0

    def times(self, rng, n):
        shape = 1.0 / self.cv**2
        return np.cumsum(rng.gamma(shape, 1.0 / (self.rate * shape), size=n))


@dataclass(frozen=True)
class ClosedLoop(Arrivals):
    """``users`` concurrent users; each sends a new request when its last one completes."""

    users: int
    closed_loop = True

    def times(self, rng, n):
        return np.zeros(min(n, self.users))


@dataclass(frozen=True)
class TraceReplay(Arrivals):
    """CSV with columns ``arrival_s,input_len,output_len`` (header required)."""

    path: Path

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            with open(self.path, newline="") as fh:
                rows = list(csv.DictReader(fh))
            t = np.array([float(r["arrival_s"]) for r in rows])
            i = np.array([int(r["input_len"]) for r in rows], dtype=np.int64)
            o = np.array([int(r["output_len"]) for r in rows], dtype=np.int64)
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"trace {self.path}: {exc!r}; give a CSV with arrival_s,input_len,output_len"
            ) from exc
        order = np.argsort(t, kind="stable")
        return t[order], i[order], o[order]

    def times(self, rng, n):
        return self.load()[0][:n]
