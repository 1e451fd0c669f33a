"""A real PostgreSQL for the review store's tests: $CKPTLIB_TEST_PG_URL, else a throwaway server started here.

Started the way .ci/run starts its own: initdb + pg_ctl from /usr/lib/postgresql/*/bin, as the
unprivileged system user `ckptlib-ci` when the tests run as root (PostgreSQL refuses root), listening
only on 127.0.0.1 on a free port and on a unix socket in its own folder, trust authentication, stopped
and removed at the end of the session. Without PostgreSQL the tests that need it are skipped, or fail
when CKPTLIB_REQUIRE_PG=1 (CI). `fresh_pg_url` gives each test an empty database of its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

ENV_URL = "CKPTLIB_TEST_PG_URL"
ENV_REQUIRE = "CKPTLIB_REQUIRE_PG"
SYSTEM_USER = "ckptlib-ci"  # runs the server when the tests run as root
SUPERUSER = "ckptlib"  # the cluster's own superuser role
DATABASE = "ckptlib_test"


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be found, started or reached (the reason is the message)."""


def _unavailable(reason: str):
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"{ENV_REQUIRE}=1 but PostgreSQL is unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def _connect(url: str, database: str | None = None):
    """A psycopg autocommit connection to the database of a SQLAlchemy URL (or to `database` on that server)."""
    import psycopg
    import sqlalchemy as sa

    u = sa.make_url(url)
    params = {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
              "dbname": database or u.database, **{k: str(v) for k, v in u.query.items()}}
    return psycopg.connect(autocommit=True, connect_timeout=10, **{k: v for k, v in params.items() if v is not None})


def pg_bin_dir() -> str | None:
    """The newest /usr/lib/postgresql/N/bin that holds initdb and pg_ctl."""
    def version(path: str) -> tuple[int, ...]:
        name = os.path.basename(os.path.dirname(path))
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    found = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if os.access(os.path.join(os.path.dirname(p), "pg_ctl"), os.X_OK)]
    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(SYSTEM_USER)


class Cluster:
    """One throwaway server: `start` it in a folder of its own, `stop` it (the folder is removed)."""

    def __init__(self, bin_dir: str, base: str, run_as: list[str]):
        self.bin_dir, self.base, self.run_as = bin_dir, base, run_as
        self.data = os.path.join(base, "data")
        self.port: int | None = None

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_as, os.path.join(self.bin_dir, tool), *args], cwd=self.base, check=False,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self.base, "server.log"), encoding="utf-8", errors="replace") as log:
                return " | ".join(log.read().strip().splitlines()[-5:])
        except OSError:
            return "(no server log)"

    def start(self) -> str:
        done = self._pg("initdb", "-D", self.data, "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale",
                        "--no-sync")
        if done.returncode:
            raise PostgresUnavailable(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")
        for _attempt in range(3):  # a free port can be taken between picking it and binding it
            port = _free_port()
            with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\n"
                           f"unix_socket_directories = '{self.base}'\n"
                           "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            done = self._pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "server.log"),
                            "-w", "-t", "60", "start")
            if done.returncode == 0:
                self.port = port
                break
        else:
            raise PostgresUnavailable(f"pg_ctl start failed: {self._log_tail()}")
        url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        with _connect(url) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def stop(self) -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def _cluster(tmp_path_factory) -> Cluster:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    if os.geteuid() != 0:
        return Cluster(bin_dir, str(tmp_path_factory.mktemp("postgres")), [])
    # As root: pytest's own temp folders are 0700 root, unreachable for the server's user, so the
    # cluster gets a temp folder of its own in /tmp (whatever $TMPDIR says), owned by that user, and
    # removed at the end like the rest.
    user = _system_user()
    base = tempfile.mkdtemp(prefix="ckptlib-pg-", dir="/tmp" if os.path.isdir("/tmp") else None)
    os.chown(base, user.pw_uid, user.pw_gid)
    return Cluster(bin_dir, base, ["runuser", "-u", SYSTEM_USER, "--"])


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A SQLAlchemy URL (postgresql+psycopg://…) of a real PostgreSQL database, for the whole session."""
    try:
        import psycopg
    except ImportError as exc:
        _unavailable(f"psycopg is not installed ({exc})")
    url = os.environ.get(ENV_URL)
    if url:
        try:
            _connect(url).close()
        except psycopg.Error as exc:
            _unavailable(f"${ENV_URL} cannot be reached: {str(exc).strip().splitlines()[0]}")
        yield url
        return
    cluster = None
    try:
        cluster = _cluster(tmp_path_factory)
        url = cluster.start()
    except (PostgresUnavailable, OSError, subprocess.SubprocessError, psycopg.Error) as exc:
        if cluster is not None:
            cluster.stop()
        _unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    try:
        yield url
    finally:
        cluster.stop()


@pytest.fixture
def fresh_pg_url(postgres_url):
    """A URL of a new, empty database on that server, dropped after the test."""
    import sqlalchemy as sa
    from psycopg import sql

    name = f"ckptlib_t_{uuid.uuid4().hex[:16]}"
    with _connect(postgres_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield sa.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with _connect(postgres_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
