"""Replacing a collection directory atomically: the old collection or the new one, never a mix.

POSIX has no durable "exchange two directories", so the swap is journaled in the collections
directory (`<storage>/collections`), next to the directories it moves:

1. the new collection is complete and durable in `:restoring-<id>` (nothing refers to it: a
   crash now leaves the old collection, and start-up removes the staging directory);
2. `:swap-<id>.json` (checked JSON of kind JOURNAL_KIND) is written durably: `{"name",
   "staging", "aside"}`. From here on the new collection wins;
3. `<name>` (if any) is renamed to `aside` (`:deleting-<id>`), `staging` to `<name>`;
4. the journal is removed, then the old tree.

At start-up, before anything is loaded, `roll_forward` completes every journal it finds: if
the staging directory still exists, the swap had not finished, so `<name>` (the old one, if
present) is moved aside and the staging directory renamed in. An unreadable journal (damage)
does not say which directories are whose: they are all moved to `<storage>/damaged/`, not
removed. Every other entry starting with `:` is then removed by the table of contents as
before. Each step is idempotent, so a crash
during roll-forward is completed by the next start.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from tessera.fileformat import FormatError, read_checked_json, write_checked_json
from tessera.fsutil import TMP_SUFFIX, mkdir_durable, remove_durable, rename_durable

log = logging.getLogger(__name__)

JOURNAL_KIND = "tessera/collection-swap"
JOURNAL_VERSION = 1
JOURNAL_PREFIX = ":swap-"
STAGING_PREFIX = ":restoring-"
ASIDE_PREFIX = ":deleting-"


def staging_dir(root: Path) -> Path:
    return root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"


def begin(root: Path, name: str, staging: Path) -> tuple[Path, Path]:
    """Step 2: the durable decision to replace `name` with `staging`. Returns (journal,
    aside)."""
    key = uuid.uuid4().hex
    aside = root / f"{ASIDE_PREFIX}{key}"
    journal = root / f"{JOURNAL_PREFIX}{key}.json"
    write_checked_json(
        journal,
        JOURNAL_KIND,
        JOURNAL_VERSION,
        {"name": name, "staging": staging.name, "aside": aside.name},
    )
    return journal, aside


def complete(root: Path, name: str, staging: Path, aside: Path) -> None:
    """Step 3, idempotent."""
    final = root / name
    if not staging.exists():
        return  # already renamed in
    if final.exists():
        rename_durable(final, aside)
    rename_durable(staging, final)


def finish(journal: Path) -> None:
    """Step 4's first half: the journal goes, the caller removes `aside`."""
    remove_durable(journal)


def _plain(name: object, prefix: str = "") -> str:
    if not isinstance(name, str) or not name.startswith(prefix) or "/" in name or "\x00" in name:
        raise FormatError(f"not a directory name: {name!r}")
    if name in ("", ".", ".."):
        raise FormatError(f"not a directory name: {name!r}")
    return name


def roll_forward(root: Path) -> None:
    """Complete every swap a crash interrupted (see the module docstring)."""
    unreadable: list[Path] = []
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(JOURNAL_PREFIX):
            continue
        if entry.name.endswith(TMP_SUFFIX):
            remove_durable(entry)  # never became a journal: the swap never began
            continue
        try:
            body = read_checked_json(entry, JOURNAL_KIND, (JOURNAL_VERSION,))
            name = _plain(body["name"])
            staging = root / _plain(body["staging"], STAGING_PREFIX)
            aside = root / _plain(body["aside"], ASIDE_PREFIX)
        except (FormatError, KeyError, TypeError) as exc:
            # Written atomically, so this is damage: which directories it moves is unknown.
            log.error("unreadable collection swap journal %s: %s", entry, exc)
            unreadable.append(entry)
            continue
        log.warning("completing the interrupted replacement of collection %s", name)
        complete(root, name, staging, aside)
        finish(entry)
    if unreadable:
        _set_aside(root, unreadable)


def _set_aside(root: Path, journals: list[Path]) -> None:
    """A damaged journal may name the old collection (moved to `:deleting-`) and the new one
    (`:restoring-`): start-up would remove both. Every such directory is moved, with the
    journals, to `<storage>/damaged/swap-<time>/`, never deleted, for the operator to put
    back (the collection is missing until then)."""
    target = (
        root.parent / "damaged" / f"swap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    )
    mkdir_durable(target)
    moved = [
        *journals,
        *(e for e in sorted(root.iterdir()) if e.name.startswith((STAGING_PREFIX, ASIDE_PREFIX))),
    ]
    for entry in moved:
        rename_durable(entry, target / entry.name)
    log.error(
        "collection swap journals unreadable: %s moved to %s; a collection being replaced "
        "when the server stopped is missing until one of them is moved back",
        ", ".join(e.name for e in moved),
        target,
    )
