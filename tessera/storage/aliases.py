"""Collection aliases: other names for collections, kept in one checked-JSON file.

`<storage>/aliases.json` (tessera.fileformat's checked JSON, kind `aliases`, version 1) holds
`{"aliases": {<alias>: <collection>}}`; every change rewrites it whole, atomically and durably
(`write_checked_json`), so a power cut leaves the old table or the new one, then writes the same
table to its mirror, `aliases.mirror.json`, before the change is acknowledged. The table spans
every collection, so damage to one file must not lose it: a damaged file is moved aside and
the other one read (a crash between the two writes leaves the mirror one change behind, a
change not yet acknowledged). A list of actions (Qdrant's `POST /collections/aliases`) is
applied to a copy and written once: all of it or none.

Errors are Qdrant's: an alias for a missing collection is `Not found: Collection ... doesn't
exist!`, an alias named like a collection `Collection ... already exists!` (409), renaming a
missing alias `Alias ... does not exists!`; deleting a missing alias is no error. Qdrant renames
an alias onto a collection's name unchecked; here that is refused like a create (409), so an
alias and a collection never share a name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tessera.errors import Conflict, NotFound, collection_exists, collection_not_found
from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.fsutil import free_name, rename_durable

log = logging.getLogger(__name__)

KIND = "aliases"
VERSION = 1
FILE_NAME = "aliases.json"
MIRROR_NAME = "aliases.mirror.json"


@dataclass(frozen=True)
class CreateAlias:
    collection_name: str
    alias_name: str


@dataclass(frozen=True)
class RenameAlias:
    old_alias_name: str
    new_alias_name: str


@dataclass(frozen=True)
class DeleteAlias:
    alias_name: str


AliasAction = CreateAlias | RenameAlias | DeleteAlias


def alias_not_found(alias: str) -> NotFound:
    return NotFound(f"Not found: Alias {alias} does not exists!")


def planned_aliases(
    table: dict[str, str], actions: list[AliasAction], is_collection: Callable[[str], bool]
) -> dict[str, str]:
    """`table` (a copy, changed in place and returned) after `actions` in order, raising
    Qdrant's errors on the first that fails: the caller keeps all or none. Shared by the local
    table and cluster mode, whose table lives in etcd."""
    for action in actions:
        if isinstance(action, CreateAlias):
            if not is_collection(action.collection_name):
                raise collection_not_found(action.collection_name)
            if is_collection(action.alias_name):
                raise collection_exists(action.alias_name)
            table[action.alias_name] = action.collection_name
        elif isinstance(action, RenameAlias):
            target = table.pop(action.old_alias_name, None)
            if target is None:
                raise alias_not_found(action.old_alias_name)
            if is_collection(action.new_alias_name):
                raise collection_exists(action.new_alias_name)
            table[action.new_alias_name] = target
        else:  # "Delete alias if exists": a missing one is no error, as in Qdrant
            table.pop(action.alias_name, None)
    return table


def read_table(path: Path) -> dict[str, str]:
    """The alias -> collection table of an alias file (FormatError when it does not read:
    damaged, or not this format); nothing is changed on disk."""
    body = read_checked_json(path, KIND, (VERSION,))
    table = body.get("aliases") if isinstance(body, dict) else None
    if not isinstance(table, dict):
        raise FormatError(f"{path}: no `aliases` object")
    return {str(a): str(c) for a, c in table.items()}


class AliasTable:
    """The alias table; the caller (TableOfContents) serialises changes under its lock."""

    def __init__(self, storage: Path, collections: Iterable[str]) -> None:
        self.path = storage / FILE_NAME
        self.mirror = storage / MIRROR_NAME
        self._table: dict[str, str] = {}
        table, damaged = self._read(self.path)
        mirrored, mirror_damaged = self._read(self.mirror)
        if table is None and mirrored is not None:
            log.error("alias table %s missing or unreadable: read from %s", self.path, self.mirror)
            table = mirrored
        if table is None:
            if damaged or mirror_damaged:
                log.error("alias table and its mirror unreadable; starting without aliases")
            return
        known = set(collections)
        # An alias of a collection dropped just before a crash (the collection goes
        # first, then its aliases) is dropped here.
        self._table = {str(a): str(c) for a, c in table.items() if c in known and a not in known}
        if damaged or mirrored != table or not self.path.exists():
            # Both files whole and equal again (after damage, a crash between the two
            # writes, or a table from before the mirror existed).
            self._write(self._table)

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, str] | None, bool]:
        """(the table in `path`, whether it was damaged); a damaged file is moved aside byte
        for byte (`<name>.damaged-<time>`), never deleted."""
        if not path.exists():
            return None, False
        try:
            return read_table(path), False
        except FormatError as exc:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = free_name(path.with_name(f"{path.name}.damaged-{stamp}"))
            rename_durable(path, aside)
            log.error("alias table %s unreadable (%s); moved to %s", path, exc, aside)
            return None, True

    def resolve(self, name: str) -> str | None:
        return self._table.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._table.items())

    def of(self, collection: str) -> list[str]:
        return sorted(a for a, c in self._table.items() if c == collection)

    def apply(self, actions: list[AliasAction], is_collection: Callable[[str], bool]) -> None:
        """Apply `actions` in order, all or none; persisted before it returns."""
        self._replace(planned_aliases(dict(self._table), actions, is_collection))

    def restore(
        self, pairs: dict[str, str], force: bool, is_collection: Callable[[str], bool]
    ) -> None:
        """The aliases of a full snapshot: added to the table, all or none. An alias that
        already exists is replaced only with `force` (Qdrant: `--force-snapshot`)."""
        table = dict(self._table)
        for alias, collection in pairs.items():
            if alias in table and table[alias] != collection and not force:
                raise Conflict(
                    f"Wrong input: Alias {alias} already exists (restore with force to "
                    "overwrite it)"
                )
            if not is_collection(collection):
                raise collection_not_found(collection)
            if is_collection(alias):
                raise collection_exists(alias)
            table[alias] = collection
        self._replace(table)

    def drop_collection(self, collection: str) -> None:
        table = {a: c for a, c in self._table.items() if c != collection}
        if len(table) != len(self._table):
            self._replace(table)

    def _replace(self, table: dict[str, str]) -> None:
        if table == self._table:
            return
        self._write(table)

    def _write(self, table: dict[str, str]) -> None:
        """The primary file is the commit point: once it is written the table is `table`
        (a start-up reads it), so memory follows before the mirror is written; a failure of
        the mirror still answers an error, and the next start makes the two equal again."""
        write_checked_json(self.path, KIND, VERSION, {"aliases": table})
        self._table = table
        write_checked_json(self.mirror, KIND, VERSION, {"aliases": table})
