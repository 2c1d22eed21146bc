"""The test harness: a real Tessera server, the official client, and plain HTTP.

Where the tests run is chosen by ``TESSERA_TEST_TARGET``:

``server`` (the default)
    Start ``python -m tessera serve`` as a subprocess on a free port with a temporary storage
    directory, once per session, and wait for ``GET /readyz`` to answer 200.
``local``
    ``client`` is ``QdrantClient(":memory:")``, qdrant-client's own in-process implementation
    of Qdrant's semantics. The client-level tests run against it, which proves that *the tests*
    expect what Qdrant does; tests marked ``server_only`` (the wire, and the behaviours local
    mode does not implement) are skipped.
``url``
    Use a server that is already running at ``TESSERA_TEST_URL`` (a real Qdrant, for example,
    to check the wire tests themselves). Tests that need to restart the server are skipped.

Fixtures: ``server`` (url, port, storage, ``kill()``, ``start()``, ``stop()``, ``restart()``),
``server_factory`` (private servers for tests that must not disturb the shared one),
``client`` (``QdrantClient`` over REST), ``http`` (``httpx.Client``) and ``collection``
(unique collection names per test, deleted afterwards).

Helpers for modules with servers of their own (gRPC on, other settings): ``module_server``
(for a module-scoped fixture to ``yield from``), ``private_server``, ``running`` and
``require_server_target`` (for fixtures that do more around the start), ``make_client`` and
``make_grpc_client`` (the official client over REST or gRPC).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import UnexpectedResponse

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

TARGET = os.environ.get("TESSERA_TEST_TARGET", "server").strip().lower() or "server"
if TARGET not in ("server", "local", "url"):
    raise RuntimeError(f"TESSERA_TEST_TARGET must be server, local or url, not {TARGET!r}")
LOCAL = TARGET == "local"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "server_only(reason): needs a real server (the wire, or a behaviour that "
        "qdrant-client's local mode does not implement); skipped with TESSERA_TEST_TARGET=local",
    )
    config.addinivalue_line(
        "markers", "slow: long-running (many power-cut cycles); `make test-slow` runs them"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not LOCAL:
        return
    for item in items:
        marker = item.get_closest_marker("server_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"local mode: {reason or 'needs a server'}"))


# --------------------------------------------------------------------------------------------
# The server process


# Ports handed out by this run: never twice (a stopped server's port stays its own).
_HANDED_OUT: set[int] = set()
_PORTS = random.SystemRandom()  # not the seeded `random`: parallel runs must not agree


def free_port() -> int:
    """A loopback port nothing listens on, chosen below the kernel's ephemeral range. A port
    from that range (what binding port 0 gives) is also what outgoing connections take as
    their source port, so between this call and the server's bind (seconds later, after its
    imports, or across a kill and restart) a connection of this run (to etcd, to a peer) or
    of another process could take it, and the server died with "address already in use"
    (seen for a cluster node's REST and gRPC ports)."""
    low, high = 10000, _ephemeral_start() - 1
    for _ in range(1000):
        port = _PORTS.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{high}")


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unreadable)."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return max(first, 20000)


class ServerProcess:
    """One ``tessera serve`` subprocess bound to a fixed port and storage directory.

    ``kill()`` is ``kill -9`` of the whole process group (the server may have workers);
    ``start()`` starts it again on the same port and storage and waits until it is ready.
    Everything it prints goes to ``log_path`` (appended across restarts).
    """

    def __init__(
        self,
        storage: Path,
        log_path: Path,
        port: int | None = None,
        *,
        grpc_port: int = 0,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        tls: dict[str, Any] | None = None,
    ) -> None:
        """`grpc_port` (0: no gRPC), `config` (a file for `--config`), `env` (added to the
        environment), `extra_args` (appended to the command line) configure the server;
        `tls` (httpx's `verify` and `cert`) makes the readiness probe speak HTTPS."""
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.grpc_port = grpc_port
        self.storage = storage
        self.log_path = log_path
        self.config = config
        self.env = env or {}
        self.extra_args = extra_args or []
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tessera",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--grpc-port",
            str(self.grpc_port),
            "--storage",
            str(self.storage),
            *(["--config", str(self.config)] if self.config is not None else []),
            *self.extra_args,
        ]

    def start(self, timeout: float = READY_TIMEOUT_S) -> None:
        if self.running:
            raise RuntimeError("the server is already running")
        self.storage.mkdir(parents=True, exist_ok=True)
        # Settings of the shell running the tests (QDRANT__*, TESSERA__*) stay out; so do
        # config/ files of the checkout: the server runs in the test's own directory.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("QDRANT__", "TESSERA__", "TESSERA_HOST", "TESSERA_PORT"))
            and k not in ("TESSERA_GRPC_PORT", "TESSERA_STORAGE", "TESSERA_CONFIG", "RUN_MODE")
        }
        env.update(self.env, PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.log_path.parent,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"tessera serve exited with code {self.proc.returncode} before it was "
                    f"ready\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=1.0, **(self.tls or {}))
                if response.status_code == 200:
                    return
                last_error = f"/readyz answered {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"tessera serve was not ready within {timeout:.0f} s ({last_error})\n{self.log_tail()}"
        )

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """``kill -9``: no shutdown hook runs, nothing is flushed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then kill -9 if it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self, graceful: bool = False) -> None:
        if graceful:
            self.stop()
        else:
            self.kill()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


class ExternalServer:
    """A server this harness did not start (TESSERA_TEST_TARGET=url): it cannot restart it."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")
        parsed = httpx.URL(self._url)
        self.host = parsed.host
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.storage: Path | None = None

    @property
    def url(self) -> str:
        return self._url

    def kill(self) -> None:
        pytest.skip("TESSERA_TEST_TARGET=url: the harness cannot restart an external server")

    start = stop = kill

    def restart(self, graceful: bool = False) -> None:
        self.kill()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess | ExternalServer]:
    """The shared server of this session (skipped in local mode)."""
    if LOCAL:
        pytest.skip("TESSERA_TEST_TARGET=local: no server")
    if TARGET == "url":
        url = os.environ.get("TESSERA_TEST_URL", "http://127.0.0.1:6333")
        yield ExternalServer(url)
        return
    base = tmp_path_factory.mktemp("tessera-server")
    proc = ServerProcess(storage=base / "storage", log_path=base / "server.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def require_server_target() -> None:
    """Skip the test unless the tests start servers of their own (TESSERA_TEST_TARGET)."""
    if TARGET != "server":
        pytest.skip(f"TESSERA_TEST_TARGET={TARGET}: these tests start their own server")


def private_server(
    tmp_path_factory: pytest.TempPathFactory, label: str, grpc: bool = False, **kwargs: Any
) -> ServerProcess:
    """A server, not started, with its storage and log in a new directory named after
    `label`; gRPC on a free port when `grpc`. Other keyword arguments go to
    ``ServerProcess`` (``env``, ``extra_args``, ...)."""
    base = tmp_path_factory.mktemp(label)
    return ServerProcess(
        storage=base / "storage",
        log_path=base / "server.log",
        grpc_port=free_port() if grpc else 0,
        **kwargs,
    )


@contextlib.contextmanager
def running(proc: ServerProcess) -> Iterator[ServerProcess]:
    """`proc` started, and stopped when the block ends (a fixture's setup after the start
    included, so a failing setup leaves no server behind)."""
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def module_server(
    tmp_path_factory: pytest.TempPathFactory, label: str, grpc: bool = False, **kwargs: Any
) -> Iterator[ServerProcess]:
    """A private server for one test module (its own storage; gRPC on a free port when
    `grpc`; other keyword arguments as `private_server`), for a module-scoped fixture to
    `yield from`; skipped unless the tests start servers."""
    require_server_target()
    with running(private_server(tmp_path_factory, label, grpc, **kwargs)) as proc:
        yield proc


def assert_clean_log(proc: ServerProcess) -> None:
    """Nothing went wrong in the server: no ERROR line, no payload index rebuilt from the
    payloads (after a restart: the checkpoints were written and read back)."""
    log = proc.log_path.read_text(errors="replace")
    assert "ERROR" not in log and "rebuilding payload index" not in log, log[-2000:]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start private servers (own port, own storage under tmp_path); all stopped afterwards.

    Keyword arguments go to ``ServerProcess`` (``grpc_port``, ``config``, ``env``,
    ``extra_args``, ``tls``); ``start=False`` returns it unstarted.
    """
    if TARGET != "server":
        pytest.skip(f"TESSERA_TEST_TARGET={TARGET}: the harness starts no servers")
    started: list[ServerProcess] = []

    def make(start: bool = True, **kwargs: Any) -> ServerProcess:
        n = len(started)
        proc = ServerProcess(
            storage=tmp_path / f"storage{n}", log_path=tmp_path / f"server{n}.log", **kwargs
        )
        started.append(proc)
        if start:
            proc.start()
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.stop()


# --------------------------------------------------------------------------------------------
# Clients


def make_client(url: str) -> QdrantClient:
    return QdrantClient(url=url, prefer_grpc=False, timeout=30)


def make_grpc_client(server: ServerProcess, **kwargs: Any) -> QdrantClient:
    """The official client over gRPC (``prefer_grpc=True``) to `server`, which listens for
    it; keyword arguments go to ``QdrantClient`` (``timeout``, ``api_key``, ...)."""
    return QdrantClient(
        host=server.host,
        port=server.port,
        grpc_port=server.grpc_port,
        prefer_grpc=True,
        **kwargs,
    )


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Iterator[QdrantClient]:
    """The official client: over REST to the server, or ``:memory:`` in local mode.

    Function-scoped so that a test that restarts the server never leaves a stale connection
    pool behind for the next one.
    """
    if LOCAL:
        qc = QdrantClient(":memory:")
    else:
        srv = request.getfixturevalue("server")
        qc = make_client(srv.url)
    try:
        yield qc
    finally:
        qc.close()


@pytest.fixture
def http(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """Plain HTTP to the server (the wire the client hides); skipped in local mode."""
    if LOCAL:
        pytest.skip("TESSERA_TEST_TARGET=local: no HTTP server")
    srv = request.getfixturevalue("server")
    with httpx.Client(base_url=srv.url, timeout=30.0) as hc:
        yield hc


class CollectionFactory:
    """``collection()`` returns a fresh, unique collection name for this test.

    With keyword arguments it also creates the collection:
    ``collection(vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))``.
    Every name it handed out is deleted when the test ends.
    """

    def __init__(self, client: QdrantClient, test_name: str) -> None:
        self.client = client
        slug = re.sub(r"[^A-Za-z0-9]+", "_", test_name.removeprefix("test_")).strip("_")
        self.slug = slug[:40] or "t"
        self.names: list[str] = []

    def __call__(self, **create_kwargs: Any) -> str:
        name = f"{self.slug}_{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        if create_kwargs:
            assert self.client.create_collection(name, **create_kwargs) is True
        return name

    def cleanup(self) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                self.client.delete_collection(name)


@pytest.fixture
def collection(client: QdrantClient, request: pytest.FixtureRequest) -> Iterator[CollectionFactory]:
    factory = CollectionFactory(client, request.node.name)
    try:
        yield factory
    finally:
        factory.cleanup()


# --------------------------------------------------------------------------------------------
# Errors through the client


@contextlib.contextmanager
def _expect_api_error(status: int, contains: str | None = None) -> Iterator[None]:
    """The block must fail the way Qdrant fails.

    Against a server: an ``UnexpectedResponse`` with this HTTP status (and ``contains`` in the
    error message when given). In local mode qdrant-client raises plain Python exceptions
    (``ValueError``, ``KeyError``) whose wording differs, so only the failure is checked.
    """
    if LOCAL:
        with pytest.raises(Exception):  # noqa: B017 - local mode raises assorted built-ins
            yield
        return
    with pytest.raises(UnexpectedResponse) as info:
        yield
    assert info.value.status_code == status, str(info.value)
    if contains is not None:
        message = info.value.structured()["status"]["error"]
        assert contains in message, message


@pytest.fixture
def expect_error() -> Callable[..., contextlib.AbstractContextManager[None]]:
    return _expect_api_error
