package tessera.clients;

import static io.qdrant.client.ConditionFactory.matchKeyword;
import static io.qdrant.client.PointIdFactory.id;
import static io.qdrant.client.QueryFactory.nearest;
import static io.qdrant.client.QueryFactory.nearestMultiVector;
import static io.qdrant.client.ValueFactory.list;
import static io.qdrant.client.ValueFactory.nullValue;
import static io.qdrant.client.ValueFactory.value;
import static io.qdrant.client.VectorFactory.multiVector;
import static io.qdrant.client.VectorFactory.vector;
import static io.qdrant.client.VectorsFactory.namedVectors;
import static io.qdrant.client.VectorsFactory.vectors;
import static io.qdrant.client.WithPayloadSelectorFactory.enable;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.grpc.Status;
import io.qdrant.client.QdrantClient;
import io.qdrant.client.QdrantGrpcClient;
import io.qdrant.client.VectorOutputHelper;
import io.qdrant.client.WithVectorsSelectorFactory;
import io.qdrant.client.grpc.Collections.AliasDescription;
import io.qdrant.client.grpc.Collections.CreateCollection;
import io.qdrant.client.grpc.Collections.Distance;
import io.qdrant.client.grpc.Collections.MultiVectorComparator;
import io.qdrant.client.grpc.Collections.MultiVectorConfig;
import io.qdrant.client.grpc.Collections.PayloadSchemaType;
import io.qdrant.client.grpc.Collections.SparseVectorConfig;
import io.qdrant.client.grpc.Collections.SparseVectorParams;
import io.qdrant.client.grpc.Collections.VectorParams;
import io.qdrant.client.grpc.JsonWithInt.Value;
import io.qdrant.client.grpc.Points.Direction;
import io.qdrant.client.grpc.Common.Filter;
import io.qdrant.client.grpc.Points.MultiDenseVector;
import io.qdrant.client.grpc.Points.NamedVectors;
import io.qdrant.client.grpc.Points.OrderBy;
import io.qdrant.client.grpc.Common.PointId;
import io.qdrant.client.grpc.Points.PointStruct;
import io.qdrant.client.grpc.Points.PointVectors;
import io.qdrant.client.grpc.Points.PointsIdsList;
import io.qdrant.client.grpc.Points.PointsSelector;
import io.qdrant.client.grpc.Points.PointsUpdateOperation;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.ClearPayload;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.DeletePayload;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.DeletePoints;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.DeleteVectors;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.OverwritePayload;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.PointStructList;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.SetPayload;
import io.qdrant.client.grpc.Points.PointsUpdateOperation.UpdateVectors;
import io.qdrant.client.grpc.Points.QueryPoints;
import io.qdrant.client.grpc.Points.RetrievedPoint;
import io.qdrant.client.grpc.Points.ScoredPoint;
import io.qdrant.client.grpc.Points.ScrollPoints;
import io.qdrant.client.grpc.Points.ScrollResponse;
import io.qdrant.client.grpc.Points.SearchPoints;
import io.qdrant.client.grpc.Points.SparseVector;
import io.qdrant.client.grpc.Points.StartFrom;
import io.qdrant.client.grpc.Points.UpdateResult;
import io.qdrant.client.grpc.Points.UpdateStatus;
import io.qdrant.client.grpc.Points.UpsertPoints;
import io.qdrant.client.grpc.Points.VectorOutput;
import io.qdrant.client.grpc.Points.VectorsSelector;
import io.qdrant.client.grpc.SnapshotsService.SnapshotDescription;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ExecutionException;

/**
 * The examples of Qdrant's Points chapter (shared/spec/points.md), written with the official Java
 * client (io.qdrant:client) as the chapter writes them, run against a Tessera server's gRPC port
 * and checked against the answers in clients/expectations.json.
 *
 * <p>Environment: TESSERA_GRPC_HOST (default 127.0.0.1), TESSERA_GRPC_PORT (default 6334),
 * TESSERA_EXPECTATIONS (default ../expectations.json). Prints one line per check and "java: N
 * passed, M failed"; exits 1 when a check failed.
 */
public final class Main {
  interface Check {
    void run() throws Exception;
  }

  static final class Failure extends Exception {
    Failure(String message) {
      super(message);
    }
  }

  static int passed;
  static int failed;
  static double tol;

  static void check(String name, Check check) {
    try {
      check.run();
      passed++;
      System.out.println("ok    " + name);
    } catch (Failure f) {
      failed++;
      System.out.println("FAIL  " + name + ": " + f.getMessage());
    } catch (Exception e) {
      failed++;
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      System.out.println("FAIL  " + name + ": " + cause);
    }
  }

  static void ensure(boolean ok, String message) throws Failure {
    if (!ok) {
      throw new Failure(message);
    }
  }

  // ------------------------------------------------------------------------ JSON helpers

  static JsonObject o(JsonElement j) {
    return j.getAsJsonObject();
  }

  static JsonElement get(JsonElement j, String key) {
    return j.getAsJsonObject().get(key);
  }

  static List<JsonElement> arr(JsonElement j) {
    return j.getAsJsonArray().asList();
  }

  static String str(JsonElement j) {
    return j.getAsString();
  }

  static long num(JsonElement j) {
    return j.getAsLong();
  }

  static boolean isInt(JsonPrimitive p) {
    String s = p.getAsString();
    return p.isNumber() && !(s.contains(".") || s.contains("e") || s.contains("E"));
  }

  static List<Float> floats(JsonElement j) {
    List<Float> out = new ArrayList<>();
    for (JsonElement x : arr(j)) {
      out.add(x.getAsFloat());
    }
    return out;
  }

  static float[] floatArray(JsonElement j) {
    List<Float> l = floats(j);
    float[] out = new float[l.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = l.get(i);
    }
    return out;
  }

  static List<List<Float>> rows(JsonElement j) {
    List<List<Float>> out = new ArrayList<>();
    for (JsonElement r : arr(j)) {
      out.add(floats(r));
    }
    return out;
  }

  static List<Integer> ints(JsonElement j) {
    List<Integer> out = new ArrayList<>();
    for (JsonElement x : arr(j)) {
      out.add(x.getAsInt());
    }
    return out;
  }

  static List<String> strs(JsonElement j) {
    List<String> out = new ArrayList<>();
    for (JsonElement x : arr(j)) {
      out.add(x.getAsString());
    }
    return out;
  }

  /** A point id: numbers (u64, so through BigInteger) with id(long), UUIDs with id(UUID). */
  static PointId pid(JsonElement j) {
    JsonPrimitive p = j.getAsJsonPrimitive();
    if (p.isString()) {
      return id(UUID.fromString(p.getAsString()));
    }
    return id(p.getAsBigInteger().longValue());
  }

  static List<PointId> pids(JsonElement j) {
    List<PointId> out = new ArrayList<>();
    for (JsonElement x : arr(j)) {
      out.add(pid(x));
    }
    return out;
  }

  /** A returned id as the expectations write it: an unsigned number or a UUID string. */
  static String idJson(PointId p) {
    if (p.hasUuid()) {
      return "\"" + p.getUuid() + "\"";
    }
    return Long.toUnsignedString(p.getNum());
  }

  static List<String> wantIds(JsonElement j) {
    List<String> out = new ArrayList<>();
    for (JsonElement x : arr(j)) {
      out.add(x.getAsJsonPrimitive().isString() ? "\"" + x.getAsString() + "\"" : x.getAsString());
    }
    return out;
  }

  static List<String> retrievedIds(List<RetrievedPoint> points) {
    List<String> out = new ArrayList<>();
    for (RetrievedPoint p : points) {
      out.add(idJson(p.getId()));
    }
    return out;
  }

  static List<String> scoredIds(List<ScoredPoint> points) {
    List<String> out = new ArrayList<>();
    for (ScoredPoint p : points) {
      out.add(idJson(p.getId()));
    }
    return out;
  }

  /** JSON -> payload Value, through the client's ValueFactory. */
  static Value toValue(JsonElement j) {
    if (j.isJsonNull()) {
      return nullValue();
    }
    if (j.isJsonArray()) {
      List<Value> items = new ArrayList<>();
      for (JsonElement x : arr(j)) {
        items.add(toValue(x));
      }
      return list(items);
    }
    if (j.isJsonObject()) {
      return value(payload(j));
    }
    JsonPrimitive p = j.getAsJsonPrimitive();
    if (p.isBoolean()) {
      return value(p.getAsBoolean());
    }
    if (p.isString()) {
      return value(p.getAsString());
    }
    return isInt(p) ? value(p.getAsLong()) : value(p.getAsDouble());
  }

  static Map<String, Value> payload(JsonElement j) {
    Map<String, Value> out = new HashMap<>();
    for (Map.Entry<String, JsonElement> e : o(j).entrySet()) {
      out.put(e.getKey(), toValue(e.getValue()));
    }
    return out;
  }

  // ------------------------------------------------------------------------ comparisons

  static void eqFloats(String what, List<Float> got, List<Float> want) throws Failure {
    ensure(got.size() == want.size(), what + ": got " + got + ", want " + want);
    for (int i = 0; i < got.size(); i++) {
      ensure(Math.abs(got.get(i) - want.get(i)) <= tol, what + ": got " + got + ", want " + want);
    }
  }

  static void eqValue(String path, Value got, JsonElement want) throws Failure {
    String shown = path + ": got " + got.toString().trim().replace('\n', ' ') + ", want " + want;
    if (want.isJsonNull()) {
      ensure(got.hasNullValue(), shown);
    } else if (want.isJsonArray()) {
      ensure(got.hasListValue(), shown);
      List<Value> items = got.getListValue().getValuesList();
      ensure(items.size() == arr(want).size(), shown);
      for (int i = 0; i < items.size(); i++) {
        eqValue(path + "[" + i + "]", items.get(i), arr(want).get(i));
      }
    } else if (want.isJsonObject()) {
      ensure(got.hasStructValue(), shown);
      eqPayload(path, got.getStructValue().getFieldsMap(), want);
    } else {
      JsonPrimitive p = want.getAsJsonPrimitive();
      if (p.isBoolean()) {
        ensure(got.hasBoolValue() && got.getBoolValue() == p.getAsBoolean(), shown);
      } else if (p.isString()) {
        ensure(got.hasStringValue() && got.getStringValue().equals(p.getAsString()), shown);
      } else if (isInt(p)) {
        ensure(got.hasIntegerValue() && got.getIntegerValue() == p.getAsLong(), shown);
      } else {
        ensure(
            got.hasDoubleValue() && Math.abs(got.getDoubleValue() - p.getAsDouble()) <= tol, shown);
      }
    }
  }

  static void eqPayload(String path, Map<String, Value> got, JsonElement want) throws Failure {
    TreeSet<String> gk = new TreeSet<>(got.keySet());
    TreeSet<String> wk = new TreeSet<>(o(want).keySet());
    ensure(gk.equals(wk), path + ": keys " + gk + ", want " + wk);
    for (String k : wk) {
      eqValue(path + "." + k, got.get(k), get(want, k));
    }
  }

  static void eqHits(List<ScoredPoint> got, JsonElement want) throws Failure {
    List<String> ids = new ArrayList<>();
    for (JsonElement h : arr(want)) {
      ids.add(h.getAsJsonObject().get("id").getAsString());
    }
    ensure(scoredIds(got).equals(ids), "ids " + scoredIds(got) + ", want " + ids);
    for (int i = 0; i < got.size(); i++) {
      double score = get(arr(want).get(i), "score").getAsDouble();
      ensure(
          Math.abs(got.get(i).getScore() - score) <= tol,
          "point " + ids.get(i) + ": score " + got.get(i).getScore() + ", want " + score);
    }
  }

  static void completed(UpdateResult r) throws Failure {
    ensure(r.getStatus() == UpdateStatus.Completed, "update status " + r.getStatus());
  }

  static void wantCode(Check call, Status.Code code) throws Exception {
    try {
      call.run();
    } catch (ExecutionException e) {
      Status st = Status.fromThrowable(e.getCause());
      ensure(st.getCode() == code, "want " + code + ", got " + st);
      return;
    }
    throw new Failure("no error, want " + code);
  }

  /** The gRPC status code of a canonical name as expectations.json writes them ("NOT_FOUND"). */
  static Status.Code code(JsonElement name) {
    return Status.Code.valueOf(str(name));
  }

  /**
   * A snapshot's description: its name (prefix...".snapshot"), a size, a SHA-256 checksum in
   * lower-case hex and a creation time.
   */
  static void snapshotDescribed(String what, SnapshotDescription d, String prefix, JsonElement sn)
      throws Failure {
    ensure(
        d.getName().startsWith(prefix) && d.getName().endsWith(str(get(sn, "suffix"))),
        what + ": name " + d.getName());
    ensure(d.getSize() > 0, what + ": size " + d.getSize());
    ensure(
        d.hasChecksum()
            && d.getChecksum().length() == num(get(sn, "checksum_hex_length"))
            && d.getChecksum().matches("[0-9a-f]*"),
        what + ": checksum " + (d.hasChecksum() ? d.getChecksum() : "none"));
    ensure(d.hasCreationTime(), what + ": no creation_time");
  }

  static List<SnapshotDescription> named(List<SnapshotDescription> list, String name) {
    List<SnapshotDescription> out = new ArrayList<>();
    for (SnapshotDescription d : list) {
      if (d.getName().equals(name)) {
        out.add(d);
      }
    }
    return out;
  }

  /** The program's aliases in ListAliases (the others' are left out), sorted. */
  static List<String> ownAliases() throws Exception {
    TreeSet<String> got = new TreeSet<>();
    for (AliasDescription a : client.listAliasesAsync().get()) {
      if (a.getAliasName().startsWith("java_")) {
        got.add(a.getAliasName() + " -> " + a.getCollectionName());
      }
    }
    return new ArrayList<>(got);
  }

  static List<String> collectionAliases(String coll) throws Exception {
    return new ArrayList<>(new TreeSet<>(client.listCollectionAliasesAsync(coll).get()));
  }

  static List<String> vectorNames(RetrievedPoint p) {
    return new ArrayList<>(new TreeSet<>(p.getVectors().getVectors().getVectorsMap().keySet()));
  }

  static List<Float> dense(VectorOutput v) {
    var d = VectorOutputHelper.getDenseVector(v);
    return d == null ? List.of() : d.getDataList();
  }

  /** Point i's vector of the "large" expectations. */
  static List<Float> largeVector(int i, int size) {
    List<Float> v = new ArrayList<>(size);
    for (int j = 0; j < size; j++) {
      v.add((float) ((i * 1009 + j * 17) % 10007) / 10007f);
    }
    return v;
  }

  // ------------------------------------------------------------------------ the run

  static QdrantClient client;

  static String env(String key, String def) {
    String v = System.getenv(key);
    return v == null || v.isEmpty() ? def : v;
  }

  static void fresh(String coll) {
    try {
      client.deleteCollectionAsync(coll).get();
    } catch (Exception e) {
      // not there
    }
  }

  static long count(String coll) throws Exception {
    return client.countAsync(coll, null, true).get();
  }

  static RetrievedPoint getOne(String coll, JsonElement id) throws Exception {
    List<RetrievedPoint> got = client.retrieveAsync(coll, List.of(pid(id)), true, true, null).get();
    ensure(got.size() == 1, "point " + id + ": " + got.size() + " points");
    return got.get(0);
  }

  static Map<String, io.qdrant.client.grpc.Points.Vector> namedMap(JsonElement p) {
    Map<String, io.qdrant.client.grpc.Points.Vector> out = new HashMap<>();
    for (String n : List.of("image", "text")) {
      if (o(p).has(n)) {
        out.put(n, vector(floats(get(p, n))));
      }
    }
    return out;
  }

  static void checkNamed(RetrievedPoint p, JsonElement want) throws Failure {
    List<String> wantNames = new ArrayList<>();
    for (String n : List.of("image", "text")) {
      if (o(want).has(n)) {
        wantNames.add(n);
      }
    }
    ensure(
        vectorNames(p).equals(wantNames),
        "point " + get(want, "id") + ": vectors " + vectorNames(p) + ", want " + wantNames);
    for (String n : wantNames) {
      VectorOutput v = p.getVectors().getVectors().getVectorsMap().get(n);
      eqFloats("point " + get(want, "id") + " " + n, dense(v), floats(get(want, n)));
    }
  }

  public static void main(String[] args) throws Exception {
    JsonElement x =
        JsonParser.parseString(
            Files.readString(Path.of(env("TESSERA_EXPECTATIONS", "../expectations.json"))));
    tol = get(x, "tolerance").getAsDouble();
    client =
        new QdrantClient(
            QdrantGrpcClient.newBuilder(
                    env("TESSERA_GRPC_HOST", "127.0.0.1"),
                    Integer.parseInt(env("TESSERA_GRPC_PORT", "6334")),
                    false)
                .build());

    check(
        "health_check",
        () -> {
          var reply = client.healthCheckAsync().get();
          ensure(
              reply.getVersion().equals(str(get(x, "server_version"))),
              "version " + reply.getVersion());
        });

    // ---------------------------------------------------------------- Point IDs
    JsonElement ids = get(x, "ids");
    String idsColl = "java_" + str(get(ids, "collection"));
    fresh(idsColl);
    check(
        "ids.create_collection",
        () -> {
          var r =
              client
                  .createCollectionAsync(
                      idsColl,
                      VectorParams.newBuilder()
                          .setSize(num(get(ids, "size")))
                          .setDistance(Distance.Dot)
                          .build())
                  .get();
          ensure(r.getResult(), "create answered false");
          ensure(client.collectionExistsAsync(idsColl).get(), "collectionExists: false");
        });
    check(
        "ids.upsert_uuid",
        () ->
            completed(
                client
                    .upsertAsync(
                        idsColl,
                        List.of(
                            PointStruct.newBuilder()
                                .setId(id(UUID.fromString(str(get(ids, "uuid")))))
                                .setVectors(vectors(floats(get(ids, "vector"))))
                                .putAllPayload(payload(get(ids, "payload")))
                                .build()))
                    .get()));
    check(
        "ids.upsert_num",
        () ->
            completed(
                client
                    .upsertAsync(
                        idsColl,
                        List.of(
                            PointStruct.newBuilder()
                                .setId(id(num(get(ids, "num"))))
                                .setVectors(vectors(floats(get(ids, "vector"))))
                                .putAllPayload(payload(get(ids, "payload")))
                                .build()))
                    .get()));
    check(
        "ids.upsert_other_forms",
        () -> {
          List<PointStruct> points = new ArrayList<>();
          for (JsonElement f : arr(get(ids, "other_forms"))) {
            // java.util.UUID parses only the hyphenated form: the others go in as strings.
            points.add(
                PointStruct.newBuilder()
                    .setId(PointId.newBuilder().setUuid(str(get(f, "sent"))).build())
                    .setVectors(vectors(floats(get(ids, "vector"))))
                    .putAllPayload(payload(get(ids, "payload")))
                    .build());
          }
          points.add(
              PointStruct.newBuilder()
                  .setId(pid(get(ids, "max_u64")))
                  .setVectors(vectors(floats(get(ids, "vector"))))
                  .putAllPayload(payload(get(ids, "payload")))
                  .build());
          completed(client.upsertAsync(idsColl, points).get());
        });
    check(
        "ids.retrieve",
        () -> {
          List<RetrievedPoint> got =
              client
                  .retrieveAsync(idsColl, pids(get(ids, "scroll_order")), true, true, null)
                  .get();
          TreeSet<String> g = new TreeSet<>(retrievedIds(got));
          TreeSet<String> w = new TreeSet<>(wantIds(get(ids, "scroll_order")));
          ensure(g.equals(w), "ids " + g + ", want " + w);
          for (RetrievedPoint p : got) {
            eqPayload("payload", p.getPayloadMap(), get(ids, "payload"));
            eqFloats("vector", dense(p.getVectors().getVector()), floats(get(ids, "vector")));
          }
        });
    check(
        "ids.scroll_order",
        () -> {
          ScrollResponse r =
              client
                  .scrollAsync(
                      ScrollPoints.newBuilder().setCollectionName(idsColl).setLimit(10).build())
                  .get();
          List<String> w = wantIds(get(ids, "scroll_order"));
          ensure(retrievedIds(r.getResultList()).equals(w), "ids " + retrievedIds(r.getResultList()));
          ensure(!r.hasNextPageOffset(), "next_page_offset " + r.getNextPageOffset());
        });

    // ---------------------------------------------------------------- Upload points
    JsonElement up = get(x, "upload");
    String upColl = "java_" + str(get(up, "collection"));
    fresh(upColl);
    List<PointStruct> uploadPoints = new ArrayList<>();
    for (JsonElement p : arr(get(up, "points"))) {
      uploadPoints.add(
          PointStruct.newBuilder()
              .setId(pid(get(p, "id")))
              .setVectors(vectors(floatArray(get(p, "vector"))))
              .putAllPayload(payload(get(p, "payload")))
              .build());
    }
    check(
        "upload.create_collection",
        () ->
            client
                .createCollectionAsync(
                    upColl,
                    VectorParams.newBuilder()
                        .setSize(num(get(up, "size")))
                        .setDistance(Distance.Dot)
                        .build())
                .get());
    check(
        "upload.records",
        () -> {
          completed(client.upsertAsync(upColl, uploadPoints).get());
          ensure(count(upColl) == num(get(up, "count")), "count " + count(upColl));
        });
    check(
        "upload.idempotent",
        () -> {
          client.upsertAsync(upColl, uploadPoints).get();
          ensure(count(upColl) == num(get(up, "count")), "count " + count(upColl));
          eqPayload(
              "payload",
              getOne(upColl, new JsonPrimitive(2)).getPayloadMap(),
              get(arr(get(up, "points")).get(1), "payload"));
        });

    // ---------------------------------------------------------------- Named vectors
    JsonElement nv = get(x, "named");
    String nvColl = "java_" + str(get(nv, "collection"));
    fresh(nvColl);
    check(
        "named.create_collection",
        () ->
            client
                .createCollectionAsync(
                    nvColl,
                    Map.of(
                        "image",
                        VectorParams.newBuilder()
                            .setSize(num(get(nv, "image_size")))
                            .setDistance(Distance.Dot)
                            .build(),
                        "text",
                        VectorParams.newBuilder()
                            .setSize(num(get(nv, "text_size")))
                            .setDistance(Distance.Dot)
                            .build()))
                .get());
    check(
        "named.upsert",
        () -> {
          List<PointStruct> points = new ArrayList<>();
          for (JsonElement p : arr(get(nv, "points"))) {
            points.add(
                PointStruct.newBuilder()
                    .setId(pid(get(p, "id")))
                    .setVectors(namedVectors(namedMap(p)))
                    .build());
          }
          completed(client.upsertAsync(nvColl, points).get());
        });
    check(
        "named.retrieve",
        () -> {
          for (JsonElement want : arr(get(nv, "points"))) {
            checkNamed(getOne(nvColl, get(want, "id")), want);
          }
        });
    check(
        "named.replace_point",
        () -> {
          JsonElement rep = get(nv, "replace");
          client
              .upsertAsync(
                  nvColl,
                  List.of(
                      PointStruct.newBuilder()
                          .setId(pid(get(rep, "id")))
                          .setVectors(namedVectors(namedMap(rep)))
                          .build()))
              .get();
          checkNamed(getOne(nvColl, get(rep, "id")), rep);
        });
    check(
        "named.update_vectors",
        () -> {
          List<PointVectors> points = new ArrayList<>();
          for (JsonElement u : arr(get(nv, "update"))) {
            points.add(
                PointVectors.newBuilder()
                    .setId(pid(get(u, "id")))
                    .setVectors(namedVectors(namedMap(u)))
                    .build());
          }
          completed(client.updateVectorsAsync(nvColl, points).get());
          for (JsonElement want : arr(get(nv, "after_update"))) {
            checkNamed(getOne(nvColl, get(want, "id")), want);
          }
        });
    check(
        "named.update_vectors_missing_point",
        () ->
            wantCode(
                () ->
                    client
                        .updateVectorsAsync(
                            nvColl,
                            List.of(
                                PointVectors.newBuilder()
                                    .setId(pid(get(nv, "missing_id")))
                                    .setVectors(
                                        namedVectors(
                                            Map.of(
                                                "image",
                                                vector(
                                                    floats(
                                                        get(
                                                            arr(get(nv, "points")).get(0),
                                                            "image"))))))
                                    .build()))
                        .get(),
                Status.Code.NOT_FOUND));
    check(
        "named.with_vectors_include",
        () -> {
          List<RetrievedPoint> got =
              client
                  .retrieveAsync(
                      nvColl,
                      List.of(id(1)),
                      enable(true),
                      WithVectorsSelectorFactory.include(List.of("text")),
                      null)
                  .get();
          ensure(got.size() == 1, got.size() + " points");
          ensure(vectorNames(got.get(0)).equals(List.of("text")), "vectors " + vectorNames(got.get(0)));
        });
    check(
        "named.delete_vectors",
        () -> {
          completed(
              client
                  .deleteVectorsAsync(
                      nvColl,
                      strs(get(nv, "delete_vectors_names")),
                      pids(get(nv, "delete_vectors_ids")))
                  .get());
          for (JsonElement id : arr(get(nv, "delete_vectors_ids"))) {
            RetrievedPoint p = getOne(nvColl, id);
            ensure(vectorNames(p).isEmpty(), "point " + id + " still has " + vectorNames(p));
          }
          ensure(count(nvColl) == num(get(nv, "count")), "count " + count(nvColl));
        });

    // ---------------------------------------------------------------- Sparse vectors
    JsonElement sp = get(x, "sparse");
    String spColl = "java_" + str(get(sp, "collection"));
    String sname = str(get(sp, "name"));
    fresh(spColl);
    check(
        "sparse.create_collection",
        () ->
            client
                .createCollectionAsync(
                    CreateCollection.newBuilder()
                        .setCollectionName(spColl)
                        .setSparseVectorsConfig(
                            SparseVectorConfig.newBuilder()
                                .putMap(sname, SparseVectorParams.getDefaultInstance())
                                .build())
                        .build())
                .get());
    check(
        "sparse.upsert",
        () -> {
          List<PointStruct> points = new ArrayList<>();
          for (JsonElement p : arr(get(sp, "points"))) {
            points.add(
                PointStruct.newBuilder()
                    .setId(pid(get(p, "id")))
                    .setVectors(
                        io.qdrant.client.grpc.Points.Vectors.newBuilder()
                            .setVectors(
                                NamedVectors.newBuilder()
                                    .putAllVectors(
                                        Map.of(
                                            sname,
                                            vector(floats(get(p, "values")), ints(get(p, "indices")))))
                                    .build())
                            .build())
                    .build());
          }
          completed(client.upsertAsync(spColl, points).get());
        });
    check(
        "sparse.retrieve",
        () -> {
          for (JsonElement want : arr(get(sp, "stored"))) {
            RetrievedPoint p = getOne(spColl, get(want, "id"));
            SparseVector s =
                VectorOutputHelper.getSparseVector(
                    p.getVectors().getVectors().getVectorsMap().get(sname));
            ensure(s != null, "point " + get(want, "id") + ": no sparse vector in " + p.getVectors());
            ensure(
                s.getIndicesList().equals(ints(get(want, "indices"))),
                "point " + get(want, "id") + ": indices " + s.getIndicesList());
            eqFloats("point " + get(want, "id") + " values", s.getValuesList(), floats(get(want, "values")));
          }
        });
    check(
        "sparse.query",
        () -> {
          JsonElement q = get(sp, "query");
          List<ScoredPoint> got =
              client
                  .queryAsync(
                      QueryPoints.newBuilder()
                          .setCollectionName(spColl)
                          .setQuery(nearest(floats(get(q, "values")), ints(get(q, "indices"))))
                          .setUsing(sname)
                          .setLimit(num(get(sp, "limit")))
                          .build())
                  .get();
          eqHits(got, get(sp, "hits"));
        });

    // ---------------------------------------------------------------- Multivectors
    JsonElement mv = get(x, "multi");
    String mvColl = "java_" + str(get(mv, "collection"));
    fresh(mvColl);
    check(
        "multi.create_collection",
        () ->
            client
                .createCollectionAsync(
                    mvColl,
                    VectorParams.newBuilder()
                        .setSize(num(get(mv, "size")))
                        .setDistance(Distance.Dot)
                        .setMultivectorConfig(
                            MultiVectorConfig.newBuilder()
                                .setComparator(MultiVectorComparator.MaxSim)
                                .build())
                        .build())
                .get());
    check(
        "multi.upsert",
        () -> {
          List<PointStruct> points = new ArrayList<>();
          for (JsonElement p : arr(get(mv, "points"))) {
            points.add(
                PointStruct.newBuilder()
                    .setId(pid(get(p, "id")))
                    .setVectors(vectors(multiVector(rows(get(p, "rows")))))
                    .build());
          }
          completed(client.upsertAsync(mvColl, points).get());
        });
    check(
        "multi.retrieve",
        () -> {
          for (JsonElement want : arr(get(mv, "points"))) {
            RetrievedPoint p = getOne(mvColl, get(want, "id"));
            MultiDenseVector m = VectorOutputHelper.getMultiVector(p.getVectors().getVector());
            List<List<Float>> wantRows = rows(get(want, "rows"));
            ensure(
                m != null && m.getVectorsCount() == wantRows.size(),
                "point " + get(want, "id") + ": got " + p.getVectors());
            for (int i = 0; i < wantRows.size(); i++) {
              eqFloats("point " + get(want, "id"), m.getVectors(i).getDataList(), wantRows.get(i));
            }
          }
        });
    check(
        "multi.query",
        () -> {
          List<ScoredPoint> got =
              client
                  .queryAsync(
                      QueryPoints.newBuilder()
                          .setCollectionName(mvColl)
                          .setQuery(nearestMultiVector(rows(get(mv, "query"))))
                          .build())
                  .get();
          eqHits(got, get(mv, "hits"));
        });

    // ---------------------------------------------------------------- Points
    JsonElement pt = get(x, "points");
    String ptColl = "java_" + str(get(pt, "collection"));
    fresh(ptColl);
    Map<String, JsonElement> byId = new HashMap<>();
    for (JsonElement p : arr(get(pt, "points"))) {
      byId.put(get(p, "id").getAsString(), p);
    }
    check(
        "points.create_collection_and_indexes",
        () -> {
          client
              .createCollectionAsync(
                  ptColl,
                  VectorParams.newBuilder()
                      .setSize(num(get(pt, "size")))
                      .setDistance(Distance.Dot)
                      .build())
              .get();
          completed(
              client
                  .createPayloadIndexAsync(
                      ptColl, "timestamp", PayloadSchemaType.Integer, null, true, null, null)
                  .get());
          completed(
              client
                  .createPayloadIndexAsync(
                      ptColl, "color", PayloadSchemaType.Keyword, null, true, null, null)
                  .get());
        });
    check(
        "points.upsert",
        () -> {
          List<PointStruct> points = new ArrayList<>();
          for (JsonElement p : arr(get(pt, "points"))) {
            points.add(
                PointStruct.newBuilder()
                    .setId(pid(get(p, "id")))
                    .setVectors(vectors(floats(get(p, "vector"))))
                    .putAllPayload(payload(get(p, "payload")))
                    .build());
          }
          completed(client.upsertAsync(ptColl, points).get());
        });
    check(
        "points.retrieve",
        () -> {
          // As the chapter writes it: retrieveAsync(name, ids, false, false, null).
          List<RetrievedPoint> got =
              client
                  .retrieveAsync(ptColl, pids(get(get(pt, "retrieve"), "ids")), false, false, null)
                  .get();
          TreeSet<Long> g = new TreeSet<>();
          for (RetrievedPoint p : got) {
            g.add(p.getId().getNum());
            ensure(p.getPayloadCount() == 0, "payload returned: " + p.getPayloadMap());
            ensure(!p.hasVectors(), "vectors returned: " + p.getVectors());
          }
          TreeSet<Long> w = new TreeSet<>();
          for (JsonElement id : arr(get(get(pt, "retrieve"), "found"))) {
            w.add(id.getAsLong());
          }
          ensure(g.equals(w), "ids " + g + ", want " + w);
        });
    check(
        "points.retrieve_with_payload_and_vectors",
        () -> {
          List<RetrievedPoint> got =
              client.retrieveAsync(ptColl, pids(get(pt, "retrieve_full")), true, true, null).get();
          ensure(got.size() == 2, got.size() + " points");
          for (RetrievedPoint p : got) {
            JsonElement want = byId.get(idJson(p.getId()));
            eqPayload("payload", p.getPayloadMap(), get(want, "payload"));
            eqFloats("vector", dense(p.getVectors().getVector()), floats(get(want, "vector")));
          }
        });
    JsonElement sf = get(pt, "scroll_first");
    String red = str(get(sf, "color"));
    check(
        "points.scroll_filter",
        () -> {
          ScrollResponse r =
              client
                  .scrollAsync(
                      ScrollPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .setFilter(Filter.newBuilder().addMust(matchKeyword("color", red)).build())
                          .setLimit((int) num(get(sf, "limit")))
                          .setWithPayload(enable(true))
                          .build())
                  .get();
          List<String> g = retrievedIds(r.getResultList());
          ensure(g.equals(wantIds(get(sf, "ids"))), "ids " + g);
          RetrievedPoint p = r.getResult(0);
          eqPayload("payload", p.getPayloadMap(), get(byId.get(g.get(0)), "payload"));
          ensure(!p.hasVectors(), "vectors returned: " + p.getVectors());
          ensure(
              r.hasNextPageOffset()
                  && idJson(r.getNextPageOffset()).equals(get(sf, "next_page_offset").getAsString()),
              "next_page_offset " + r.getNextPageOffset());
        });
    check(
        "points.scroll_pages",
        () -> {
          List<String> seen = new ArrayList<>();
          PointId offset = null;
          for (int i = 0; i < 10; i++) {
            ScrollPoints.Builder b =
                ScrollPoints.newBuilder()
                    .setCollectionName(ptColl)
                    .setFilter(Filter.newBuilder().addMust(matchKeyword("color", red)).build())
                    .setLimit(1);
            if (offset != null) {
              b.setOffset(offset);
            }
            ScrollResponse r = client.scrollAsync(b.build()).get();
            seen.addAll(retrievedIds(r.getResultList()));
            if (!r.hasNextPageOffset()) {
              break;
            }
            offset = r.getNextPageOffset();
          }
          ensure(seen.equals(wantIds(get(pt, "scroll_all_red"))), "ids " + seen);
        });
    JsonElement ob = get(pt, "order_by");
    check(
        "points.scroll_order_by",
        () -> {
          ScrollResponse r =
              client
                  .scrollAsync(
                      ScrollPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .setLimit((int) num(get(ob, "limit")))
                          .setOrderBy(OrderBy.newBuilder().setKey(str(get(ob, "key"))).build())
                          .build())
                  .get();
          List<String> g = retrievedIds(r.getResultList());
          ensure(g.equals(wantIds(get(ob, "ids"))), "ids " + g);
          List<String> values = new ArrayList<>();
          for (RetrievedPoint p : r.getResultList()) {
            values.add(p.getOrderValue().hasInt() ? "" + p.getOrderValue().getInt() : "not int: " + p.getOrderValue());
          }
          ensure(values.equals(wantIds(get(ob, "values"))), "order values " + values);
          ensure(!r.hasNextPageOffset(), "next_page_offset " + r.getNextPageOffset());
        });
    check(
        "points.scroll_order_by_desc_start_from",
        () -> {
          JsonElement obd = get(pt, "order_by_desc");
          ScrollResponse r =
              client
                  .scrollAsync(
                      ScrollPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .setLimit((int) num(get(ob, "limit")))
                          .setOrderBy(
                              OrderBy.newBuilder()
                                  .setKey(str(get(ob, "key")))
                                  .setDirection(Direction.Desc)
                                  .setStartFrom(
                                      StartFrom.newBuilder()
                                          .setInteger(num(get(obd, "start_from")))
                                          .build())
                                  .build())
                          .build())
                  .get();
          List<String> g = retrievedIds(r.getResultList());
          ensure(g.equals(wantIds(get(obd, "ids"))), "ids " + g);
          List<String> values = new ArrayList<>();
          for (RetrievedPoint p : r.getResultList()) {
            values.add("" + p.getOrderValue().getInt());
          }
          ensure(values.equals(wantIds(get(obd, "values"))), "order values " + values);
        });
    check(
        "points.count_filter",
        () -> {
          long n =
              client
                  .countAsync(
                      ptColl, Filter.newBuilder().addMust(matchKeyword("color", red)).build(), true)
                  .get();
          ensure(n == num(get(pt, "count_red")), "count " + n);
          n = client.countAsync(ptColl).get();
          ensure(n == num(get(pt, "count_all")), "count all " + n);
        });
    check(
        "points.query_filter",
        () -> {
          JsonElement q = get(pt, "query_red");
          List<ScoredPoint> got =
              client
                  .queryAsync(
                      QueryPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .setQuery(nearest(floats(get(q, "vector"))))
                          .setFilter(
                              Filter.newBuilder()
                                  .addMust(matchKeyword("color", str(get(q, "color"))))
                                  .build())
                          .setLimit(num(get(q, "limit")))
                          .setWithPayload(enable(true))
                          .build())
                  .get();
          eqHits(got, get(q, "hits"));
          for (ScoredPoint p : got) {
            eqPayload("payload", p.getPayloadMap(), get(byId.get(idJson(p.getId())), "payload"));
          }
          JsonElement all = get(pt, "query_all");
          got =
              client
                  .queryAsync(
                      QueryPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .setQuery(nearest(floatArray(get(all, "vector"))))
                          .setLimit(num(get(all, "limit")))
                          .build())
                  .get();
          eqHits(got, get(all, "hits"));
        });
    check(
        "points.search_filter",
        () -> {
          JsonElement q = get(pt, "search_not_red");
          List<ScoredPoint> got =
              client
                  .searchAsync(
                      SearchPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .addAllVector(floats(get(q, "vector")))
                          .setFilter(
                              Filter.newBuilder()
                                  .addMustNot(matchKeyword("color", str(get(q, "color"))))
                                  .build())
                          .setLimit(num(get(q, "limit")))
                          .build())
                  .get();
          eqHits(got, get(q, "hits"));
        });

    // ---------------------------------------------------------------- Payload
    JsonElement pl = get(x, "payload");
    check(
        "payload.set",
        () -> {
          JsonElement s = get(pl, "set");
          completed(
              client
                  .setPayloadAsync(
                      ptColl, payload(get(s, "payload")), List.of(pid(get(s, "id"))), true, null, null)
                  .get());
          eqPayload("payload", getOne(ptColl, get(s, "id")).getPayloadMap(), get(s, "expected"));
        });
    check(
        "payload.overwrite",
        () -> {
          JsonElement ow = get(pl, "overwrite");
          completed(
              client
                  .overwritePayloadAsync(
                      ptColl,
                      payload(get(ow, "payload")),
                      List.of(pid(get(ow, "id"))),
                      true,
                      null,
                      null)
                  .get());
          eqPayload("payload", getOne(ptColl, get(ow, "id")).getPayloadMap(), get(ow, "payload"));
        });
    check(
        "payload.delete_keys_by_filter",
        () -> {
          JsonElement d = get(pl, "delete");
          completed(
              client
                  .deletePayloadAsync(
                      ptColl,
                      strs(get(d, "keys")),
                      Filter.newBuilder().addMust(matchKeyword("color", str(get(d, "color")))).build(),
                      true,
                      null,
                      null)
                  .get());
          for (JsonElement want : arr(get(d, "expected"))) {
            eqPayload(
                "point " + get(want, "id"),
                getOne(ptColl, get(want, "id")).getPayloadMap(),
                get(want, "payload"));
          }
        });
    check(
        "payload.clear",
        () -> {
          JsonElement id = get(get(pl, "clear"), "id");
          completed(client.clearPayloadAsync(ptColl, List.of(pid(id)), true, null, null).get());
          Map<String, Value> got = getOne(ptColl, id).getPayloadMap();
          ensure(got.isEmpty(), "payload " + got);
        });
    check(
        "points.delete_ids",
        () -> {
          completed(client.deleteAsync(ptColl, pids(get(pt, "delete_ids"))).get());
          ensure(count(ptColl) == num(get(pt, "count_after_delete_ids")), "count " + count(ptColl));
        });
    check(
        "points.delete_filter",
        () -> {
          completed(
              client
                  .deleteAsync(
                      ptColl,
                      Filter.newBuilder()
                          .addMust(matchKeyword("color", str(get(pt, "delete_color"))))
                          .build())
                  .get());
          ScrollResponse r =
              client
                  .scrollAsync(
                      ScrollPoints.newBuilder().setCollectionName(ptColl).setLimit(100).build())
                  .get();
          List<String> g = retrievedIds(r.getResultList());
          ensure(g.equals(wantIds(get(pt, "left_after_delete_filter"))), "ids " + g);
        });

    // ---------------------------------------------------------------- Awaiting result
    check(
        "wait.false_then_true",
        () -> {
          JsonElement w = get(x, "wait");
          JsonElement p = get(w, "point");
          PointStruct point =
              PointStruct.newBuilder()
                  .setId(pid(get(p, "id")))
                  .setVectors(vectors(floats(get(p, "vector"))))
                  .putAllPayload(payload(get(p, "payload")))
                  .build();
          UpdateResult r =
              client
                  .upsertAsync(
                      UpsertPoints.newBuilder()
                          .setCollectionName(ptColl)
                          .addPoints(point)
                          .setWait(false)
                          .build())
                  .get();
          ensure(
              r.getStatus() == UpdateStatus.Acknowledged || r.getStatus() == UpdateStatus.Completed,
              "wait=false status " + r.getStatus());
          completed(client.upsertAsync(ptColl, List.of(point)).get());
          ensure(count(ptColl) == num(get(w, "count_after")), "count " + count(ptColl));
        });

    // ---------------------------------------------------------------- Batch update
    JsonElement bt = get(x, "batch");
    String btColl = "java_" + str(get(bt, "collection"));
    fresh(btColl);
    PointsSelector one =
        PointsSelector.newBuilder()
            .setPoints(PointsIdsList.newBuilder().addIds(pid(get(bt, "id"))).build())
            .build();
    List<PointsUpdateOperation> firstSix =
        List.of(
            PointsUpdateOperation.newBuilder()
                .setUpsert(
                    PointStructList.newBuilder()
                        .addPoints(
                            PointStruct.newBuilder()
                                .setId(pid(get(bt, "id")))
                                .setVectors(vectors(floats(get(bt, "vector"))))
                                .build())
                        .build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setUpdateVectors(
                    UpdateVectors.newBuilder()
                        .addPoints(
                            PointVectors.newBuilder()
                                .setId(pid(get(bt, "id")))
                                .setVectors(vectors(floats(get(bt, "vector"))))
                                .build())
                        .build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setDeleteVectors(
                    DeleteVectors.newBuilder()
                        .setPointsSelector(one)
                        .setVectors(VectorsSelector.newBuilder().addNames("").build())
                        .build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setOverwritePayload(
                    OverwritePayload.newBuilder()
                        .setPointsSelector(one)
                        .putAllPayload(payload(get(bt, "overwrite")))
                        .build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setSetPayload(
                    SetPayload.newBuilder()
                        .setPointsSelector(one)
                        .putAllPayload(payload(get(bt, "set")))
                        .build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setDeletePayload(
                    DeletePayload.newBuilder()
                        .setPointsSelector(one)
                        .addAllKeys(strs(get(bt, "delete_keys")))
                        .build())
                .build());
    List<PointsUpdateOperation> lastTwo =
        List.of(
            PointsUpdateOperation.newBuilder()
                .setClearPayload(ClearPayload.newBuilder().setPoints(one).build())
                .build(),
            PointsUpdateOperation.newBuilder()
                .setDeletePoints(DeletePoints.newBuilder().setPoints(one).build())
                .build());
    check(
        "batch.create_collection",
        () ->
            client
                .createCollectionAsync(
                    btColl,
                    VectorParams.newBuilder()
                        .setSize(num(get(bt, "size")))
                        .setDistance(Distance.Dot)
                        .build())
                .get());
    check(
        "batch.all_operations",
        () -> {
          List<PointsUpdateOperation> ops = new ArrayList<>(firstSix);
          ops.addAll(lastTwo);
          List<UpdateResult> results = client.batchUpdateAsync(btColl, ops).get();
          ensure(results.size() == num(get(bt, "results")), results.size() + " results");
          for (UpdateResult r : results) {
            completed(r);
          }
          List<RetrievedPoint> got =
              client.retrieveAsync(btColl, List.of(pid(get(bt, "id"))), false, false, null).get();
          ensure(got.isEmpty(), "point still there: " + got);
        });
    check(
        "batch.state_after_each_step",
        () -> {
          client.batchUpdateAsync(btColl, firstSix).get();
          RetrievedPoint p = getOne(btColl, get(bt, "id"));
          eqPayload("payload", p.getPayloadMap(), get(get(bt, "after_first_six"), "payload"));
          ensure(
              !p.getVectors().hasVector() || dense(p.getVectors().getVector()).isEmpty(),
              "vector left: " + p.getVectors());
          List<UpdateResult> results = client.batchUpdateAsync(btColl, lastTwo).get();
          ensure(results.size() == 2, results.size() + " results");
          ensure(count(btColl) == 0, "count " + count(btColl));
        });

    // ---------------------------------------------------------------- Message size
    JsonElement lg = get(x, "large");
    String lgColl = "java_" + str(get(lg, "collection"));
    fresh(lgColl);
    int size = (int) num(get(lg, "size"));
    check(
        "limits.large_upsert",
        () -> {
          client
              .createCollectionAsync(
                  lgColl, VectorParams.newBuilder().setSize(size).setDistance(Distance.Dot).build())
              .get();
          List<PointStruct> points = new ArrayList<>();
          for (int i = 0; i < num(get(lg, "count")); i++) {
            points.add(
                PointStruct.newBuilder().setId(id(i)).setVectors(vectors(largeVector(i, size))).build());
          }
          completed(client.upsertAsync(lgColl, points).get());
          ensure(count(lgColl) == num(get(lg, "count")), "count " + count(lgColl));
          int probe = (int) num(get(lg, "probe_id"));
          List<RetrievedPoint> got =
              client.retrieveAsync(lgColl, List.of(id(probe)), false, true, null).get();
          ensure(got.size() == 1, got.size() + " points");
          eqFloats("vector", dense(got.get(0).getVectors().getVector()), largeVector(probe, size));
        });

    // ---------------------------------------------------------------- Errors
    check(
        "errors.missing_collection",
        () ->
            wantCode(
                () -> client.countAsync(str(get(get(x, "errors"), "missing_collection"))).get(),
                Status.Code.NOT_FOUND));
    check(
        "errors.wrong_dimension",
        () ->
            wantCode(
                () ->
                    client
                        .upsertAsync(
                            ptColl,
                            List.of(
                                PointStruct.newBuilder()
                                    .setId(id(999))
                                    .setVectors(
                                        vectors(floats(get(get(x, "errors"), "wrong_dim_vector"))))
                                    .build()))
                        .get(),
                Status.Code.INVALID_ARGUMENT));

    // ---------------------------------------------------------------- Collections
    check(
        "collections.errors",
        () -> {
          JsonElement cx = get(x, "collections");
          wantCode(
              () ->
                  client
                      .createCollectionAsync(
                          "java_" + str(get(cx, "existing")),
                          VectorParams.newBuilder().setSize(3).setDistance(Distance.Dot).build())
                      .get(),
              code(get(get(cx, "codes"), "create_existing")));
          // The server answers false; the client turns that into a QdrantException (a gRPC
          // error would come as a StatusRuntimeException).
          try {
            client.deleteCollectionAsync(str(get(cx, "missing"))).get();
            throw new Failure("deleting a missing collection answered true");
          } catch (ExecutionException e) {
            ensure(
                e.getCause() instanceof io.qdrant.client.QdrantException,
                "deleting a missing collection: " + e.getCause());
          }
        });

    // ---------------------------------------------------------------- Aliases
    JsonElement al = get(x, "aliases");
    String alColl = "java_" + str(get(al, "collection"));
    String alias = "java_" + str(get(al, "alias"));
    String renamed = "java_" + str(get(al, "renamed"));
    JsonElement alCodes = get(al, "codes");
    long alCount = num(get(al, "count"));
    for (String a : List.of(alias, renamed)) {
      try {
        client.deleteAliasAsync(a).get();
      } catch (Exception e) {
        // not there
      }
    }
    check(
        "aliases.create",
        () -> ensure(client.createAliasAsync(alias, alColl).get().getResult(), "answered false"));
    check(
        "aliases.list",
        () -> {
          List<String> own = ownAliases();
          ensure(own.equals(List.of(alias + " -> " + alColl)), "listAliases " + own);
          List<String> names = collectionAliases(alColl);
          ensure(names.equals(List.of(alias)), "listCollectionAliases " + names);
          names = client.listCollectionAliasesAsync(str(get(al, "missing_collection"))).get();
          ensure(names.isEmpty(), "aliases of a missing collection: " + names);
        });
    check(
        "aliases.count_and_query",
        () -> {
          ensure(count(alias) == alCount, "count through the alias " + count(alias));
          JsonElement q = get(al, "query");
          List<ScoredPoint> got =
              client
                  .queryAsync(
                      QueryPoints.newBuilder()
                          .setCollectionName(alias)
                          .setQuery(nearest(floats(get(q, "vector"))))
                          .setLimit(num(get(q, "limit")))
                          .build())
                  .get();
          eqHits(got, get(q, "hits"));
        });
    check(
        "aliases.collection_ops",
        () -> {
          ensure(client.collectionExistsAsync(alias).get(), "collectionExists through the alias");
          // Qdrant deletes a collection by its own name only: through an alias, nothing (false,
          // which the client turns into a QdrantException).
          try {
            client.deleteCollectionAsync(alias).get();
            throw new Failure("deleting through the alias answered true");
          } catch (ExecutionException e) {
            ensure(
                e.getCause() instanceof io.qdrant.client.QdrantException,
                "deleting through the alias: " + e.getCause());
          }
          ensure(count(alColl) == alCount, "the collection's count after " + count(alColl));
          List<String> names = collectionAliases(alColl);
          ensure(names.equals(List.of(alias)), "listCollectionAliases after " + names);
        });
    check(
        "aliases.rename",
        () -> {
          ensure(client.renameAliasAsync(alias, renamed).get().getResult(), "answered false");
          List<String> names = collectionAliases(alColl);
          ensure(names.equals(List.of(renamed)), "listCollectionAliases " + names);
          ensure(count(renamed) == alCount, "count through the new name " + count(renamed));
          wantCode(() -> count(alias), code(get(alCodes, "use_removed_alias")));
        });
    check(
        "aliases.delete",
        () -> {
          ensure(client.deleteAliasAsync(renamed).get().getResult(), "answered false");
          List<String> names = collectionAliases(alColl);
          ensure(names.isEmpty(), "listCollectionAliases " + names);
          ensure(ownAliases().isEmpty(), "listAliases " + ownAliases());
          wantCode(() -> count(renamed), code(get(alCodes, "use_removed_alias")));
          // Qdrant's "delete alias if exists": a missing one is no error.
          ensure(client.deleteAliasAsync(renamed).get().getResult(), "deleting a missing alias");
          ensure(count(alColl) == alCount, "the collection's count after " + count(alColl));
        });
    check(
        "aliases.errors",
        () -> {
          wantCode(
              () -> client.createAliasAsync(alias, str(get(al, "missing_collection"))).get(),
              code(get(alCodes, "create_for_missing_collection")));
          wantCode(
              () ->
                  client
                      .createAliasAsync("java_" + str(get(al, "named_as_collection")), alColl)
                      .get(),
              code(get(alCodes, "create_named_as_collection")));
          wantCode(
              () -> client.renameAliasAsync(str(get(al, "missing_alias")), alias).get(),
              code(get(alCodes, "rename_missing_alias")));
          ensure(ownAliases().isEmpty(), "aliases left: " + ownAliases());
        });

    // ---------------------------------------------------------------- Snapshots
    JsonElement sn = get(x, "snapshots");
    String snColl = "java_" + str(get(sn, "collection"));
    JsonElement snCodes = get(sn, "codes");
    SnapshotDescription[] made = new SnapshotDescription[1];
    check(
        "snapshots.create",
        () -> {
          made[0] = client.createSnapshotAsync(snColl).get();
          snapshotDescribed("created", made[0], snColl + "-", sn);
        });
    check(
        "snapshots.list",
        () -> {
          ensure(made[0] != null, "no snapshot was created");
          List<SnapshotDescription> list = client.listSnapshotAsync(snColl).get();
          List<SnapshotDescription> found = named(list, made[0].getName());
          ensure(found.size() == 1, made[0].getName() + " not in " + list);
          snapshotDescribed("listed", found.get(0), snColl + "-", sn);
          ensure(
              found.get(0).getSize() == made[0].getSize()
                  && found.get(0).getChecksum().equals(made[0].getChecksum()),
              "listed " + found.get(0) + ", created " + made[0]);
        });
    check(
        "snapshots.delete",
        () -> {
          ensure(made[0] != null, "no snapshot was created");
          client.deleteSnapshotAsync(snColl, made[0].getName()).get();
          List<SnapshotDescription> list = client.listSnapshotAsync(snColl).get();
          ensure(named(list, made[0].getName()).isEmpty(), "still listed: " + list);
          wantCode(
              () -> client.deleteSnapshotAsync(snColl, made[0].getName()).get(),
              code(get(snCodes, "delete_missing")));
        });
    check(
        "snapshots.errors",
        () -> {
          String missing = str(get(al, "missing_collection"));
          wantCode(
              () -> client.createSnapshotAsync(missing).get(),
              code(get(snCodes, "create_for_missing_collection")));
          wantCode(
              () -> client.listSnapshotAsync(missing).get(),
              code(get(snCodes, "list_for_missing_collection")));
          wantCode(
              () -> client.deleteSnapshotAsync(snColl, str(get(sn, "missing_snapshot"))).get(),
              code(get(snCodes, "delete_missing")));
          wantCode(
              () -> client.deleteFullSnapshotAsync(str(get(sn, "missing_snapshot"))).get(),
              code(get(snCodes, "delete_missing_full")));
        });
    check(
        "snapshots.through_alias",
        () -> {
          // As in Qdrant: the aliased collection's snapshot, named and listed as the collection's.
          String snAlias = "java_" + str(get(sn, "alias"));
          client.createAliasAsync(snAlias, snColl).get();
          try {
            SnapshotDescription d = client.createSnapshotAsync(snAlias).get();
            snapshotDescribed("created through the alias", d, snColl + "-", sn);
            for (String target : List.of(snColl, snAlias)) {
              List<SnapshotDescription> list = client.listSnapshotAsync(target).get();
              ensure(
                  named(list, d.getName()).size() == 1,
                  d.getName() + " not listed through " + target + ": " + list);
            }
            client.deleteSnapshotAsync(snAlias, d.getName()).get();
            List<SnapshotDescription> list = client.listSnapshotAsync(snColl).get();
            ensure(named(list, d.getName()).isEmpty(), "still listed: " + list);
          } finally {
            client.deleteAliasAsync(snAlias).get();
          }
        });
    check(
        "snapshots.full",
        () -> {
          String prefix = str(get(sn, "full_prefix"));
          SnapshotDescription d = client.createFullSnapshotAsync().get();
          snapshotDescribed("created", d, prefix, sn);
          List<SnapshotDescription> list = client.listFullSnapshotAsync().get();
          List<SnapshotDescription> found = named(list, d.getName());
          ensure(found.size() == 1, d.getName() + " not in " + list);
          snapshotDescribed("listed", found.get(0), prefix, sn);
          ensure(
              found.get(0).getSize() == d.getSize()
                  && found.get(0).getChecksum().equals(d.getChecksum()),
              "listed " + found.get(0) + ", created " + d);
          client.deleteFullSnapshotAsync(d.getName()).get();
          list = client.listFullSnapshotAsync().get();
          ensure(named(list, d.getName()).isEmpty(), "still listed: " + list);
        });

    for (String c : List.of(idsColl, upColl, nvColl, spColl, mvColl, ptColl, btColl, lgColl)) {
      fresh(c);
    }
    client.close();
    System.out.println("java: " + passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
