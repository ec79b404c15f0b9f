"""Fixtures of the search tests: a real PostgreSQL server (CI installs one)."""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if not found:  # truly absent: say so (CI installs the server, so it never skips there)
        pytest.skip(
            f"PostgreSQL server binary {name} not found on PATH or in "
            "/usr/lib/postgresql/*/bin: install postgresql (.ci/run does) to run this test"
        )
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
