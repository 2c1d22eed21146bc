"""The cluster harness: a real etcd (Debian's `etcd-server`, installed by `make test-deps`) on
free loopback ports with a temporary data directory, and Tessera nodes in cluster mode, each
a `tessera serve` subprocess (tests.conftest.ServerProcess) with its own config file:

    cluster:
      enabled: true
      p2p: {port: <free port>}
      etcd: {endpoints: ["http://127.0.0.1:<etcd port>"], prefix: "/tessera-test/",
             lease_ttl_sec: 6}

and `--uri http://127.0.0.1:<p2p port>/` (Qdrant's flag). Without an `etcd` binary the
fixtures fail loudly: cluster tests never pass by being skipped.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import ServerProcess, free_port

ETCD_READY_S = 20.0
# The nodes' lease: a killed node leaves within this; a clean stop must not wait for it.
LEASE_TTL_S = 6
T = TypeVar("T")


def etcd_binary() -> str:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        pytest.fail(
            "etcd is not installed: the cluster tests need a real etcd (Debian package "
            "`etcd-server`; `make test-deps` installs it)",
            pytrace=False,
        )
    return found


class EtcdProcess:
    """One single-member etcd on loopback; `stop()` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, base: Path) -> None:
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = base / "etcd-data"
        self.log_path = base / "etcd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        command = [
            etcd_binary(),
            "--name=tessera-test",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.endpoint}",
            f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=tessera-test={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + ETCD_READY_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"etcd was not healthy within {ETCD_READY_S} s\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def keys(self, prefix: str) -> dict[str, Any]:
        """Every key under `prefix` with its JSON value, read from etcd directly."""
        end = bytearray(prefix.encode())
        end[-1] += 1
        body = {
            "key": base64.b64encode(prefix.encode()).decode(),
            "range_end": base64.b64encode(bytes(end)).decode(),
        }
        answer = httpx.post(f"{self.endpoint}/v3/kv/range", json=body, timeout=5).json()
        return {
            base64.b64decode(kv["key"]).decode(): json.loads(base64.b64decode(kv["value"]))
            for kv in answer.get("kvs", [])
        }

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no etcd log)"


class PortProxy:
    """A TCP forwarder from a free loopback port to `target` (a node's p2p port), standing in
    for the network between peers: `block()` cuts every connection through it and refuses
    new ones (the peers behind can no longer reach that port; the node itself still reaches
    the others and etcd), `unblock()` heals it; `hold()` stalls what goes through instead."""

    def __init__(self) -> None:
        self.target = free_port()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._blocked = threading.Event()
        self._held = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self._blocked.is_set():
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._open.update((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self._held.is_set():  # the bytes wait: the call hangs, unanswered
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)

    def block(self) -> None:
        self._blocked.set()
        with self._lock:
            cut = list(self._open)
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def unblock(self) -> None:
        self._blocked.clear()

    def hold(self) -> None:
        """Bytes through the proxy wait from now on (a call in flight neither fails nor
        answers) until `release()`."""
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def close(self) -> None:
        self.block()
        self._listener.close()


class Cluster:
    """Tessera nodes sharing one etcd (under one key prefix)."""

    def __init__(
        self,
        base: Path,
        etcd: EtcdProcess,
        prefix: str,
        env: dict[str, str] | None = None,
        scheme: str = "http",
    ) -> None:
        """`env`: added to every node's environment (`QDRANT__...` settings); `scheme`: of
        the p2p URIs the nodes advertise (`https` with `cluster.p2p.enable_tls`)."""
        self.base = base
        self.etcd = etcd
        self.prefix = prefix
        self.env = env or {}
        self.scheme = scheme
        self.nodes: list[ServerProcess] = []

    def node_directory(self, n: int) -> Path:
        """Where node `n` (in order of addition) keeps its config, log and `storage/`."""
        return self.base / f"node{n}"

    def add_node(self, start: bool = True, proxy: PortProxy | None = None) -> ServerProcess:
        """A node; with `proxy`, the URI it advertises is the proxy's port, which forwards to
        its p2p port (`proxy.block()` then cuts the other peers off from it)."""
        n = len(self.nodes)
        p2p_port = proxy.target if proxy is not None else free_port()
        advertised = proxy.port if proxy is not None else p2p_port
        directory = self.node_directory(n)
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "config.yaml"
        config.write_text(
            "cluster:\n"
            "  enabled: true\n"
            f"  p2p:\n    port: {p2p_port}\n"
            "  etcd:\n"
            f'    endpoints: ["{self.etcd.endpoint}"]\n'
            f'    prefix: "{self.prefix}"\n'
            f"    lease_ttl_sec: {LEASE_TTL_S}\n"
        )
        node = ServerProcess(
            storage=directory / "storage",
            log_path=directory / "server.log",
            grpc_port=free_port(),
            config=config,
            env=dict(self.env),
            extra_args=["--uri", f"{self.scheme}://127.0.0.1:{advertised}"],
        )
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def start_nodes(self, count: int) -> list[ServerProcess]:
        """`count` new nodes started together (each joins on its own; start-up is mostly
        imports, so starting them side by side saves most of the wait)."""
        nodes = [self.add_node(start=False) for _ in range(count)]
        with ThreadPoolExecutor(count) as pool:
            for started in [pool.submit(node.start) for node in nodes]:
                started.result()
        return nodes

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll `probe` until it answers something other than None (or False); fail with `what`
    after `timeout`. For eventual states only: nothing here asserts how fast they come."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last is not None and last is not False:
            return last
        time.sleep(0.05)
    pytest.fail(f"{what}: not reached within {timeout} s (last: {last!r})")


@contextlib.contextmanager
def running_etcd(base: Path) -> Iterator[EtcdProcess]:
    process = EtcdProcess(base)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def running_cluster(base: Path, etcd: EtcdProcess, nodes: int = 3) -> Iterator[Cluster]:
    """`nodes` Tessera nodes in cluster mode over `etcd`, stopped afterwards."""
    group = Cluster(base, etcd, "/tessera-test/")
    try:
        group.start_nodes(nodes)
        yield group
    finally:
        group.stop()
