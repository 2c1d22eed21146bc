"""The gRPC `Points` service: each RPC decodes its message straight into the typed request
the REST route of the same operation decodes its JSON into, and runs it the same way.

Updates decode into the collection's writes (`grpc_writes`) and run through
`Collection.update`; reads decode into `collection.requests` values and query plans
(`grpc_reads`, `grpc_plan`, `grpc_legacy`) and run through the `run_*` functions the REST
routes share, which answer the collection's plain values; answers are rendered from those
by `grpc_render`. Payload index schemas and new named vectors decode into the values REST
decodes into (`grpc_config`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from qdrant_client import grpc as pb

from tessera.api import collections as coll
from tessera.api import facet as facets
from tessera.api import grpc_config, grpc_plan
from tessera.api import grpc_convert as cv
from tessera.api import grpc_legacy as legacy
from tessera.api import grpc_reads as decode
from tessera.api import grpc_render as out
from tessera.api import grpc_writes as decode_write
from tessera.api import points_read as reads
from tessera.api import points_write as writes
from tessera.api import query_routes as queries
from tessera.api.grpc_render import build
from tessera.api.grpc_server import rpc
from tessera.api.grpc_validate import nested
from tessera.collection import vector_names
from tessera.collection.collection import Collection
from tessera.collection.values import Points
from tessera.collection.writes import Write
from tessera.collection_config import CollectionConfig, vector_name_problem
from tessera.errors import UnprocessableEntity
from tessera.ids import render_point_id
from tessera.query.payload_path import parse_path
from tessera.storage.toc import TableOfContents

Operation = pb.PointsOperationResponse
# A batch request's repeated field of requests, by message (validation paths name it).
_BATCH_FIELDS = {
    "SearchBatchPoints": "search_points",
    "RecommendBatchPoints": "recommend_points",
    "DiscoverBatchPoints": "discover_points",
}


class PointsService(pb.PointsServicer):
    def __init__(self, toc: TableOfContents) -> None:
        self.toc = toc

    def _get(self, request: Any) -> Collection:
        collection = self.toc.get(request.collection_name)
        selector = cv.opt_shard_selector(request)
        return collection if selector is None else collection.with_shards(selector)

    def _update(self, request: Any, decode: Callable[[CollectionConfig], Write]) -> Operation:
        collection = self.toc.get(request.collection_name)
        write = decode(collection.config)
        target = collection.for_write(cv.opt_shard_selector(request))
        result = target.update(write, bool(request.wait)).to_json()
        return build(Operation, result=out.update_result(result))

    def _finish(self, request: Any, run: Callable[[], dict[str, Any]]) -> Operation:
        return build(Operation, result=out.update_result(run()))

    # ------------------------------------------------------------------- updates

    @rpc
    def Upsert(self, request: pb.UpsertPoints) -> Operation:
        return self._update(request, lambda config: decode_write.upsert(request, config))

    @rpc
    def Delete(self, request: pb.DeletePoints) -> Operation:
        return self._update(request, lambda config: decode_write.delete(request))

    @rpc
    def SetPayload(self, request: pb.SetPayloadPoints) -> Operation:
        return self._update(request, lambda config: decode_write.set_payload(request, False))

    @rpc
    def OverwritePayload(self, request: pb.SetPayloadPoints) -> Operation:
        return self._update(request, lambda config: decode_write.set_payload(request, True))

    @rpc
    def DeletePayload(self, request: pb.DeletePayloadPoints) -> Operation:
        return self._update(request, lambda config: decode_write.delete_payload(request))

    @rpc
    def ClearPayload(self, request: pb.ClearPayloadPoints) -> Operation:
        return self._update(request, lambda config: decode_write.clear_payload(request))

    @rpc
    def UpdateVectors(self, request: pb.UpdatePointVectors) -> Operation:
        return self._update(request, lambda config: decode_write.update_vectors(request, config))

    @rpc
    def DeleteVectors(self, request: pb.DeletePointVectors) -> Operation:
        return self._update(request, lambda config: decode_write.delete_vectors(request, config))

    @rpc
    def UpdateBatch(self, request: pb.UpdateBatchPoints) -> pb.UpdateBatchResponse:
        collection = self.toc.get(request.collection_name)
        batch_selector = cv.opt_shard_selector(request)
        operations = []
        for op in request.operations:
            write, selector = decode_write.operation(op, collection.config)
            operations.append((collection.for_write(selector or batch_selector), [write]))
        results = writes.run_batch(operations, bool(request.wait))()
        return build(pb.UpdateBatchResponse, result=[out.update_result(r) for r in results])

    @rpc
    def CreateFieldIndex(self, request: pb.CreateFieldIndexCollection) -> Operation:
        parse_path(request.field_name)  # Qdrant converts the name before anything else
        schema = grpc_config.field_schema(request)
        run = coll.prepare_create_index(
            self.toc, self._get(request), request.field_name, schema, bool(request.wait)
        )
        return self._finish(request, run)

    @rpc
    def DeleteFieldIndex(self, request: pb.DeleteFieldIndexCollection) -> Operation:
        parse_path(request.field_name)  # Qdrant converts the name before anything else
        collection = self._get(request)
        run = coll.prepare_delete_index(
            self.toc, collection, request.field_name, bool(request.wait)
        )
        return self._finish(request, run)

    @rpc
    def CreateVectorName(self, request: pb.CreateVectorNameRequest) -> Operation:
        problem = vector_name_problem(request.vector_name)
        if problem is not None:
            raise UnprocessableEntity(f"Validation error in body: [vector_name: {problem}]")
        collection = self._get(request)
        config = vector_names.vector_name_config(grpc_config.vector_name(request))
        wait = bool(request.wait)
        run = coll.prepare_create_vector_name(
            self.toc, collection, request.vector_name, config, wait
        )
        return self._finish(request, run)

    @rpc
    def DeleteVectorName(self, request: pb.DeleteVectorNameRequest) -> Operation:
        collection = self._get(request)
        wait = bool(request.wait)
        run = coll.prepare_delete_vector_name(self.toc, collection, request.vector_name, wait)
        return self._finish(request, run)

    # ------------------------------------------------------------------- reads

    @rpc
    def Get(self, request: pb.GetPoints) -> pb.GetResponse:
        points = reads.run_retrieve(self._get(request), decode.retrieve(request))()
        return build(pb.GetResponse, result=out.records(points))

    @rpc
    def Scroll(self, request: pb.ScrollPoints) -> pb.ScrollResponse:
        page = reads.run_scroll(self._get(request), decode.scroll(request))()
        after = page.next_offset
        return build(
            pb.ScrollResponse,
            result=out.records(page.points),
            next_page_offset=None if after is None else out.point_id(render_point_id(after)),
        )

    @rpc
    def Count(self, request: pb.CountPoints) -> pb.CountResponse:
        count = reads.run_count(self._get(request), decode.count(request))()
        return build(pb.CountResponse, result={"count": count})

    @rpc
    def Facet(self, request: pb.FacetCounts) -> pb.FacetResponse:
        hits = facets.run_facet(self._get(request), decode.facet(request))()
        return build(pb.FacetResponse, hits=[out.facet_hit(h) for h in hits])

    @rpc
    def Query(self, request: pb.QueryPoints) -> pb.QueryResponse:
        collection = self._get(request)
        prepared = grpc_plan.query_points(request, collection.config)
        run = queries.run_plans(self.toc, collection, [prepared])
        return build(pb.QueryResponse, result=out.scored(run()[0]))

    @rpc
    def QueryBatch(self, request: pb.QueryBatchPoints) -> pb.QueryBatchResponse:
        collection = self._get(request)
        items = request.query_points
        prepared = [
            nested("query_points", i, lambda q=q: grpc_plan.query_points(q, collection.config))  # type: ignore[misc]
            for i, q in enumerate(items)
        ]
        selectors = [cv.opt_shard_selector(q) for q in items]
        results = queries.run_selected(self.toc, collection, selectors, prepared)()
        return build(pb.QueryBatchResponse, result=out.batch(results))

    @rpc
    def QueryGroups(self, request: pb.QueryPointGroups) -> pb.QueryGroupsResponse:
        collection = self._get(request)
        plan, select, lookup = grpc_plan.query_groups(request, collection.config)
        result = queries.run_groups(self.toc, collection, plan, select, lookup)()
        return build(pb.QueryGroupsResponse, result=out.groups(result))

    @rpc
    def Search(self, request: pb.SearchPoints) -> pb.SearchResponse:
        collection = self._get(request)
        points = reads.run_search(collection, legacy.search(request, collection.config))()
        return build(pb.SearchResponse, result=out.scored(points))

    def _single(self, request: Any, decode: legacy.NodeDecoder) -> Any:
        collection = self._get(request)
        prepared = legacy.plan(request, collection.config, decode)
        return queries.run_plans(self.toc, collection, [prepared])()[0]

    def _batch(
        self,
        request: Any,
        items: Any,
        decode: legacy.NodeDecoder,
        run: Sequence[int] | None = None,
    ) -> Any:
        """The batch's requests run together; `run`: which of them (their positions), by
        default all."""
        collection = self._get(request)
        field = _BATCH_FIELDS[request.DESCRIPTOR.name]
        positions = range(len(items)) if run is None else run
        prepared = [
            nested(field, i, lambda i=i: legacy.plan(items[i], collection.config, decode))  # type: ignore[misc]
            for i in positions
        ]
        selectors = [cv.opt_shard_selector(items[i]) for i in positions]
        return queries.run_selected(self.toc, collection, selectors, prepared)()

    def _groups(self, request: Any, decode: legacy.NodeDecoder) -> Any:
        collection = self._get(request)
        plan, select, lookup = legacy.group_plan(request, collection.config, decode)
        return queries.run_groups(self.toc, collection, plan, select, lookup)()

    @rpc
    def SearchBatch(self, request: pb.SearchBatchPoints) -> pb.SearchBatchResponse:
        results = self._batch(request, request.search_points, legacy.search_node)
        return build(pb.SearchBatchResponse, result=out.batch(results))

    @rpc
    def SearchGroups(self, request: pb.SearchPointGroups) -> pb.SearchGroupsResponse:
        groups = self._groups(request, legacy.search_node)
        return build(pb.SearchGroupsResponse, result=out.groups(groups))

    @rpc
    def Recommend(self, request: pb.RecommendPoints) -> pb.RecommendResponse:
        # Qdrant's gRPC has no rule on a recommendation's limit (REST's is at least 1), and
        # `recommend_by` answers a limit of 0 (an unset one too) with no points.
        if request.limit == 0:
            self._get(request)
            return build(pb.RecommendResponse, result=[])
        points = self._single(request, legacy.recommend_node)
        return build(pb.RecommendResponse, result=out.scored(points))

    @rpc
    def RecommendBatch(self, request: pb.RecommendBatchPoints) -> pb.RecommendBatchResponse:
        items = request.recommend_points
        wanted = [i for i, item in enumerate(items) if item.limit != 0]  # 0: none, as above
        found = iter(self._batch(request, items, legacy.recommend_node, wanted) if wanted else [])
        if not wanted:
            self._get(request)
        results = [next(found) if item.limit != 0 else Points([], scores=[]) for item in items]
        return build(pb.RecommendBatchResponse, result=out.batch(results))

    @rpc
    def RecommendGroups(self, request: pb.RecommendPointGroups) -> pb.RecommendGroupsResponse:
        groups = self._groups(request, legacy.recommend_node)
        return build(pb.RecommendGroupsResponse, result=out.groups(groups))

    @rpc
    def Discover(self, request: pb.DiscoverPoints) -> pb.DiscoverResponse:
        points = self._single(request, legacy.discover_node)
        return build(pb.DiscoverResponse, result=out.scored(points))

    @rpc
    def DiscoverBatch(self, request: pb.DiscoverBatchPoints) -> pb.DiscoverBatchResponse:
        results = self._batch(request, request.discover_points, legacy.discover_node)
        return build(pb.DiscoverBatchResponse, result=out.batch(results))

    def _matrix(self, request: pb.SearchMatrixPoints) -> tuple[list[Any], list[Any]]:
        matrix = queries.run_matrix(self._get(request), decode.distance_matrix(request))()
        return [out.point_id(render_point_id(pid)) for pid in matrix.ids], matrix.rows

    @rpc
    def SearchMatrixPairs(self, request: pb.SearchMatrixPoints) -> pb.SearchMatrixPairsResponse:
        ids, rows = self._matrix(request)
        pairs = [
            {"a": ids[i], "b": ids[j], "score": score}
            for i, row in enumerate(rows)
            for j, score in row
        ]
        return build(pb.SearchMatrixPairsResponse, result={"pairs": pairs})

    @rpc
    def SearchMatrixOffsets(self, request: pb.SearchMatrixPoints) -> pb.SearchMatrixOffsetsResponse:
        ids, rows = self._matrix(request)
        result = {
            "offsets_row": [i for i, row in enumerate(rows) for _ in row],
            "offsets_col": [j for row in rows for j, _ in row],
            "scores": [score for row in rows for _, score in row],
            "ids": ids,
        }
        return build(pb.SearchMatrixOffsetsResponse, result=result)
