"""What a query did, when the request asks for it (`"explain": true`, a Tessera extension).

An `Explain` collects one `QueryReport` per query of a request's tree (the root and each
prefetch, with its path there), and per report one `SegmentPlan` per segment searched: the
planner's choice and why, the candidates left after the filter, the `hnsw_ef` walked,
whether quantized codes were walked and rescored, the points scored, and the time of each
stage. The engine records into one only when it is given one: every recording site is
behind an `is not None` check, so a query without explain takes no clock reading and
allocates nothing for it. `to_json` renders the report the REST answer carries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


def now() -> float:
    return time.perf_counter()


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


@dataclass
class SegmentPlan:
    """One segment of one query. `plan`: "graph" (the HNSW walk, the filter inside),
    "exact" (the candidates scored one by one, numpy), "flat" (an exact scan of the graph's
    flat storage in faiss), "graph+exact" (a multivector graph gives candidates, scored
    exactly), or "skipped" (no candidate)."""

    segment: int
    points: int
    indexed: int
    candidates: int
    plan: str = "skipped"
    reason: str = ""
    full_scan_threshold_kb: int | None = None
    full_scan_threshold_points: int | None = None
    hnsw_ef: int | None = None
    quantized: bool = False
    rescored: bool = False
    oversampling: float | None = None
    walked: int | None = None  # results asked of the walk (k): limit, oversampled
    scored: int = 0
    returned: int = 0
    stages: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        """Time since `started` added to `stage`; answers the clock reading it took."""
        t = now()
        self.stages[stage] = self.stages.get(stage, 0.0) + (t - started)
        return t

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "segment": self.segment,
            "points": self.points,
            "indexed": self.indexed,
            "candidates": self.candidates,
            "plan": self.plan,
            "reason": self.reason,
        }
        if self.full_scan_threshold_points is not None:
            out["full_scan_threshold_kb"] = self.full_scan_threshold_kb
            out["full_scan_threshold_points"] = self.full_scan_threshold_points
        if self.hnsw_ef is not None:
            out["hnsw_ef"] = self.hnsw_ef
        out["quantized"] = self.quantized
        out["rescored"] = self.rescored
        if self.oversampling is not None:
            out["oversampling"] = self.oversampling
        if self.walked is not None:
            out["walked"] = self.walked
        out["scored"] = self.scored
        out["returned"] = self.returned
        out["stages_ms"] = {k: ms(v) for k, v in self.stages.items()}
        return out


@dataclass
class QueryReport:
    """One query of the tree: `path` "" for the root, else like `prefetch[0].prefetch[1]`."""

    path: str
    kind: str
    using: str | None = None
    limit: int | None = None
    filtered: bool = False
    exact: bool = False
    hnsw_ef: int | None = None
    segments: list[SegmentPlan] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    results: int = 0
    note: str = ""

    def add(self, stage: str, started: float) -> float:
        t = now()
        self.stages[stage] = self.stages.get(stage, 0.0) + (t - started)
        return t

    def segment(self, number: int, points: int, indexed: int, candidates: int) -> SegmentPlan:
        plan = SegmentPlan(number, points, indexed, candidates)
        self.segments.append(plan)
        return plan

    def to_json(self) -> dict[str, Any]:
        stages: dict[str, float] = {}
        for seg in self.segments:  # the segments' stages, summed, then the query's own
            for stage, seconds in seg.stages.items():
                stages[stage] = stages.get(stage, 0.0) + seconds
        for stage, seconds in self.stages.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
        out: dict[str, Any] = {"path": self.path or "query", "query": self.kind}
        if self.using is not None:
            out["using"] = self.using
        if self.limit is not None:
            out["limit"] = self.limit
        out["filtered"] = self.filtered
        out["exact"] = self.exact
        if self.hnsw_ef is not None:
            out["hnsw_ef"] = self.hnsw_ef
        if self.note:
            out["note"] = self.note
        out["segments"] = [s.to_json() for s in self.segments]
        out["stages_ms"] = {k: ms(v) for k, v in stages.items()}
        out["results"] = self.results
        return out


@dataclass
class Explain:
    """The reports of one request, in the order of its tree (a node before its prefetches);
    `stages` holds the request's own stages (the fetch of payloads and vectors)."""

    queries: list[QueryReport] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=now)

    def query(self, path: str, kind: str) -> QueryReport:
        report = QueryReport(path, kind)
        self.queries.append(report)
        return report

    def add(self, stage: str, started: float) -> float:
        t = now()
        self.stages[stage] = self.stages.get(stage, 0.0) + (t - started)
        return t

    def to_json(self) -> dict[str, Any]:
        return {
            "total_ms": ms(now() - self.started),
            "stages_ms": {k: ms(v) for k, v in self.stages.items()},
            "queries": [q.to_json() for q in self.queries],
        }
