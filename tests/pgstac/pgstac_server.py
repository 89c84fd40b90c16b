"""Start a throw-away stac-fastapi-pgstac server on a private PostgreSQL + PostGIS cluster.

Used by the ``pgstac`` tests (tests/pgstac/test_pgstac_search.py). :func:`serve` is a context
manager that

1. finds the PostgreSQL server binaries (``$EOAI_PG_BINDIR``, else the newest
   ``/usr/lib/postgresql/<ver>/bin``, else ``pg_ctl`` on ``PATH``);
2. ``initdb``s a cluster in a fresh temporary folder (as the ``postgres`` system user when run as
   root, because PostgreSQL refuses to run as root), with scram-sha-256 password authentication
   and a random password, and starts it on 127.0.0.1 only, on a free port, with its unix socket in
   that folder;
3. creates a database, installs the pgstac schema with ``pypgstac`` (which creates the ``postgis``
   and ``btree_gist`` extensions) and loads a collection and its items;
4. starts ``uvicorn stac_fastapi.pgstac.app:create_app --factory`` on 127.0.0.1 on a free port and
   waits until the landing page answers;
5. yields the API URL, then stops uvicorn, stops PostgreSQL and removes the folder.

What is missing on the machine (binaries, the postgres user, the PostGIS extension, the Python
packages) raises :class:`Unavailable` with the reason, which the fixture turns into
``skip_or_fail``. Anything that goes wrong while starting raises :class:`ServerError` with the
tails of the PostgreSQL and uvicorn logs.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BINDIR_ENV = "EOAI_PG_BINDIR"
DATABASE = "eoai_pgstac"
SUPERUSER = "postgres"
STARTUP_TIMEOUT_S = 60.0


class Unavailable(RuntimeError):
    """Something the server needs is not installed on this machine (a skip locally)."""


class ServerError(RuntimeError):
    """The server was installed but did not start; the message carries the logs."""


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or raise :class:`Unavailable`."""
    override = os.environ.get(BINDIR_ENV)
    if override is not None:
        candidates = [Path(override)]
        where = f"${BINDIR_ENV}={override}"
    else:
        versions = glob.glob("/usr/lib/postgresql/*/bin")
        versions.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True)
        candidates = [Path(p) for p in versions]
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        where = "/usr/lib/postgresql/*/bin or PATH"
    for cand in candidates:
        if all((cand / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return cand
    raise Unavailable(
        f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in {where}: install the "
        "Debian packages postgresql and postgresql-postgis (or point "
        f"${BINDIR_ENV} at a PostgreSQL bin folder) to run the stac-fastapi-pgstac tests"
    )


def check_python_packages() -> None:
    """Raise :class:`Unavailable` naming the missing packages of the ``test`` extra."""
    needed = {
        "pypgstac": "pypgstac[psycopg]",
        "psycopg": "pypgstac[psycopg]",
        "stac_fastapi.pgstac": "stac-fastapi-pgstac",
        "uvicorn": "uvicorn",
        "pystac_client": "pystac-client",
    }
    missing = []
    for module, dist in needed.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(dist)
    if missing:
        raise Unavailable(
            f"Python packages {sorted(set(missing))} not installed: "
            'pip install -e ".[test]" to run the stac-fastapi-pgstac tests'
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} not written)"
    return "\n".join(lines[-n:]) or "(empty)"


class _Runner:
    """Runs PostgreSQL commands as the current user, or as ``postgres`` when we are root."""

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.bindir = bindir
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise Unavailable(
                    "running as root and there is no 'postgres' system user to run PostgreSQL "
                    "as (PostgreSQL refuses to run as root): install the Debian package "
                    "postgresql, which creates it"
                ) from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise Unavailable("running as root and 'runuser' (util-linux) is not installed")
            os.chown(workdir, pw.pw_uid, pw.pw_gid)
            self.prefix = [runuser, "-u", SUPERUSER, "--"]
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()

    def __call__(self, exe: str, *args: str, timeout: float = STARTUP_TIMEOUT_S) -> str:
        cmd = [*self.prefix, str(self.bindir / exe), *args]
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        )
        if proc.returncode != 0:
            raise ServerError(
                f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n"
                f"{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout


def _absolute_hrefs(item: dict[str, Any], item_dir: Path) -> dict[str, Any]:
    """The item with local asset hrefs made absolute ``file://`` URIs and stale links dropped."""
    item = json.loads(json.dumps(item))
    for asset in item.get("assets", {}).values():
        href = asset["href"]
        if "://" not in href and not href.startswith("/"):
            asset["href"] = (item_dir / href).resolve().as_uri()
        elif href.startswith("/"):
            asset["href"] = Path(href).as_uri()
    keep = {"license", "derived_from", "canonical", "thumbnail", "via", "alternate"}
    item["links"] = [
        link for link in item.get("links", []) if link.get("rel") in keep and "://" in link["href"]
    ]
    return item


def read_static_collection(collection_json: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A static collection and its items, ready for pgstac (absolute asset hrefs, no stale links)."""
    collection = json.loads(collection_json.read_text())
    items = []
    for link in collection.get("links", []):
        if link.get("rel") != "item":
            continue
        path = (collection_json.parent / link["href"]).resolve()
        items.append(_absolute_hrefs(json.loads(path.read_text()), path.parent))
    collection = dict(collection)
    collection["links"] = [
        link for link in collection.get("links", []) if link.get("rel") in {"license", "about"}
    ]
    if not items:
        raise ServerError(f"{collection_json} links to no items")
    return collection, items


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"uvicorn exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (127.0.0.1)
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise ServerError(f"{url} did not answer within {timeout:.0f} s (last: {last})")


class _Server:
    """State of one PostgreSQL + stac-fastapi-pgstac pair, so that it can always be stopped."""

    def __init__(self, bindir: Path, log) -> None:
        self.bindir = bindir
        self.log = log
        # mkdtemp directly under /tmp (mode 0700): pytest's tmp folders sit below a root-only
        # parent that the postgres user could not traverse.
        self.workdir = Path(tempfile.mkdtemp(prefix="eoai-pgstac-"))
        self.datadir = self.workdir / "data"
        self.pg_log = self.workdir / "postgres.log"
        self.api_log = self.workdir / "uvicorn.log"
        self.run: _Runner | None = None
        self.pg_started = False
        self.api: subprocess.Popen | None = None
        self.api_log_file = None

    def logs(self) -> str:
        return (
            f"\n--- PostgreSQL log ({self.pg_log}) ---\n{_tail(self.pg_log)}"
            f"\n--- uvicorn log ({self.api_log}) ---\n{_tail(self.api_log)}"
        )

    def start_postgres(self) -> tuple[int, str]:
        """initdb + pg_ctl start on 127.0.0.1; return (port, superuser password)."""
        run = self.run = _Runner(self.bindir, self.workdir)
        password = secrets.token_urlsafe(24)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(password + "\n")
        os.chown(pwfile, run.uid, run.gid)
        run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        port = free_port()
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={port}",
                f"-c unix_socket_directories={self.workdir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
            ]
        )
        # pg_ctl writes the server log as the postgres user: create it with that owner.
        self.pg_log.touch()
        os.chown(self.pg_log, run.uid, run.gid)
        self.pg_started = True  # from here on, always try to stop it
        run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(int(STARTUP_TIMEOUT_S)),
            "-D",
            str(self.datadir),
            "-l",
            str(self.pg_log),
            "-o",
            options,
        )
        return port, password

    def load_pgstac(
        self,
        port: int,
        password: str,
        collection: dict[str, Any],
        items: list[dict[str, Any]],
    ) -> str:
        """Create the database, migrate pgstac into it, load the data; return the pgstac version."""
        import psycopg
        from pypgstac.db import PgstacDB
        from pypgstac.load import Loader, Methods
        from pypgstac.migrate import Migrate

        wanted = {"postgis", "btree_gist"}
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            rows = conn.execute(
                "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", [list(wanted)]
            )
            missing = sorted(wanted - {row[0] for row in rows})
            if missing:
                raise Unavailable(
                    f"PostgreSQL extensions {missing} are not installed for {self.bindir}: install "
                    "the Debian package postgresql-postgis (= postgresql-<ver>-postgis-3; the "
                    "package 'postgis' alone does not pull it in with --no-install-recommends)"
                )
            conn.execute(f"CREATE DATABASE {DATABASE}")
        db = PgstacDB(dsn=f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{DATABASE}")
        try:
            version = Migrate(db).run_migration()
            loader = Loader(db=db)
            loader.load_collections(iter([collection]), Methods.insert)
            loader.load_items(iter(items), Methods.insert)
        finally:
            db.close()
        return version

    def start_api(self, port: int, password: str, timeout: float) -> str:
        """Start uvicorn with stac-fastapi-pgstac; return its URL once ``/`` answers."""
        api_port = free_port()
        env = {
            **os.environ,
            "PGUSER": SUPERUSER,
            "PGPASSWORD": password,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            "PGDATABASE": DATABASE,
            "DB_MIN_CONN_SIZE": "1",
            "DB_MAX_CONN_SIZE": "4",
        }
        self.api_log_file = open(self.api_log, "wb")  # noqa: SIM115 (closed in stop)
        self.api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "stac_fastapi.pgstac.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
            ],
            cwd=self.workdir,  # no stray .env from the caller's folder
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.api_log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{api_port}"
        _wait_http(url + "/", self.api, timeout)
        return url

    def stop(self) -> None:
        """Stop uvicorn, then PostgreSQL, then remove the folder; never raises."""
        if self.api is not None and self.api.poll() is None:
            self.api.send_signal(signal.SIGTERM)
            try:
                self.api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.api.kill()
                self.api.wait(timeout=10)
        if self.api_log_file is not None:
            self.api_log_file.close()
        if self.pg_started and self.run is not None:
            try:
                self.run("pg_ctl", "stop", "-D", str(self.datadir), "-m", "fast", "-w", timeout=30)
            except (ServerError, subprocess.TimeoutExpired) as exc:
                self.log(f"pg_ctl stop failed: {exc}")
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextmanager
def serve(
    collection: dict[str, Any], items: Iterable[dict[str, Any]], *, log=print
) -> Iterator[str]:
    """Run stac-fastapi-pgstac with ``collection`` and ``items``; yield its URL (no trailing /).

    Raises :class:`Unavailable` when PostgreSQL, PostGIS or the Python packages are missing and
    :class:`ServerError` (with the logs) when they are installed but the server does not start.
    """
    check_python_packages()
    server = _Server(find_bindir(), log)
    t0 = time.monotonic()
    try:
        try:
            port, password = server.start_postgres()
            version = server.load_pgstac(port, password, collection, list(items))
            t1 = time.monotonic()
            url = server.start_api(port, password, STARTUP_TIMEOUT_S)
            log(
                f"pgstac {version} on {server.bindir} loaded in {t1 - t0:.1f} s; "
                f"stac-fastapi-pgstac at {url} ready in {time.monotonic() - t0:.1f} s"
            )
        except Unavailable:
            raise
        except ServerError as exc:
            raise ServerError(f"{exc}{server.logs()}") from None
        except Exception as exc:
            raise ServerError(f"stac-fastapi-pgstac did not start: {exc!r}{server.logs()}") from exc
        yield url
    finally:
        server.stop()
