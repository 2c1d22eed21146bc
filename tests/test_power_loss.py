"""Power loss: every acknowledged write survives a power cut, under strict POSIX durability.

The server runs on a FUSE mount of ``tests/powerloss_fs.py``, which keeps what an fsync made
durable: a file's bytes as of its last fsync, a directory's entries as of its last fsync. At
the cut the mount freezes (every later operation fails with EIO), the server is killed with
``kill -9``, and the durable state is written into a fresh directory, the disk as the machine
would find it after the power loss. The server is started again on it and must serve every
acknowledged point with its exact vector and payload, and nothing that was never sent.

The first tests check the simulator itself, so that the server tests cannot pass trivially.

``TESSERA_POWERLOSS_SEED`` fixes the random cut times (the seed in use is printed).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from tests.conftest import TARGET, ServerProcess, free_port
from tests.powerloss_fs import PowerLossMount, fuse_unavailable_reason

_UNAVAILABLE = fuse_unavailable_reason()
pytestmark = pytest.mark.skipif(
    _UNAVAILABLE is not None, reason=f"FUSE is not usable here: {_UNAVAILABLE}"
)

DIM = 8
COLLECTION = "powerloss"


# --------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def mount_factory(tmp_path: Path) -> Iterator[Callable[..., PowerLossMount]]:
    """Start simulators over tmp_path/backingN (or a given backing); all unmounted afterwards."""
    mounts: list[PowerLossMount] = []

    def make(backing: Path | None = None) -> PowerLossMount:
        n = len(mounts)
        m = PowerLossMount(
            backing=backing or tmp_path / f"backing{n}",
            mountpoint=tmp_path / f"mnt{n}",
            workdir=tmp_path / f"fuse{n}",
        )
        mounts.append(m)
        return m.start()

    try:
        yield make
    finally:
        for m in mounts:
            m.stop()
    for m in mounts:
        assert not m.internal_errors(), m.log_tail()


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path: Path, data: bytes, sync: bool = False) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def crash(mount: PowerLossMount, dest: Path) -> Path:
    mount.crash(dest)
    mount.stop()
    return dest


# --------------------------------------------------------------------------------------------
# The simulator itself


def test_unsynced_file_is_absent_after_the_cut(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    write(m.mountpoint / "a", b"not synced")
    assert (m.mountpoint / "a").read_bytes() == b"not synced"  # the live view has it
    after = crash(m, tmp_path / "after")
    assert list(after.iterdir()) == []


def test_fsynced_file_in_an_unsynced_directory_is_absent(
    mount_factory: Any, tmp_path: Path
) -> None:
    m = mount_factory()
    write(m.mountpoint / "a", b"synced bytes", sync=True)
    (m.mountpoint / "d").mkdir()
    fsync_path(m.mountpoint / "d")
    write(m.mountpoint / "d" / "b", b"in d", sync=True)
    fsync_path(m.mountpoint / "d")  # d's entry in the root was never made durable
    after = crash(m, tmp_path / "after")
    assert list(after.iterdir()) == []


def test_directory_entry_without_file_fsync_is_empty(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    write(m.mountpoint / "a", b"bytes never synced")
    fsync_path(m.mountpoint)
    after = crash(m, tmp_path / "after")
    assert (after / "a").read_bytes() == b""


def test_file_and_directory_fsynced_survive(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    (m.mountpoint / "d").mkdir()
    write(m.mountpoint / "d" / "b", b"durable", sync=True)
    fsync_path(m.mountpoint / "d")
    fsync_path(m.mountpoint)
    after = crash(m, tmp_path / "after")
    assert (after / "d" / "b").read_bytes() == b"durable"


def test_data_after_the_last_fsync_is_lost(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    path = m.mountpoint / "log"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"first ")
        os.fsync(fd)
        fsync_path(m.mountpoint)
        os.write(fd, b"second")  # appended, not synced
        os.pwrite(fd, b"F", 0)  # overwritten in place, not synced
        assert path.read_bytes() == b"First second"
    finally:
        os.close(fd)
    after = crash(m, tmp_path / "after")
    assert (after / "log").read_bytes() == b"first "


def test_rename_without_directory_fsync_is_undone(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    (m.mountpoint / "d").mkdir()
    fsync_path(m.mountpoint)
    write(m.mountpoint / "d" / "config", b"v1", sync=True)
    write(m.mountpoint / "old", b"moved", sync=True)
    fsync_path(m.mountpoint / "d")
    fsync_path(m.mountpoint)
    # The atomic-replace pattern without its final directory fsync.
    write(m.mountpoint / "d" / "config.tmp", b"v2", sync=True)
    os.replace(m.mountpoint / "d" / "config.tmp", m.mountpoint / "d" / "config")
    # A plain rename without any fsync.
    os.rename(m.mountpoint / "old", m.mountpoint / "new")
    after = crash(m, tmp_path / "after")
    assert (after / "d" / "config").read_bytes() == b"v1"
    assert not (after / "d" / "config.tmp").exists()
    assert (after / "old").read_bytes() == b"moved"
    assert not (after / "new").exists()


def test_rename_with_directory_fsync_is_durable(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    write(m.mountpoint / "config", b"v1", sync=True)
    write(m.mountpoint / "old", b"moved", sync=True)
    fsync_path(m.mountpoint)
    write(m.mountpoint / "config.tmp", b"v2", sync=True)
    os.replace(m.mountpoint / "config.tmp", m.mountpoint / "config")
    os.rename(m.mountpoint / "old", m.mountpoint / "new")
    fsync_path(m.mountpoint)
    after = crash(m, tmp_path / "after")
    assert sorted(p.name for p in after.iterdir()) == ["config", "new"]
    assert (after / "config").read_bytes() == b"v2"
    assert (after / "new").read_bytes() == b"moved"


def test_rename_across_directories_needs_both_fsyncs(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    for d in ("src", "dst"):
        (m.mountpoint / d).mkdir()
    write(m.mountpoint / "src" / "f", b"payload", sync=True)
    for d in ("src", "dst", "."):
        fsync_path(m.mountpoint / d)
    os.rename(m.mountpoint / "src" / "f", m.mountpoint / "dst" / "f")
    fsync_path(m.mountpoint / "dst")  # only the new parent
    after = crash(m, tmp_path / "after")
    # strict: the old parent still holds the old entry
    assert (after / "dst" / "f").read_bytes() == b"payload"
    assert (after / "src" / "f").read_bytes() == b"payload"


def test_unlink_and_rmdir_without_fsync_are_undone(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    (m.mountpoint / "d").mkdir()
    write(m.mountpoint / "f", b"kept", sync=True)
    write(m.mountpoint / "g", b"gone", sync=True)
    fsync_path(m.mountpoint)
    (m.mountpoint / "f").unlink()
    (m.mountpoint / "d").rmdir()
    (m.mountpoint / "g").unlink()
    (m.mountpoint / "g2").mkdir()
    fd = os.open(m.mountpoint / "g2", os.O_RDONLY)
    os.close(fd)
    after = crash(m, tmp_path / "after")
    assert (after / "f").read_bytes() == b"kept"
    assert (after / "g").read_bytes() == b"gone"
    assert (after / "d").is_dir()
    assert not (after / "g2").exists()


def test_truncate_and_o_trunc_are_undone_until_fsync(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    for name in ("a", "b", "c"):
        write(m.mountpoint / name, b"hello world", sync=True)
    fsync_path(m.mountpoint)
    write(m.mountpoint / "a", b"x")  # open(O_TRUNC) + write, no fsync
    os.truncate(m.mountpoint / "b", 5)  # truncate by path, no fsync
    with open(m.mountpoint / "c", "r+b") as f:
        f.truncate(3)  # ftruncate, then fsync
        os.fsync(f.fileno())
        f.truncate(8)  # extend, not synced
    after = crash(m, tmp_path / "after")
    assert (after / "a").read_bytes() == b"hello world"
    assert (after / "b").read_bytes() == b"hello world"
    assert (after / "c").read_bytes() == b"hel"


def test_fallocate_and_pwrite_at_offsets(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    size = 4 << 20
    fd = os.open(m.mountpoint / "seg.tmp", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.posix_fallocate(fd, 0, size)
        os.pwrite(fd, b"HEADER", 0)
        os.fsync(fd)
        os.rename(m.mountpoint / "seg.tmp", m.mountpoint / "seg")
        fsync_path(m.mountpoint)
        os.pwrite(fd, b"record-1", 4096)
        os.fdatasync(fd)
        os.pwrite(fd, b"record-2", 3 << 20)  # not synced
    finally:
        os.close(fd)
    after = crash(m, tmp_path / "after")
    data = (after / "seg").read_bytes()
    assert len(data) == size
    assert data[:6] == b"HEADER"
    assert data[4096 : 4096 + 8] == b"record-1"
    assert data[3 << 20 : (3 << 20) + 8] == bytes(8)
    assert data.count(0) == size - 14


def test_c_writes_mmap_flock_and_statfs(mount_factory: Any, tmp_path: Path) -> None:
    """faiss writes from C++, numpy reads through mmap, flock is local, disk_usage works."""
    import faiss

    m = mount_factory()
    index = faiss.IndexFlatL2(4)
    index.add(np.arange(40, dtype=np.float32).reshape(10, 4))
    faiss.write_index(index, str(m.mountpoint / "synced.faiss"))
    faiss.write_index(index, str(m.mountpoint / "unsynced.faiss"))
    fsync_path(m.mountpoint / "synced.faiss")
    fsync_path(m.mountpoint)
    assert faiss.read_index(str(m.mountpoint / "unsynced.faiss")).ntotal == 10

    matrix = np.arange(1000, dtype=np.float32).reshape(100, 10)
    np.save(m.mountpoint / "matrix.npy", matrix)
    loaded = np.load(m.mountpoint / "matrix.npy", mmap_mode="r")
    assert np.array_equal(loaded, matrix)
    del loaded

    with open(m.mountpoint / "lock", "ab") as f1, open(m.mountpoint / "lock", "ab") as f2:
        fcntl.flock(f1.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(f2.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    usage = shutil.disk_usage(m.mountpoint)
    assert usage.total > 0 and usage.free > 0

    after = crash(m, tmp_path / "after")
    assert faiss.read_index(str(after / "synced.faiss")).ntotal == 10
    assert (after / "unsynced.faiss").read_bytes() == b""


def test_after_the_cut_everything_fails(mount_factory: Any, tmp_path: Path) -> None:
    m = mount_factory()
    write(m.mountpoint / "a", b"x", sync=True)
    m.cut()
    with pytest.raises(OSError):
        write(m.mountpoint / "b", b"y")
    with pytest.raises(OSError):
        fsync_path(m.mountpoint)
    m.materialise(tmp_path / "after")
    assert list((tmp_path / "after").iterdir()) == []


def test_existing_contents_are_durable_and_carried_to_the_next_mount(
    mount_factory: Any, tmp_path: Path
) -> None:
    base = tmp_path / "base"
    (base / "d").mkdir(parents=True)
    (base / "d" / "f").write_bytes(b"boot state")
    m = mount_factory(base)
    write(m.mountpoint / "d" / "f", b"changed, not synced")
    write(m.mountpoint / "new", b"lost")
    first = crash(m, tmp_path / "first")
    assert sorted(str(p.relative_to(first)) for p in first.rglob("*")) == ["d", "d/f"]
    assert (first / "d" / "f").read_bytes() == b"boot state"
    # The next boot starts from that state.
    m2 = mount_factory(first)
    assert (m2.mountpoint / "d" / "f").read_bytes() == b"boot state"
    (m2.mountpoint / "d" / "f").unlink()
    fsync_path(m2.mountpoint / "d")
    second = crash(m2, tmp_path / "second")
    assert list((second / "d").iterdir()) == []


# --------------------------------------------------------------------------------------------
# The server on the simulator


def _vector(pid: int, version: int) -> list[float]:
    rng = np.random.default_rng(pid * 1009 + version)
    return rng.random(DIM).astype(np.float32).tolist()


def _payload(pid: int, version: int) -> dict[str, Any]:
    return {"n": pid, "v": version, "tag": f"t{pid}-{version}"}


@dataclass
class Ledger:
    """What was sent and what was acknowledged, per point id."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: dict[int, list[int]] = field(default_factory=dict)  # id -> versions sent
    acked: dict[int, int] = field(default_factory=dict)  # id -> latest acknowledged version
    errors: list[str] = field(default_factory=list)

    def send(self, points: list[tuple[int, int]]) -> None:
        with self.lock:
            for pid, version in points:
                self.attempted.setdefault(pid, []).append(version)

    def ack(self, points: list[tuple[int, int]]) -> None:
        with self.lock:
            for pid, version in points:
                self.acked[pid] = max(version, self.acked.get(pid, -1))


def _client(url: str, timeout: int = 30) -> QdrantClient:
    return QdrantClient(url=url, prefer_grpc=False, timeout=timeout, check_compatibility=False)


def _create_collection(client: QdrantClient) -> None:
    assert client.create_collection(
        COLLECTION,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        # A checkpoint every second; 1 KB (32 points) of vectors gets an HNSW index; small
        # segments so that the optimizer seals and merges them while the writers run.
        optimizers_config=models.OptimizersConfigDiff(
            flush_interval_sec=1,
            indexing_threshold=1,
            max_segment_size=16,
            default_segment_number=2,
        ),
        # Nothing here searches: the threshold of graph search is left at its default.
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=32),
    )


def _upsert(client: QdrantClient, points: list[tuple[int, int]]) -> None:
    client.upsert(
        COLLECTION,
        points=[
            models.PointStruct(id=pid, vector=_vector(pid, v), payload=_payload(pid, v))
            for pid, v in points
        ],
        wait=True,
    )


def _writer(url: str, ledger: Ledger, first_id: int, seed: int, stop: threading.Event) -> None:
    """Batches of 7 new points; every third batch also overwrites 3 of its earlier points."""
    client = _client(url, timeout=10)
    rng = random.Random(seed)
    own: list[int] = []
    versions: dict[int, int] = {}
    pid = first_id
    batch_no = 0
    try:
        while not stop.is_set():
            points = [(i, 0) for i in range(pid, pid + 7)]
            if batch_no % 3 == 2 and len(own) >= 3:
                for old in rng.sample(own, 3):
                    versions[old] += 1
                    points.append((old, versions[old]))
            ledger.send(points)
            try:
                _upsert(client, points)
            except Exception as exc:  # the power is off or the server is gone: not acked
                if not stop.is_set():
                    with ledger.lock:
                        ledger.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                return
            ledger.ack(points)
            for i in range(pid, pid + 7):
                own.append(i)
                versions[i] = 0
            pid += 7
            batch_no += 1
    finally:
        client.close()


def _verify(url: str, ledger: Ledger, label: str) -> dict[str, int]:
    """Every acknowledged point is there with its acknowledged (or a later sent) version;
    nothing is there that was never sent."""
    client = _client(url)
    try:
        acked = dict(ledger.acked)
        if not client.collection_exists(COLLECTION):
            raise AssertionError(
                f"{label}: the collection is gone; 0 of {len(acked)} acknowledged points "
                f"found (create_collection was acknowledged)"
            )
        found: dict[int, Any] = {}
        offset: Any = None
        while True:
            records, offset = client.scroll(
                COLLECTION, limit=1000, offset=offset, with_vectors=True, with_payload=True
            )
            for r in records:
                found[int(r.id)] = r
            if offset is None:
                break
        count = client.count(COLLECTION, exact=True).count
    finally:
        client.close()

    lost = sorted(pid for pid in acked if pid not in found)
    stale: list[tuple[int, int, int]] = []
    never_sent: list[tuple[int, Any]] = []
    corrupt: list[int] = []
    for pid, rec in found.items():
        sent = ledger.attempted.get(pid)
        payload = rec.payload or {}
        version = payload.get("v")
        if sent is None or version not in sent:
            never_sent.append((pid, payload))
            continue
        if payload != _payload(pid, version) or not np.allclose(
            rec.vector, _vector(pid, version), atol=1e-6
        ):
            corrupt.append(pid)
        if pid in acked and version < acked[pid]:
            stale.append((pid, version, acked[pid]))
    figures = {
        "acknowledged": len(acked),
        "found": len(found),
        "lost": len(lost),
        "stale": len(stale),
        "never_sent": len(never_sent),
        "corrupt": len(corrupt),
        "count": count,
    }
    print(f"{label}: {figures}")
    problems = []
    if lost:
        problems.append(f"{len(lost)} acknowledged points lost, e.g. {lost[:10]}")
    if stale:
        problems.append(
            f"{len(stale)} points older than acknowledged (id, found, acked): {stale[:5]}"
        )
    if never_sent:
        problems.append(f"{len(never_sent)} points never sent: {never_sent[:5]}")
    if corrupt:
        problems.append(f"{len(corrupt)} points with a wrong vector or payload: {corrupt[:10]}")
    if count != len(found):
        problems.append(f"count says {count}, scroll found {len(found)}")
    assert not problems, f"{label}: {figures}; " + "; ".join(problems)
    return figures


@contextlib.contextmanager
def _server_on(storage: Path, log_path: Path, port: int) -> Iterator[ServerProcess]:
    server = ServerProcess(storage=storage, log_path=log_path, port=port)
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.kill()


def _power_cut_cycles(
    tmp_path: Path, durations: list[float | None], seed: int, existing_storage: bool = False
) -> None:
    """One cycle per entry of `durations`: mount the state left by the previous cut, start the
    server on it, check it (from the second cycle on), write for `duration` seconds with four
    concurrent writers (None: create-time cut, ten acknowledged single upserts and cut at
    once), cut the power. Finally the server starts on the last state without FUSE.

    The first cycle starts from an empty storage directory, or with `existing_storage` from
    one that a server (on a plain directory, stopped gracefully) has already initialised."""
    state = tmp_path / "state0"
    state.mkdir()
    port = free_port()
    log_path = tmp_path / "server.log"
    if existing_storage:
        server = ServerProcess(storage=state, log_path=log_path, port=port)
        server.start(timeout=60)
        server.stop()
    ledger = Ledger()
    rng = random.Random(seed)
    next_id = 1
    print(f"power-loss seed {seed}, {len(durations)} cycles")
    for k, duration in enumerate(durations):
        mount = PowerLossMount(
            backing=state, mountpoint=tmp_path / f"mnt{k}", workdir=tmp_path / f"fuse{k}"
        )
        next_state = tmp_path / f"state{k + 1}"
        stop = threading.Event()
        threads: list[threading.Thread] = []
        clock = _Clock()
        try:
            mount.start()
            clock.mark("mount")
            with _server_on(mount.mountpoint, log_path, port) as server:
                clock.mark("server start")
                try:
                    if k == 0:
                        with contextlib.closing(_client(server.url)) as client:
                            _create_collection(client)
                    else:
                        _verify(server.url, ledger, f"after cut {k}")
                    clock.mark("check")
                    if duration is None:
                        with contextlib.closing(_client(server.url)) as client:
                            for _ in range(10):
                                points = [(next_id, 0)]
                                ledger.send(points)
                                _upsert(client, points)
                                ledger.ack(points)
                                next_id += 1
                    else:
                        for _ in range(4):
                            t = threading.Thread(
                                target=_writer,
                                args=(server.url, ledger, next_id, rng.getrandbits(32), stop),
                            )
                            next_id += 1_000_000
                            threads.append(t)
                            t.start()
                        time.sleep(duration)
                    before = len(ledger.acked)
                    clock.mark("writes")
                    mount.cut()
                    # The server lives on for a moment without a disk: a write whose fsync
                    # failed must not be acknowledged in that time (any ack is checked).
                    time.sleep(0.25)
                finally:
                    stop.set()
                    server.kill()
                    for t in threads:
                        t.join(timeout=30)
                    clock.mark("kill")
            summary = mount.materialise(next_state)
            clock.mark("materialise")
            ops = summary["counters"]
            print(
                f"cut {k + 1} after {duration or 0:.2f} s: {before} points acknowledged in all; "
                f"{summary['lost_entries']} directory entries lost, "
                f"{summary['shorter_files']} files shorter; fsync {ops.get('fsync', 0)}, "
                f"fdatasync {ops.get('fdatasync', 0)}, fsyncdir {ops.get('fsyncdir', 0)}; "
                f"lost e.g. {summary['lost_examples'][:3]}; {len(ledger.errors)} writer errors"
                + (f", the last: {ledger.errors[-1][:160]!r}" if ledger.errors else "")
            )
            ledger.errors.clear()
        except BaseException:
            print(server_log_tail(log_path))
            print(mount.log_tail())
            raise
        finally:
            mount.stop()
        clock.mark("unmount")
        assert not mount.internal_errors(), mount.log_tail()
        print(f"  seconds: {clock}")
        shutil.rmtree(tmp_path / f"fuse{k}", ignore_errors=True)
        if k > 0:
            shutil.rmtree(state, ignore_errors=True)
        state = next_state
    assert ledger.acked, "no write was acknowledged"
    with _server_on(state, log_path, port) as server:
        try:
            _verify(server.url, ledger, f"after cut {len(durations)} (plain directory)")
        except BaseException:
            print(server_log_tail(log_path))
            raise


class _Clock:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.marks: list[str] = []

    def mark(self, what: str) -> None:
        now = time.monotonic()
        self.marks.append(f"{what} {now - self.last:.1f}")
        self.last = now

    def __str__(self) -> str:
        return ", ".join(self.marks)


def server_log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "--- server log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


def _seed() -> int:
    env = os.environ.get("TESSERA_POWERLOSS_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 30)


needs_server = pytest.mark.skipif(
    TARGET != "server", reason=f"TESSERA_TEST_TARGET={TARGET}: the harness starts no servers"
)


@needs_server
@pytest.mark.parametrize("storage", ["fresh", "existing"])
def test_power_cut_right_after_create_collection(tmp_path: Path, storage: str) -> None:
    """Create the collection, ten acknowledged upserts, cut: all of it must be there. On a
    fresh storage directory the server's first directories must be durable too."""
    _power_cut_cycles(tmp_path, [None], _seed(), existing_storage=storage == "existing")


@needs_server
def test_power_cuts_with_concurrent_writers(tmp_path: Path) -> None:
    """Three cuts at random moments while four writers upsert; the first cut comes after
    several checkpoints and optimizer runs (flush every second, tiny index threshold)."""
    seed = _seed()
    rng = random.Random(seed)
    _power_cut_cycles(
        tmp_path, [rng.uniform(2.5, 4.0), rng.uniform(0.2, 3.0), rng.uniform(0.2, 3.0)], seed
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
@needs_server
def test_power_cuts_with_concurrent_writers_many_cycles(tmp_path: Path) -> None:
    """Twenty cuts, the first right after the collection is created."""
    seed = _seed()
    rng = random.Random(seed)
    _power_cut_cycles(tmp_path, [None] + [rng.uniform(0.1, 4.0) for _ in range(19)], seed)
