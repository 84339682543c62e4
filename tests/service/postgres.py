"""A throwaway PostgreSQL server for tests, from Debian's ``postgresql`` package (``make test`` installs it
when missing): ``initdb`` into a temp folder, ``pg_ctl start`` on a free loopback port, one database.

    with postgres_server() as url:      # "postgresql://imprint@127.0.0.1:PORT/imprint"
        Store.open(url)

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server() -> Iterator[str]:
    bins = bindir()
    if bins is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    root = Path(tempfile.mkdtemp(prefix="imprint-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    run(str(bins / "initdb"), "-D", str(data), "-U", "imprint", "--auth=trust", "-E", "UTF8")
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bins / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    try:
        run(str(bins / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "imprint", "imprint")
        yield f"postgresql://imprint@127.0.0.1:{port}/imprint"
    finally:
        subprocess.run(
            [*as_user, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(root, ignore_errors=True)
