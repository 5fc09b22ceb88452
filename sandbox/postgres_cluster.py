"""A private PostgreSQL cluster on loopback, for tests and benchmarks (Debian's binaries).

`initdb` into a temporary directory, the unix socket in that directory too, a free TCP
port on 127.0.0.1 only, password authentication for every connection (scram), an
administrator role and the bridge's own role with a database. `stop()` and `start()`
play a database going down and coming back on the same port; `close()` removes it all.
`durable=False` turns the server's fsync off: for tests, which never crash the machine
(a stopped or killed server loses nothing the page cache holds) and open hundreds of
stores, each a schema migration; a benchmark's figures need `durable=True`.

As root (CI), the server runs as Debian's `postgres` user: PostgreSQL refuses to run as
root. The binaries are found under /usr/lib/postgresql/<version>/bin (newest first).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

INSTALL_HINT = "apt-get install postgresql (Debian's server binaries)"
ADMIN = "admin"
BRIDGE_ROLE = "bridge"
BRIDGE_DATABASE = "apica"


def find_binaries() -> Path | None:
    """The newest Debian PostgreSQL bin directory with initdb and pg_ctl, if any."""
    root = Path("/usr/lib/postgresql")
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists() and (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    ) if root.is_dir() else []
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """`with PostgresCluster() as pg:` a running cluster; `pg.url(...)` to reach it."""

    def __init__(self, binaries: Path | None = None, *, durable: bool = True) -> None:
        found = binaries or find_binaries()
        if found is None:
            raise FileNotFoundError(f"no PostgreSQL server binaries; {INSTALL_HINT}")
        self.bin = found
        self.dir = Path(tempfile.mkdtemp(prefix="apica-pg-"))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.log = self.dir / "server.log"
        self.port = _free_port()
        self.admin_password = secrets.token_hex(12)
        self.bridge_password = "bridge-" + secrets.token_hex(8)
        self._user = self._server_user()
        self.durable = durable
        self.running = False

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        try:
            self.init()
            self.start()
            self._create_bridge_role()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def init(self) -> None:
        self.socket_dir.mkdir(parents=True)
        pwfile = self.dir / "admin.pw"
        pwfile.write_text(self.admin_password + "\n")
        if self._user is not None:
            for path in (self.dir, self.socket_dir, pwfile):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", ADMIN,
                  f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 200\nshared_buffers = 32MB\n"
                "log_min_messages = warning\nlog_min_error_statement = panic\n"
                + ("" if self.durable else "fsync = off\n"))

    def start(self) -> None:
        self._run(self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                  "-l", str(self.log))
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnect clients, clean shutdown; `immediate`: as a
        crash, recovered at the next start)."""
        self._run(self.bin / "pg_ctl", "stop", "-w", "-t", "60", "-m", mode,
                  "-D", str(self.data))
        self.running = False

    def close(self) -> None:
        if self.running:
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- addresses -----------------------------------------------------------------

    def url(self, *, user: str = BRIDGE_ROLE, password: str | None = None,
            database: str = BRIDGE_DATABASE, schema: str | None = None) -> str:
        """A `postgresql://` URL over TCP on loopback; `schema` puts the store in it."""
        if password is None:
            password = self.bridge_password if user == BRIDGE_ROLE else self.admin_password
        url = (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
               f"@127.0.0.1:{self.port}/{database}")
        if schema is not None:
            url += "?options=" + quote(f"-c search_path={schema}", safe="")
        return url

    def admin(self, database: str = BRIDGE_DATABASE):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(self.url(user=ADMIN, database=database), autocommit=True)

    def new_schema(self, name: str) -> str:
        """A fresh schema owned by the bridge's role; its URL."""
        with self.admin() as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            db.execute(f'CREATE SCHEMA "{name}" AUTHORIZATION {BRIDGE_ROLE}')
        return self.url(schema=name)

    # -- helpers -------------------------------------------------------------------

    def _create_bridge_role(self) -> None:
        import psycopg

        with psycopg.connect(self.url(user=ADMIN, database="postgres"),
                             autocommit=True) as db:
            db.execute(f"CREATE ROLE {BRIDGE_ROLE} LOGIN PASSWORD "
                       f"'{self.bridge_password}'")
            db.execute(f"CREATE DATABASE {BRIDGE_DATABASE} OWNER {BRIDGE_ROLE}")

    @staticmethod
    def _server_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise FileNotFoundError(
                "running as root and there is no 'postgres' user to run the server as; "
                + INSTALL_HINT) from None

    def _run(self, *command: object) -> None:
        user = self._user
        result = subprocess.run(
            [str(c) for c in command], capture_output=True, text=True, timeout=120,
            cwd=self.dir, env={**os.environ, "LC_ALL": "C.UTF-8"},
            user=user.pw_uid if user else None, group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, command[0],
                output=result.stdout, stderr=f"{result.stderr}\n{log}")
