"""Snapshots: collection, shard and full storage snapshots, as Qdrant makes and restores them.

Layout under the snapshots directory (`storage.snapshots_path`, `<storage>/snapshots` unless
configured), as Qdrant's::

    <collection>/<collection>-<peer id>-<YYYY-MM-DD-HH-MM-SS>.snapshot     (+ `.checksum`)
    <collection>/shards/0/<collection>-shard-0-<date>.snapshot             (+ `.checksum`)
    full-snapshot-<date>.snapshot                                          (+ `.checksum`)
    :tmp/                  snapshots being written, downloads and uploads (emptied at start)

The archive format is tessera.storage.snapshot_format's. Creating a snapshot forces a
checkpoint and pins it (LocalShard.pin_checkpoint): its files and manifest stay while they
are packed, writes go on meanwhile (they only wait for the checkpoint's brief copy under the
shard lock, as for any flush), and the snapshot is the state at the checkpoint's operation.
Names keep Qdrant's format; a name already taken in the same second takes the next second.
`<peer id>` is this node's, kept in `<storage>/peer_id`.

Restoring never touches the live collection until the snapshot has proved itself: the
archive (a file in the snapshots directory, a download, or an upload, each on disk) is
checked against `checksum` when given, then unpacked by the strict reader into a staging
directory beside the collections (`:restoring-*`), where every member is checked against
the archive's manifest (size and SHA-256), the config and the shard manifest are read with
their checksums, every segment file against its size and crc32 (verify_segment_files), no
file is left over, and the collection is loaded once there. Only then is it swapped in, by
the journaled swap of tessera.storage.swap. A refused archive answers 400 and leaves nothing
behind. When the collection exists its config is kept and the snapshot's vectors must match
it (Qdrant's compatibility check); a damaged collection is replaced whole.

`priority` (`no_sync`, `snapshot`, `replica`) chooses the source of truth among replicas; on
a single node there are none, so every priority restores the snapshot's data, as in Qdrant.
In cluster mode a snapshot (which holds every shard's points) recovered over an existing
collection replaces its points on every shard, whatever the priority.
"""

from __future__ import annotations

import base64
import contextlib
import http
import logging
import os
import re
import secrets
import shutil
import stat
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from tessera import __version__
from tessera.collection.collection import (
    CONFIG_KIND,
    CONFIG_VERSION,
    Collection,
    read_config,
    write_config,
)
from tessera.collection.distributed import ClusterCollection
from tessera.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    UnprocessableEntity,
    bad_input,
    collection_not_found,
)
from tessera.fileformat import FormatError, encode_checked_json, read_checked_json
from tessera.fsutil import (
    mkdir_durable,
    remove_durable,
    rename_durable,
    rmtree_durable,
    write_durable,
    write_file_synced,
)
from tessera.segment.persist import verify_segment_files
from tessera.shard.errors import ShardClosed
from tessera.shard.shard import (
    manifest_generations,
    manifest_name,
    min_free_bytes,
    read_manifest,
    wal_dir,
)
from tessera.shard.wal import start_log_at
from tessera.storage import swap
from tessera.storage.snapshot_activity import SnapshotActivity
from tessera.storage.snapshot_format import (
    CHUNK,
    CONFIG_MEMBER,
    FULL_CONFIG_MEMBER,
    MANIFEST_MEMBER,
    SNAPSHOT_KIND,
    SNAPSHOT_VERSION,
    ArchiveWriter,
    Member,
    extract,
    invalid,
    make_durable,
    same_members,
    sha256_file,
)

if TYPE_CHECKING:
    from tessera.collection_config import CollectionConfig
    from tessera.storage.toc import TableOfContents

log = logging.getLogger(__name__)

SUFFIX = ".snapshot"
CHECKSUM_SUFFIX = ".checksum"
TMP_DIR = ":tmp"
PEER_ID_FILE = "peer_id"
FULL_PREFIX = "full-snapshot"
PRIORITIES = ("no_sync", "snapshot", "replica")
LOCAL_SHARD = 0
# The full snapshot's config.json is read whole: bounded.
MAX_FULL_CONFIG_BYTES = 16 << 20
DOWNLOAD_TIMEOUT_S = 60.0
_SAFE_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"

Description = dict[str, Any]


_PEER_ID_LOCK = threading.Lock()


def peer_id(storage: Path) -> int:
    """This node's peer id (Qdrant's is a random u64 chosen once): `<storage>/peer_id`.
    Chosen under a lock: two first snapshots at once wrote the same temporary file, and
    one answered 500."""
    path = storage / PEER_ID_FILE
    with _PEER_ID_LOCK:
        try:
            value = int(path.read_text().strip())
            if value > 0:
                return value
        except (OSError, ValueError):
            pass
        value = secrets.randbits(63) or 1
        mkdir_durable(storage)
        write_durable(path, str(value).encode())
        return value


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%d-%H-%M-%S")


def describe(path: Path) -> Description:
    """Qdrant's SnapshotDescription of a snapshot file."""
    st = path.stat()
    created = datetime.fromtimestamp(int(st.st_mtime), UTC).replace(tzinfo=None)
    out: Description = {
        "name": path.name,
        "creation_time": created.isoformat(),
        "size": st.st_size,
    }
    with contextlib.suppress(OSError):
        out["checksum"] = (path.parent / (path.name + CHECKSUM_SUFFIX)).read_text().strip()
    return out


def hashes_equal(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def check_priority(priority: Any, where: str = "Format error in JSON body") -> str | None:
    if priority is None or priority in PRIORITIES:
        return None if priority is None else str(priority)
    raise BadRequest(
        f"{where}: unknown variant `{priority}`, expected one of `no_sync`, `snapshot`, `replica`"
    )


def check_checksum(checksum: Any, where: str = "JSON body") -> str | None:
    if checksum is None:
        return None
    if (
        not isinstance(checksum, str)
        or len(checksum) != 64
        or any(c not in "0123456789abcdefABCDEF" for c in checksum)
    ):
        raise UnprocessableEntity(
            f"Validation error in {where}: [checksum: invalid SHA-256 hash, expected 64 "
            "hexadecimal characters]"
        )
    return checksum


def _collection_member(name: str) -> bool:
    return (
        name in (MANIFEST_MEMBER, CONFIG_MEMBER)
        or re.fullmatch(r"shard/manifest\.\d{20}\.json", name) is not None
        or re.fullmatch(rf"shard/segments/{_SAFE_NAME}/{_SAFE_NAME}", name) is not None
    )


def _full_member(name: str) -> bool:
    return "/" not in name and (name == FULL_CONFIG_MEMBER or name.endswith(SUFFIX))


def _safe(name: Any) -> str:
    if not isinstance(name, str) or re.fullmatch(_SAFE_NAME, name) is None:
        raise invalid(f"the shard manifest names a file or segment {name!r}")
    return name


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    """Redirects may lead to http(s) only, never to file:// or ftp://."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-HTTP URL", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _shown(url: str) -> str:
    """A URL for messages: no credentials, no query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class SnapshotStore:
    """The snapshots of one table of contents (see the module docstring)."""

    def __init__(self, toc: TableOfContents, storage: Path, root: Path) -> None:
        self.toc = toc
        self.storage = storage
        self.root = root
        self._lock = threading.Lock()  # snapshot names, restore locks
        self._restoring: dict[str, threading.Lock] = {}
        self._peer: int | None = None
        self.activity = SnapshotActivity()
        if (root / TMP_DIR).exists():
            rmtree_durable(root / TMP_DIR)  # unfinished snapshots, downloads, uploads

    # ---- places -----------------------------------------------------------------------

    @property
    def peer_id(self) -> int:
        if self._peer is None:
            self._peer = peer_id(self.storage)
        return self._peer

    def tmp_dir(self) -> Path:
        path = self.root / TMP_DIR
        mkdir_durable(path)
        return path

    def reserve(self) -> int:
        """Free space a snapshot, download or restore leaves on the volume."""
        return min_free_bytes(self.toc.root, 32 << 20)

    def _collection_dir(self, name: str) -> Path:
        # 404 for a collection that does not exist; an alias names its collection, whose
        # snapshots these are (as in Qdrant).
        return self.root / self.toc.get(name).name

    def _shard_dir(self, name: str, shard: int) -> Path:
        directory = self._collection_dir(name)
        check_shard(shard)
        return directory / "shards" / str(shard)

    # ---- collection and shard snapshots ------------------------------------------------

    def list_snapshots(self, collection: str, shard: int | None = None) -> list[Description]:
        directory = (
            self._collection_dir(collection)
            if shard is None
            else self._shard_dir(collection, shard)
        )
        return _list(directory)

    def create(self, collection: str, shard: int | None = None) -> Description:
        directory = (
            self._collection_dir(collection)
            if shard is None
            else self._shard_dir(collection, shard)
        )
        source = self.toc.get(collection)
        now = datetime.now(UTC)
        if shard is None:
            prefix = f"{source.name}-{self.peer_id}"
        else:
            prefix = f"{source.name}-shard-{shard}"
        tmp = self.tmp_dir() / f"{uuid.uuid4().hex}{SUFFIX}"
        try:
            with self.activity.creating(source.name):
                kind = "collection" if shard is None else "shard"
                _, digest = pack_collection(source, tmp, kind)
                return self._publish(tmp, directory, prefix, now, digest)
        finally:
            tmp.unlink(missing_ok=True)

    def path(self, collection: str, name: str, shard: int | None = None) -> Path:
        directory = (
            self._collection_dir(collection)
            if shard is None
            else self._shard_dir(collection, shard)
        )
        return _snapshot_file(directory, name, f"Not found: Snapshot {name} not found")

    def delete(self, collection: str, name: str, shard: int | None = None) -> bool:
        _remove(self.path(collection, name, shard))
        return True

    # ---- full snapshots ----------------------------------------------------------------

    def list_full(self) -> list[Description]:
        return _list(self.root)

    def full_path(self, name: str) -> Path:
        return _snapshot_file(self.root, name, f"Not found: Snapshot {name}")

    def delete_full(self, name: str) -> bool:
        _remove(self.full_path(name))
        return True

    def create_full(self) -> Description:
        """Every collection's snapshot and Qdrant's `config.json` in one tar."""
        now = datetime.now(UTC)
        work = self.tmp_dir() / uuid.uuid4().hex
        mkdir_durable(work)
        try:
            mapping: dict[str, str] = {}
            checksums: dict[str, str] = {}
            inner: list[tuple[str, Path, int]] = []
            for name in sorted(self.toc.names()):
                collection = self.toc.collections.get(name)
                if collection is None:
                    continue  # dropped meanwhile
                member = f"{name}-{self.peer_id}-{_timestamp(now)}{SUFFIX}"
                path = work / uuid.uuid4().hex
                size, digest = pack_collection(collection, path, "collection")
                mapping[name] = member
                checksums[member] = digest
                inner.append((member, path, size))
            config = {
                "collections_mapping": mapping,
                "collections_aliases": dict(self.toc.aliases.items()),
                "checksums": checksums,
            }
            tmp = work / f"full{SUFFIX}"
            result: dict[str, Any] = {}

            def write(f: BinaryIO) -> None:
                archive = ArchiveWriter(f, int(now.timestamp()))
                for member, path, size in inner:
                    archive.add_file(member, path, size)
                archive.add_bytes(
                    FULL_CONFIG_MEMBER, orjson.dumps(config, option=orjson.OPT_INDENT_2)
                )
                result["size"], result["sha256"] = archive.close()

            write_file_synced(tmp, write)
            return self._publish(tmp, self.root, FULL_PREFIX, now, result["sha256"])
        finally:
            rmtree_durable(work)

    def recover_full(self, archive: Path, force: bool = False) -> list[str]:
        """Restore every collection of a full snapshot (Qdrant does this at start-up,
        `--storage-snapshot`), aliases included; an existing collection or alias is replaced
        only with `force` (`--force-snapshot`), else 409 before anything changes. Each
        collection is replaced atomically; the restore as a whole is not (as in Qdrant)."""
        work = self.tmp_dir() / uuid.uuid4().hex
        mkdir_durable(work)
        try:
            with open(archive, "rb") as f:
                members = extract(f, work, _full_member, self.reserve())
            config_member = members.get(FULL_CONFIG_MEMBER)
            if config_member is None:
                raise invalid("a full snapshot without config.json")
            if config_member.size > MAX_FULL_CONFIG_BYTES:
                raise invalid("an oversized config.json")
            try:
                config = orjson.loads((work / FULL_CONFIG_MEMBER).read_bytes())
                mapping = config["collections_mapping"]
                checksums = config.get("checksums") or {}
                aliases = config.get("collections_aliases") or {}
                if not all(isinstance(x, dict) for x in (mapping, checksums, aliases)):
                    raise TypeError("not an object")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise invalid(f"a malformed config.json ({exc})") from None
            from tessera.storage.toc import validate_collection_name

            for name, member in mapping.items():
                validate_collection_name(name)
                if not isinstance(member, str) or member not in members:
                    raise invalid(f"collection {name!r} has no snapshot in the archive")
                expected = checksums.get(member)
                if expected is not None and not hashes_equal(members[member].sha256, expected):
                    raise invalid(f"member {member!r} does not match its SHA-256")
            for alias, target in aliases.items():
                validate_collection_name(alias)
                if not isinstance(target, str) or target not in mapping or alias in mapping:
                    raise invalid(f"alias {alias!r} does not name a collection of the archive")
            # Checked before anything is restored, so that a refusal leaves nothing half done:
            # an alias of the archive may not take an existing collection's name, force or not
            # (the collection would not be replaced by it), nor a collection an alias's.
            taken = sorted(a for a in aliases if a in self.toc.collections)
            taken += sorted(n for n in mapping if n in self.toc.aliases)
            if taken:
                raise Conflict(
                    f"Wrong input: Names already taken by a collection or an alias: "
                    f"{', '.join(taken)}"
                )
            if not force:
                clash = sorted(n for n in mapping if n in self.toc.collections)
                clash += sorted(a for a in aliases if a in self.toc.aliases)
                if clash:
                    raise Conflict(
                        f"Wrong input: Collections or aliases already exist: {', '.join(clash)} "
                        "(restore with force to replace them)"
                    )
            for name, member in mapping.items():
                self._restore(name, work / member, keep_config=False)
            self.toc.restore_aliases(aliases, force)
            return sorted(mapping)
        finally:
            rmtree_durable(work)

    # ---- recovery ----------------------------------------------------------------------

    def recover(
        self,
        collection: str,
        location: str,
        *,
        priority: str | None = None,
        checksum: str | None = None,
        api_key: str | None = None,
        shard: int | None = None,
    ) -> bool:
        """`PUT .../snapshots/recover`: from an http(s) URL or a file:// URL inside the
        snapshots directory (for a shard, also a snapshot name of that shard)."""
        from tessera.storage.toc import validate_collection_name

        validate_collection_name(collection)
        check_priority(priority)
        check_checksum(checksum)
        collection = self._aliased(collection)
        if shard is not None:
            self._shard_dir(collection, shard)
        with self.activity.recovering(collection):
            return self._recover(collection, location, checksum, api_key, shard)

    def _aliased(self, name: str) -> str:
        """The collection an alias names, else `name`: a snapshot recovered "into" an alias
        goes to its collection, as Qdrant resolves the name (a collection of the alias's
        name would hide the alias, and replace it at the next start)."""
        if name in self.toc.collections:
            return name
        return self.toc.aliases.resolve(name) or name

    def _recover(
        self,
        collection: str,
        location: str,
        checksum: str | None,
        api_key: str | None,
        shard: int | None,
    ) -> bool:
        scheme = urllib.parse.urlsplit(location).scheme.lower() if "://" in location else ""
        downloaded = None
        if scheme in ("http", "https"):
            downloaded = self._download(location, api_key)
            archive = downloaded
        elif scheme == "file":
            archive = self._local_file(location)
        elif shard is not None and not scheme:
            archive = self.path(collection, location, shard)
        else:
            raise BadRequest(
                f"Bad request: URL {_shown(location)} with scheme {scheme or '(none)'} is not "
                "supported"
            )
        try:
            if checksum is not None:
                actual = sha256_file(archive)
                if not hashes_equal(actual, checksum):
                    raise BadRequest(
                        f"Wrong input: Snapshot checksum mismatch: expected {checksum}, got "
                        f"{actual}"
                    )
            self._restore(collection, archive, keep_config=True, must_exist=shard is not None)
        finally:
            if downloaded is not None:
                downloaded.unlink(missing_ok=True)
        return True

    def recover_uploaded(
        self,
        collection: str,
        upload: Path,
        *,
        priority: str | None = None,
        checksum: str | None = None,
        shard: int | None = None,
    ) -> bool:
        """`POST .../snapshots/upload`: `upload` is the uploaded file (under tmp_dir), removed
        afterwards whatever happens."""
        try:
            from tessera.storage.toc import validate_collection_name

            validate_collection_name(collection)
            check_priority(priority)
            check_checksum(checksum)
            collection = self._aliased(collection)
            if shard is not None:
                self._shard_dir(collection, shard)
            with self.activity.recovering(collection):
                if checksum is not None:
                    actual = sha256_file(upload)
                    if not hashes_equal(actual, checksum):
                        raise BadRequest(f"Checksum mismatch: expected {actual}, actual {checksum}")
                self._restore(collection, upload, keep_config=True, must_exist=shard is not None)
        finally:
            upload.unlink(missing_ok=True)
        return True

    def restore_file(self, collection: str, archive: Path) -> Collection:
        """Restore `collection` from a snapshot file anywhere, replacing it whole (config
        too): for the command line (Qdrant's `--snapshot <path>:<collection>`), an
        operator's action. The API reads only inside the snapshots directory."""
        from tessera.storage.toc import validate_collection_name

        validate_collection_name(collection)
        return self._restore(collection, archive, keep_config=False)

    def _restore_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._restoring.setdefault(name, threading.Lock())

    def _restore(
        self, name: str, archive: Path, *, keep_config: bool, must_exist: bool = False
    ) -> Collection:
        with self._restore_lock(name):
            existing = self.toc.collections.get(name)
            if must_exist and existing is None:
                raise collection_not_found(name)
            staging = swap.staging_dir(self.toc.root)
            mkdir_durable(staging)
            try:
                try:
                    with open(archive, "rb") as f:
                        members = extract(f, staging, _collection_member, self.reserve())
                    config = validate_extracted(staging, members)
                    make_durable(staging, members)
                    if keep_config and existing is not None and existing.failure is None:
                        check_compatible(existing.config, config)
                        write_config(staging, existing.config)
                    trial_load(name, staging)
                except (FormatError, KeyError, TypeError, ValueError) as exc:
                    raise invalid(_relative(str(exc), staging)) from None
                except BadRequest as exc:
                    exc.message = _relative(exc.message, staging)
                    raise
                return self.toc.install(name, staging)
            except BaseException:
                if staging.exists():
                    rmtree_durable(staging)
                raise

    # ---- sources -----------------------------------------------------------------------

    def _local_file(self, location: str) -> Path:
        """A file:// URL, as Qdrant resolves it: absolute or on localhost, existing, and
        inside the snapshots directory once every link is resolved."""
        parts = urllib.parse.urlsplit(location)
        path = urllib.parse.unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise BadRequest(
                "Bad request: Invalid snapshot URI, file path must be absolute or on localhost"
            )
        if not os.path.exists(path):
            raise BadRequest(f"Bad request: Snapshot file {_quoted(path)} does not exist")
        mkdir_durable(self.root)
        real = Path(os.path.realpath(path))
        root = Path(os.path.realpath(self.root))
        if not real.is_relative_to(root) or real == root:
            raise Forbidden(
                "Forbidden: Snapshot file path must be inside the snapshots directory "
                f"{_quoted(str(root))}"
            )
        if not real.is_file():
            raise BadRequest(f"Bad request: Snapshot file {_quoted(path)} is not a file")
        return real

    def _download(self, url: str, api_key: str | None) -> Path:
        headers = {"api-key": api_key} if api_key else {}
        parts = urllib.parse.urlsplit(url)
        if parts.username is not None or parts.password is not None:
            # Credentials in the URL are basic auth (Qdrant's HTTP client takes them so);
            # urllib would read `user:password@host` as the host name.
            user = urllib.parse.unquote(parts.username or "")
            password = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            netloc = parts.netloc.rpartition("@")[2]
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        else:
            token = None
        request = urllib.request.Request(url, headers=headers)
        if token is not None:
            # Not sent on to where a redirect leads.
            request.add_unredirected_header("Authorization", f"Basic {token}")
        opener = urllib.request.build_opener(_HttpOnly)
        dest = self.tmp_dir() / f"{uuid.uuid4().hex}.download"
        reserve = self.reserve()
        try:
            with opener.open(request, timeout=DOWNLOAD_TIMEOUT_S) as response:

                def write(f: BinaryIO) -> None:
                    since = 0
                    while data := response.read(CHUNK):
                        f.write(data)
                        since += len(data)
                        if since >= 64 << 20:
                            _check_free(dest.parent, reserve)
                            since = 0

                _check_free(dest.parent, reserve)
                write_file_synced(dest, write)
        except urllib.error.HTTPError as exc:
            dest.unlink(missing_ok=True)
            # Qdrant's bad input, with the status as its HTTP client shows one (the code's
            # standard phrase, not the server's own)
            raise bad_input(
                f"Failed to download snapshot from {_shown(url)}: status - "
                f"{exc.code} {_phrase(exc.code)}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            dest.unlink(missing_ok=True)
            reason = getattr(exc, "reason", exc)
            raise BadRequest(
                f"Bad request: Failed to download snapshot from {_shown(url)}: {reason}"
            ) from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest

    # ---- naming ------------------------------------------------------------------------

    def _publish(
        self, tmp: Path, directory: Path, prefix: str, when: datetime, digest: str
    ) -> Description:
        """Move a finished archive into place under a free name, its checksum file first
        (so a listed snapshot always has one)."""
        mkdir_durable(directory)
        with self._lock:
            while True:
                name = f"{prefix}-{_timestamp(when)}{SUFFIX}"
                path = directory / name
                checksum = directory / (name + CHECKSUM_SUFFIX)
                if not path.exists() and not checksum.exists():
                    break
                when += timedelta(seconds=1)
            # `creation_time` (the file's time) says what the name says, even when the name
            # moved on a second past another snapshot of the same second
            stamp = when.timestamp()
            os.utime(tmp, (stamp, stamp))
            write_durable(checksum, digest.encode())
            rename_durable(tmp, path)
        return describe(path)


# ---- packing -------------------------------------------------------------------------------


def pack_collection(collection: Collection, dest: Path, scope: str) -> tuple[int, str]:
    """Write the snapshot archive of `collection` to the new file `dest`, fsynced: (size,
    SHA-256). The checkpoint is forced and pinned for the duration; writes go on. A
    collection sharded over peers is gathered first (every shard's points, into a
    standalone copy next to `dest`): its snapshot holds the whole collection."""
    if isinstance(collection, ClusterCollection):
        work = dest.parent / f".gather-{uuid.uuid4().hex}"
        gathered = collection.gathered(work)
        try:
            return pack_collection(gathered, dest, scope)
        finally:
            gathered.close(flush=False)
            shutil.rmtree(work, ignore_errors=True)
    shard = collection.shard
    try:
        gen, manifest = shard.pin_checkpoint()
    except ShardClosed:  # deleted while the snapshot began
        raise collection_not_found(collection.name) from None
    try:
        config = encode_checked_json(CONFIG_KIND, CONFIG_VERSION, collection.stored_config())
        manifest_bytes = (shard.path / manifest_name(gen)).read_bytes()
        now = datetime.now(UTC)
        result: dict[str, Any] = {}

        def write(f: BinaryIO) -> None:
            archive = ArchiveWriter(f, int(now.timestamp()))
            for entry in manifest["segments"]:
                seg_id = entry["id"]
                for files in entry["files"].values():
                    for file in files:
                        archive.add_file(
                            f"shard/segments/{seg_id}/{file['name']}",
                            shard.path / "segments" / seg_id / file["name"],
                            int(file["size"]),
                            int(file["crc32"]),
                        )
            archive.add_bytes(CONFIG_MEMBER, config)
            archive.add_bytes(f"shard/{manifest_name(gen)}", manifest_bytes)
            body = {
                "collection": collection.name,
                "scope": scope,
                "created": now.isoformat(),
                "tessera_version": __version__,
                "gen": gen,
                "seq": int(manifest["seq"]),
                "files": [m.to_json() for m in archive.members],
            }
            archive.add_bytes(
                MANIFEST_MEMBER, encode_checked_json(SNAPSHOT_KIND, SNAPSHOT_VERSION, body)
            )
            result["size"], result["sha256"] = archive.close()

        write_file_synced(dest, write)
        return result["size"], result["sha256"]
    except FileNotFoundError:
        if shard.dropped:  # deleted while its files were read: no snapshot of it
            raise collection_not_found(collection.name) from None
        raise
    finally:
        try:
            shard.unpin_checkpoint(gen)
        except Exception:  # the collection was closed meanwhile (dropped or replaced)
            log.debug("unpinning checkpoint %d of %s failed", gen, collection.name, exc_info=True)


# ---- validation ----------------------------------------------------------------------------


def validate_extracted(staging: Path, members: dict[str, Member]) -> CollectionConfig:
    """Everything an unpacked snapshot claims, checked; its collection config. The shard's
    log is made to start after the checkpoint's operation."""
    if CONFIG_MEMBER not in members or MANIFEST_MEMBER not in members:
        raise invalid("the archive does not contain a collection config")
    body = read_checked_json(staging / MANIFEST_MEMBER, SNAPSHOT_KIND, (SNAPSHOT_VERSION,))
    if not isinstance(body, dict) or not isinstance(body.get("files"), list):
        raise invalid("snapshot.json is not a snapshot manifest")
    same_members(body["files"], members)
    gen = int(body["gen"])
    shard_dir = staging / "shard"
    found = manifest_generations(shard_dir) if shard_dir.is_dir() else []
    if found != [gen]:
        raise invalid(f"the archive holds checkpoint generations {found}, not [{gen}]")
    config = read_config(staging)
    manifest = read_manifest(shard_dir / manifest_name(gen))
    if int(manifest["seq"]) != int(body["seq"]):
        raise invalid("snapshot.json and the shard manifest disagree on the operation")
    named: set[str] = set()
    for entry in manifest["segments"]:
        seg_id = _safe(entry["id"])
        files = entry["files"]
        if not isinstance(files, dict):
            raise invalid("a malformed shard manifest")
        for listed in files.values():
            for file in listed:
                named.add(f"shard/segments/{seg_id}/{_safe(file['name'])}")
        verify_segment_files(shard_dir / "segments" / seg_id, files)
    extra = sorted(m for m in members if m.startswith("shard/segments/") and m not in named)
    if extra:
        raise invalid(f"member {extra[0]!r} is not named by the shard manifest")
    # The shard's log starts after the checkpoint: it never held what the checkpoint holds.
    start_log_at(wal_dir(shard_dir), int(manifest["seq"]) + 1)
    return config


def check_compatible(existing: CollectionConfig, snapshot: CollectionConfig) -> None:
    """Qdrant's checks before recovering into an existing collection, in its order."""
    ours = existing.to_json()["params"]
    theirs = snapshot.to_json()["params"]
    _same(ours.get("vectors"), theirs.get("vectors"), "vectors")
    mine, other = ours.get("shard_number", 1), theirs.get("shard_number", 1)
    if mine != other:
        raise _incompatible(f"Collection shard number: {mine} Snapshot shard number: {other}")
    _same(ours.get("sparse_vectors"), theirs.get("sparse_vectors"), "sparse vectors")


def _same(mine: Any, other: Any, label: str) -> None:
    if mine != other:
        raise _incompatible(
            f"Collection {label}: {orjson.dumps(mine).decode()} Snapshot {label.capitalize()}: "
            f"{orjson.dumps(other).decode()}"
        )


def _incompatible(difference: str) -> BadRequest:
    return BadRequest(
        f"Wrong input: Snapshot is not compatible with existing collection: {difference}"
    )


def trial_load(name: str, staging: Path) -> None:
    """Load the unpacked collection once where it lies: what will not load is refused."""
    trial = Collection(name, staging, None)
    try:
        problems = trial.damage
    finally:
        trial.close(flush=False)
    if problems:
        raise invalid("the collection in it does not load: " + "; ".join(problems))


def check_shard(shard: int) -> None:
    if shard != LOCAL_SHARD:
        raise NotFound(f"Not found: shard {shard} not found")


# ---- files ---------------------------------------------------------------------------------


def _list(directory: Path) -> list[Description]:
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        if entry.name.endswith(SUFFIX) and entry.is_file(follow_symlinks=False):
            try:
                found.append(describe(Path(entry.path)))
            except FileNotFoundError:
                continue  # deleted meanwhile
    return sorted(found, key=lambda d: (d["creation_time"], d["name"]))


def _snapshot_file(directory: Path, name: str, missing: str) -> Path:
    """A snapshot by name: a plain `*.snapshot` file name of this directory, a regular file
    (never a link, never a path elsewhere)."""
    if (
        not name.endswith(SUFFIX)
        or name.startswith(".")
        or Path(name).name != name
        or "\x00" in name
    ):
        raise NotFound(missing)
    path = directory / name
    try:
        st = path.lstat()
    except OSError:
        raise NotFound(missing) from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(missing)
    return path


def _remove(path: Path) -> None:
    remove_durable(path.parent / (path.name + CHECKSUM_SUFFIX))
    remove_durable(path)


def _check_free(directory: Path, reserve: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < reserve:
        raise ServiceUnavailable(
            f"Service unavailable: No space left on device: {free} bytes free, {reserve} kept"
        )


def _quoted(text: str) -> str:
    """A path as Rust's `{:?}` prints it, which Qdrant's messages use."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _relative(message: str, staging: Path) -> str:
    """Messages never show where the server unpacks (nor the storage path)."""
    return message.replace(f"{staging}/", "").replace(str(staging), "<snapshot>")


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "<unknown status code>"
