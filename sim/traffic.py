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
    """Lengths resampled from a file of observed ones: a ``.txt`` file of positive integers
    separated by white space (one per line), or a ``.csv`` file whose rows hold one integer each
    (a header row is allowed). Other files are refused, and no error repeats the file's content
    (a ``file:`` input may point anywhere)."""

    values: tuple[int, ...]

    @classmethod
    def from_file(cls, path: Path, field: str = "file") -> Empirical:
        path = Path(path)
        where = f"{field} {'file:' + str(path)!r}"
        if path.suffix.lower() not in (".txt", ".csv"):
            raise ConfigError(f"{where}: give a .txt or .csv file of lengths, one integer "
                              "per line")  # fmt: skip
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            raise ConfigError(f"{where}: {what}; give a file of lengths, one integer per line")
        if path.stat().st_size > MAX_LENGTH_FILE_BYTES:
            raise ConfigError(f"{where}: larger than {MAX_LENGTH_FILE_BYTES >> 20} MiB; give "
                              "a sample of the lengths")  # fmt: skip
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not a text file; give one integer per line") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
        return cls(_lengths_of(text, where, csv_file=path.suffix.lower() == ".csv"))

    def sample(self, rng, n):
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=n)

    @property
    def mean(self):
        return float(np.mean(self.values))


MAX_LENGTH_FILE_BYTES = 64 << 20
MAX_LENGTH = 1 << 24  # tokens: longer than any model's context


def _lengths_of(text: str, where: str, *, csv_file: bool) -> tuple[int, ...]:
    """The integers of a length file; an error names the line, never its content."""
    vals = []
    for i, line in enumerate(text.splitlines(), start=1):
        cells = [c.strip() for c in line.split(",")] if csv_file else line.split()
        if csv_file and i == 1 and not all(c.isdigit() for c in cells if c):
            continue  # a header
        for tok in cells:
            if csv_file and not tok:
                continue
            if not tok.isdigit() or not 1 <= int(tok) <= MAX_LENGTH:
                raise ConfigError(f"{where}: line {i}: not a length; give integers from 1 to "
                                  f"{MAX_LENGTH}, one per line")  # fmt: skip
            vals.append(int(tok))
    if not vals:
        raise ConfigError(f"{where}: no lengths; give one integer >= 1 per line")
    return tuple(vals)


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
    """``512``, ``uniform:128:1024``, ``lognormal:MEAN:STD`` or ``file:PATH`` (a ``.txt`` or
    ``.csv`` file of lengths, :class:`Empirical`); every number finite, lengths 1 to
    :data:`MAX_LENGTH`."""
    s = str(text).strip()
    kind, _, rest = s.partition(":")
    if kind == "file":
        return Empirical.from_file(Path(rest), field)
    try:
        if s.isdigit() and 1 <= int(s) <= MAX_LENGTH:
            return Fixed(int(s))
        if kind == "uniform":
            lo, hi = (int(v) for v in rest.split(":"))
            if 1 <= lo <= hi <= MAX_LENGTH:
                return Uniform(lo, hi)
        elif kind == "lognormal":
            mean, std = (float(v) for v in rest.split(":"))
            if 1 <= mean <= MAX_LENGTH and 0 <= std <= MAX_LENGTH:  # False for NaN
                return LogNormal(mean, std)
    except ValueError:
        pass
    shown = s if len(s) <= 60 else s[:57] + "..."
    raise ConfigError(
        f"{field} {shown!r}: give an integer >= 1 (at most {MAX_LENGTH}), uniform:LO:HI, "
        "lognormal:MEAN:STD (finite, MEAN >= 1) or file:PATH (.txt or .csv, one integer a line)"
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
        """Arrival times (s, finite, >= 0) and lengths (integers >= 1), sorted by arrival; a
        bad file is a ConfigError naming the row and column, never repeating the content."""
        where = f"trace {self.path}"
        if not Path(self.path).is_file():
            what = "is a directory" if Path(self.path).is_dir() else "not found"
            raise ConfigError(f"{where}: {what}; give a CSV with arrival_s,input_len,output_len")
        try:
            with open(self.path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error):
            raise ConfigError(f"{where}: cannot read it as CSV; give a CSV with "
                              "arrival_s,input_len,output_len") from None  # fmt: skip
        if not rows:
            raise ConfigError(f"{where}: no rows; give a CSV with a header "
                              "arrival_s,input_len,output_len and one request a row")  # fmt: skip
        t = np.array([_trace_cell(r, "arrival_s", i, where) for i, r in enumerate(rows)])
        i = np.array([_trace_cell(r, "input_len", k, where) for k, r in enumerate(rows)],
                     dtype=np.int64)  # fmt: skip
        o = np.array([_trace_cell(r, "output_len", k, where) for k, r in enumerate(rows)],
                     dtype=np.int64)  # fmt: skip
        order = np.argsort(t, kind="stable")
        return t[order], i[order], o[order]

    def times(self, rng, n):
        return self.load()[0][:n]


def _trace_cell(row: dict, column: str, i: int, where: str) -> float | int:
    """One checked value of a trace row (``i`` counts data rows from 1 after the header)."""
    at = f"{where}: row {i + 1}: {column}"
    text = row.get(column)
    if text is None:
        raise ConfigError(f"{at}: missing; give a CSV with arrival_s,input_len,output_len")
    text = text.strip()
    if column == "arrival_s":
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{at}: not a time; give seconds, a finite number >= 0")
        return value
    if not text.isdigit() or not 1 <= int(text) <= MAX_LENGTH:
        raise ConfigError(f"{at}: not a length; give an integer from 1 to {MAX_LENGTH}")
    return int(text)
