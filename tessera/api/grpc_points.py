"""The gRPC `Points` service: each RPC is the REST route of the same operation.

Updates parse with `points_parse` (as `points_write` does) and run through
`Collection.update`; reads call the prepare functions of `points_read`, `query_routes`,
`query_legacy` and `facet`, which answer the collection's plain values. Request bodies come
from `grpc_updates` and `grpc_query` (protobuf -> the REST body the shared parsers read);
answers are rendered from the plain values by `grpc_render`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qdrant_client import grpc as pb

from tessera.api import collections as coll
from tessera.api import facet as facets
from tessera.api import grpc_convert as cv
from tessera.api import grpc_legacy as legacy
from tessera.api import grpc_plan
from tessera.api import grpc_reads as decode
from tessera.api import grpc_render as out
from tessera.api import grpc_updates as up
from tessera.api import points_parse as parse
from tessera.api import points_read as reads
from tessera.api import points_write as writes
from tessera.api import query_routes as queries
from tessera.api.grpc_render import build
from tessera.api.grpc_server import rpc
from tessera.collection.collection import Collection
from tessera.collection_config import CollectionConfig
from tessera.ids import render_point_id
from tessera.storage.toc import TableOfContents

Operation = pb.PointsOperationResponse


class PointsService(pb.PointsServicer):
    def __init__(self, toc: TableOfContents) -> None:
        self.toc = toc

    def _get(self, request: Any) -> Collection:
        collection = self.toc.get(request.collection_name)
        selector = cv.opt_shard_selector(request)
        return collection if selector is None else collection.with_shards(selector)

    def _update(
        self, request: Any, prepare: Callable[[CollectionConfig], parse.Prepare]
    ) -> Operation:
        collection = self._get(request)
        prepared = prepare(collection.config)
        result = collection.update(prepared, bool(request.wait)).to_json()
        return build(Operation, result=out.update_result(result))

    def _finish(self, request: Any, run: Callable[[], dict[str, Any]]) -> Operation:
        return build(Operation, result=out.update_result(run()))

    # ------------------------------------------------------------------- updates

    @rpc
    def Upsert(self, request: pb.UpsertPoints) -> Operation:
        body = up.upsert(request)
        return self._update(request, lambda config: parse.parse_upsert(config, body))

    @rpc
    def Delete(self, request: pb.DeletePoints) -> Operation:
        body = cv.opt_selector(request, "points")
        return self._update(request, lambda config: parse.parse_delete(body))

    @rpc
    def SetPayload(self, request: pb.SetPayloadPoints) -> Operation:
        body = up.set_payload(request)
        return self._update(request, lambda config: parse.parse_set_payload(body, False))

    @rpc
    def OverwritePayload(self, request: pb.SetPayloadPoints) -> Operation:
        body = up.set_payload(request)
        return self._update(request, lambda config: parse.parse_set_payload(body, True))

    @rpc
    def DeletePayload(self, request: pb.DeletePayloadPoints) -> Operation:
        body = up.delete_payload(request)
        return self._update(request, lambda config: parse.parse_delete_payload(body))

    @rpc
    def ClearPayload(self, request: pb.ClearPayloadPoints) -> Operation:
        body = cv.opt_selector(request, "points")
        return self._update(request, lambda config: parse.parse_clear_payload(body))

    @rpc
    def UpdateVectors(self, request: pb.UpdatePointVectors) -> Operation:
        body = up.update_vectors(request)
        return self._update(request, lambda config: parse.parse_update_vectors(config, body))

    @rpc
    def DeleteVectors(self, request: pb.DeletePointVectors) -> Operation:
        body = up.delete_vectors(request)
        return self._update(request, lambda config: parse.parse_delete_vectors(config, body))

    @rpc
    def UpdateBatch(self, request: pb.UpdateBatchPoints) -> pb.UpdateBatchResponse:
        body = {"operations": [up.operation(op) for op in request.operations]}
        results = writes.prepare_batch(self._get(request), body, bool(request.wait))()
        return build(pb.UpdateBatchResponse, result=[out.update_result(r) for r in results])

    @rpc
    def CreateFieldIndex(self, request: pb.CreateFieldIndexCollection) -> Operation:
        body = up.field_index(request)
        run = coll.prepare_create_index(self.toc, self._get(request), body, bool(request.wait))
        return self._finish(request, run)

    @rpc
    def DeleteFieldIndex(self, request: pb.DeleteFieldIndexCollection) -> Operation:
        collection = self._get(request)
        run = coll.prepare_delete_index(
            self.toc, collection, request.field_name, bool(request.wait)
        )
        return self._finish(request, run)

    @rpc
    def CreateVectorName(self, request: pb.CreateVectorNameRequest) -> Operation:
        from tessera.api.grpc_collections import vector_name_body

        collection = self._get(request)
        body = vector_name_body(request)
        wait = bool(request.wait)
        run = coll.prepare_create_vector_name(self.toc, collection, request.vector_name, body, wait)
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
        prepared = [grpc_plan.query_points(q, collection.config) for q in items]
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

    def _batch(self, request: Any, items: Any, decode: legacy.NodeDecoder) -> Any:
        collection = self._get(request)
        prepared = [legacy.plan(item, collection.config, decode) for item in items]
        selectors = [cv.opt_shard_selector(item) for item in items]
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
        points = self._single(request, legacy.recommend_node)
        return build(pb.RecommendResponse, result=out.scored(points))

    @rpc
    def RecommendBatch(self, request: pb.RecommendBatchPoints) -> pb.RecommendBatchResponse:
        results = self._batch(request, request.recommend_points, legacy.recommend_node)
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
