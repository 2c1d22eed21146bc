"""Stored float32 values rendered as Qdrant renders them.

Qdrant keeps vector components and scores as `f32` and serde writes each as the shortest
decimal that reads back as the same f32 (0.15 stays "0.15"). The collection hands vectors
over as Python floats (f64), which would print widened ("0.15000000596046448"); here they
become float32 numpy arrays again, which orjson (OPT_SERIALIZE_NUMPY) writes with that
same shortest-f32 repr, one C pass per vector rather than a Python step per float.
"""

from __future__ import annotations

from typing import Any

import numpy as np

F32 = np.float32


def f32_vector(vector: Any) -> Any:
    """A point's rendered `vector` (None, a dense or multi list, a sparse {indices, values},
    or a map of those by name) with every float component as float32."""
    if vector is None:
        return None
    if isinstance(vector, list):
        return np.asarray(vector, dtype=F32) if vector else vector
    if isinstance(vector, dict):
        if "indices" in vector and "values" in vector and not _named(vector):
            return {"indices": vector["indices"], "values": np.asarray(vector["values"], F32)}
        return {name: f32_vector(value) for name, value in vector.items()}
    return vector


def _named(vector: dict[str, Any]) -> bool:
    """A map of vectors by name (names may be anything, "indices" too) rather than one
    sparse vector: a sparse vector's `indices` is a list of integers."""
    return not isinstance(vector["indices"], list) or isinstance(vector["values"], dict)


def f32_scores(scores: list[float] | None) -> list[Any] | None:
    """Scores as float32 scalars (orjson writes their shortest f32 repr; a score that is not
    finite, as serde writes it, becomes null)."""
    if scores is None:
        return None
    return list(np.asarray(scores, dtype=F32))
