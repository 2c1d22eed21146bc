"""`with_payload`'s include / exclude paths applied to a payload, as Qdrant applies them.

The paths of a selector merge into one prefix tree (`a.b`, `c[]`, `d[0]` -> {"a": {"b":
ALL}, "c": {EVERY: ALL}, "d": {0: ALL}}), where ALL selects the whole value below. Walking a
payload with it: in an object, a key is kept (include) or dropped (exclude) by the tree;
in an array only `[]` applies, to every element, and an element's path by index (`d[0]`)
selects nothing (an included array keeps no element, an excluded one loses none), as in
Qdrant's payload selection; a value that is neither object nor array is kept whole. Values
not on any path are shared with the stored payload, never copied (a payload is replaced on
write, never changed in place).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tessera.shard.payload_ops import parse_key_path

# A tree node: what is below a key. ALL: the whole value; EVERY: the key of `[]`.
ALL: Any = True
EVERY = None
Tree = dict[Any, Any]


def selector_tree(paths: Iterable[str]) -> Tree:
    """The prefix tree of `paths`. 400 for a path that is none (`a[`)."""
    tree: Tree = {}
    for path in paths:
        steps: list[Any] = []
        for name, brackets in parse_key_path(path):
            steps.append(name)
            steps.extend(brackets)  # an int index, or None (EVERY) for `[]`
        *parents, last = steps
        node: Any = tree
        for step in parents:
            node = node.setdefault(step, {})
            if node is ALL:  # a shorter path already takes everything below
                break
        else:
            node[last] = ALL
    return tree


def include(value: Any, tree: Tree) -> Any:
    return _walk(value, tree, True)


def exclude(value: Any, tree: Tree) -> Any:
    return _walk(value, tree, False)


def _walk(value: Any, tree: Tree, including: bool) -> Any:
    """`value` with what `tree` names kept (`including`) or dropped (else)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            below = tree.get(key)
            if below is None:  # not named: dropped by an include, kept by an exclude
                if not including:
                    out[key] = item
            elif below is ALL:
                if including:
                    out[key] = item
            else:
                out[key] = _walk(item, below, including)
        return out
    if isinstance(value, list):
        below = tree.get(EVERY)
        if below is None:  # no `[]` path: no element is named
            return [] if including else value
        if below is ALL:
            return value if including else []
        return [_walk(item, below, including) for item in value]
    return value
