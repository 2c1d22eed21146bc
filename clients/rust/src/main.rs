//! The examples of Qdrant's Points chapter (shared/spec/points.md), written with the official
//! Rust client (`qdrant-client`) as the chapter writes them, run against a Tessera server's gRPC
//! port and checked against the answers in `clients/expectations.json`.
//!
//! Environment: `TESSERA_GRPC_URL` (default `http://127.0.0.1:6334`) and
//! `TESSERA_EXPECTATIONS` (default `../expectations.json`). Prints one line per check and
//! `rust: N passed, M failed`; exits 1 when a check failed.

use std::collections::HashMap;
use std::future::Future;

use qdrant_client::qdrant::{
    points_selector::PointsSelectorOneOf,
    points_update_operation::{
        ClearPayload, DeletePayload, DeletePoints, DeleteVectors, Operation, OverwritePayload,
        PointStructList, SetPayload, UpdateVectors,
    },
    start_from, value::Kind, vector_output, ClearPayloadPointsBuilder, Condition,
    CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeleteCollectionBuilder, DeletePayloadPointsBuilder, DeletePointVectorsBuilder,
    DeletePointsBuilder, Direction, Distance, FieldType, Filter, GetPointsBuilder,
    MultiVectorComparator, MultiVectorConfigBuilder, OrderByBuilder, PointId, PointStruct,
    PointVectors, PointsIdsList, PointsUpdateOperation, QueryPointsBuilder, RetrievedPoint,
    ScoredPoint, ScrollPointsBuilder, SnapshotDescription, CreateAliasBuilder,
    RenameAliasBuilder, DeleteSnapshotRequestBuilder, SearchPointsBuilder, SetPayloadPointsBuilder,
    SparseVectorParamsBuilder, SparseVectorsConfigBuilder, UpdateBatchPointsBuilder,
    UpdatePointVectorsBuilder, UpdateResult, UpdateStatus, UpsertPointsBuilder, Value, Vector,
    VectorParamsBuilder, VectorsConfigBuilder, VectorsOutput, VectorsSelector,
    WithVectorsSelector,
};
use qdrant_client::config::CompressionEncoding;
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::Value as J;

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Any client error as the check's failure, with the gRPC status where there is one.
fn e(err: QdrantError) -> String {
    match err {
        QdrantError::ResponseError { status } => {
            format!("server answered {:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

/// gRPC's canonical name of a status code, as expectations.json writes them: tonic's
/// `NotFound` is `NOT_FOUND`.
fn canonical(camel: &str) -> String {
    let mut out = String::new();
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// A call that must fail with the gRPC status `want` (a canonical name, "NOT_FOUND").
fn fails_with<T: std::fmt::Debug>(what: &str, r: Result<T, QdrantError>, want: &J) -> Check {
    let want = want.as_str().expect("a status code name");
    match r {
        Err(QdrantError::ResponseError { status }) => {
            let code = canonical(&format!("{:?}", status.code()));
            ensure!(code == want, "{what}: status {code} ({}), want {want}", status.message());
            Ok(())
        }
        other => Err(format!("{what}: want {want}, got {other:?}")),
    }
}

/// A snapshot's description: its name (`prefix`...`.snapshot`), a size, a SHA-256 checksum in
/// lower-case hex and a creation time.
fn snapshot_described(what: &str, d: &SnapshotDescription, prefix: &str, sn: &J) -> Check {
    let suffix = sn["suffix"].as_str().unwrap();
    ensure!(d.name.starts_with(prefix) && d.name.ends_with(suffix), "{what}: name {:?}", d.name);
    ensure!(d.size > 0, "{what}: size {}", d.size);
    let sum = d.checksum.as_deref().unwrap_or_default();
    ensure!(
        sum.len() as u64 == sn["checksum_hex_length"].as_u64().unwrap()
            && sum.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{what}: checksum {:?}",
        d.checksum
    );
    ensure!(d.creation_time.is_some(), "{what}: no creation_time");
    Ok(())
}

// ------------------------------------------------------------------------------ JSON helpers

fn floats(j: &J) -> Vec<f32> {
    j.as_array().expect("a list of numbers").iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn rows(j: &J) -> Vec<Vec<f32>> {
    j.as_array().unwrap().iter().map(floats).collect()
}

fn u32s(j: &J) -> Vec<u32> {
    j.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn strs(j: &J) -> Vec<String> {
    j.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

fn pid(j: &J) -> PointId {
    match j {
        J::String(s) => PointId::from(s.as_str()),
        n => PointId::from(n.as_u64().expect("an u64 id")),
    }
}

fn pids(j: &J) -> Vec<PointId> {
    j.as_array().unwrap().iter().map(pid).collect()
}

fn payload(j: &J) -> Payload {
    Payload::try_from(j.clone()).expect("a JSON object")
}

fn id_json(p: &Option<PointId>) -> J {
    use qdrant_client::qdrant::point_id::PointIdOptions;
    match p.as_ref().and_then(|p| p.point_id_options.clone()) {
        Some(PointIdOptions::Num(n)) => J::from(n),
        Some(PointIdOptions::Uuid(u)) => J::from(u),
        None => J::Null,
    }
}

fn ids_of(points: &[RetrievedPoint]) -> Vec<J> {
    points.iter().map(|p| id_json(&p.id)).collect()
}

fn scored_ids(points: &[ScoredPoint]) -> Vec<J> {
    points.iter().map(|p| id_json(&p.id)).collect()
}

fn list(j: &J) -> Vec<J> {
    j.as_array().unwrap().clone()
}

// ------------------------------------------------------------------------------ comparisons

struct Cmp {
    tol: f64,
}

impl Cmp {
    fn floats(&self, what: &str, got: &[f32], want: &[f32]) -> Check {
        ensure!(got.len() == want.len(), "{what}: got {got:?}, want {want:?}");
        for (g, w) in got.iter().zip(want) {
            ensure!(((*g - *w) as f64).abs() <= self.tol, "{what}: got {got:?}, want {want:?}");
        }
        Ok(())
    }

    /// A payload value against its JSON: integers must come back as integer_value, numbers
    /// with a fraction as double_value.
    fn value(&self, path: &str, got: &Value, want: &J) -> Check {
        let kind = got.kind.as_ref();
        match want {
            J::Null => ensure!(
                matches!(kind, Some(Kind::NullValue(_))),
                "{path}: got {kind:?}, want null"
            ),
            J::Bool(b) => ensure!(kind == Some(&Kind::BoolValue(*b)), "{path}: got {kind:?}, want {b}"),
            J::String(s) => ensure!(
                kind == Some(&Kind::StringValue(s.clone())),
                "{path}: got {kind:?}, want {s:?}"
            ),
            J::Number(n) if n.is_i64() => ensure!(
                kind == Some(&Kind::IntegerValue(n.as_i64().unwrap())),
                "{path}: got {kind:?}, want integer {n}"
            ),
            J::Number(n) => match kind {
                Some(Kind::DoubleValue(d)) => {
                    ensure!((d - n.as_f64().unwrap()).abs() <= self.tol, "{path}: got {d}, want {n}")
                }
                _ => return Err(format!("{path}: got {kind:?}, want double {n}")),
            },
            J::Array(items) => match kind {
                Some(Kind::ListValue(l)) => {
                    ensure!(l.values.len() == items.len(), "{path}: got {l:?}, want {want}");
                    for (i, (g, w)) in l.values.iter().zip(items).enumerate() {
                        self.value(&format!("{path}[{i}]"), g, w)?;
                    }
                }
                _ => return Err(format!("{path}: got {kind:?}, want {want}")),
            },
            J::Object(_) => match kind {
                Some(Kind::StructValue(s)) => self.payload(path, &s.fields, want)?,
                _ => return Err(format!("{path}: got {kind:?}, want {want}")),
            },
        }
        Ok(())
    }

    fn payload(&self, path: &str, got: &HashMap<String, Value>, want: &J) -> Check {
        let want = want.as_object().unwrap();
        let mut got_keys: Vec<_> = got.keys().cloned().collect();
        let mut want_keys: Vec<_> = want.keys().cloned().collect();
        got_keys.sort();
        want_keys.sort();
        ensure!(got_keys == want_keys, "{path}: keys {got_keys:?}, want {want_keys:?}");
        for (k, w) in want {
            self.value(&format!("{path}.{k}"), &got[k], w)?;
        }
        Ok(())
    }

    fn dense(&self, what: &str, got: Option<vector_output::Vector>, want: &J) -> Check {
        match got {
            Some(vector_output::Vector::Dense(d)) => self.floats(what, &d.data, &floats(want)),
            other => Err(format!("{what}: got {other:?}, want dense {want}")),
        }
    }

    fn hits(&self, got: &[ScoredPoint], want: &J) -> Check {
        let want = want.as_array().unwrap();
        let ids: Vec<J> = want.iter().map(|h| h["id"].clone()).collect();
        ensure!(scored_ids(got) == ids, "ids {:?}, want {ids:?}", scored_ids(got));
        for (g, w) in got.iter().zip(want) {
            let score = w["score"].as_f64().unwrap();
            ensure!(
                (g.score as f64 - score).abs() <= self.tol,
                "point {}: score {}, want {score}",
                w["id"],
                g.score
            );
        }
        Ok(())
    }
}

fn completed(result: Option<UpdateResult>) -> Check {
    let status = result.map(|r| r.status);
    ensure!(
        status == Some(UpdateStatus::Completed as i32),
        "update status {status:?}, want Completed"
    );
    Ok(())
}

fn named(v: &Option<VectorsOutput>) -> Vec<String> {
    let mut names: Vec<String> = match v.as_ref().and_then(|v| v.vectors_options.clone()) {
        Some(qdrant_client::qdrant::vectors_output::VectorsOptions::Vectors(n)) => {
            n.vectors.keys().cloned().collect()
        }
        _ => vec![],
    };
    names.sort();
    names
}

// ------------------------------------------------------------------------------ the run

struct Run {
    passed: u32,
    failed: u32,
}

impl Run {
    async fn check<F: Future<Output = Check>>(&mut self, name: &str, f: F) {
        match f.await {
            Ok(()) => {
                self.passed += 1;
                println!("ok    {name}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }
}

async fn fresh(client: &Qdrant, name: &str) {
    let _ = client.delete_collection(DeleteCollectionBuilder::new(name)).await;
}

#[tokio::main]
async fn main() {
    let url = std::env::var("TESSERA_GRPC_URL").unwrap_or("http://127.0.0.1:6334".into());
    let path = std::env::var("TESSERA_EXPECTATIONS").unwrap_or("../expectations.json".into());
    let x: J = serde_json::from_str(&std::fs::read_to_string(&path).expect("expectations file"))
        .expect("expectations JSON");
    let cmp = Cmp { tol: x["tolerance"].as_f64().unwrap() };
    let name = |key: &str| format!("rust_{}", x[key]["collection"].as_str().unwrap());
    let mut run = Run { passed: 0, failed: 0 };

    let client = Qdrant::from_url(&url).build().expect("client");
    let c = &client;

    run.check("health_check", async {
        let reply = c.health_check().await.map_err(e)?;
        ensure!(reply.version == x["server_version"], "version {}", reply.version);
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Point IDs
    let ids = &x["ids"];
    let coll = name("ids");
    fresh(c, &coll).await;
    run.check("ids.create_collection", async {
        let size = ids["size"].as_u64().unwrap();
        let r = c
            .create_collection(
                CreateCollectionBuilder::new(&coll)
                    .vectors_config(VectorParamsBuilder::new(size, Distance::Dot)),
            )
            .await
            .map_err(e)?;
        ensure!(r.result, "create_collection answered false");
        ensure!(c.collection_exists(&coll).await.map_err(e)?, "collection_exists: false");
        Ok(())
    })
    .await;
    run.check("ids.upsert_uuid", async {
        let r = c
            .upsert_points(
                UpsertPointsBuilder::new(
                    &coll,
                    vec![PointStruct::new(
                        ids["uuid"].as_str().unwrap(),
                        floats(&ids["vector"]),
                        payload(&ids["payload"]),
                    )],
                )
                .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("ids.upsert_num", async {
        let r = c
            .upsert_points(
                UpsertPointsBuilder::new(
                    &coll,
                    vec![PointStruct::new(
                        ids["num"].as_u64().unwrap(),
                        floats(&ids["vector"]),
                        payload(&ids["payload"]),
                    )],
                )
                .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("ids.upsert_other_forms", async {
        let mut points: Vec<PointStruct> = ids["other_forms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                PointStruct::new(
                    f["sent"].as_str().unwrap(),
                    floats(&ids["vector"]),
                    payload(&ids["payload"]),
                )
            })
            .collect();
        points.push(PointStruct::new(
            ids["max_u64"].as_u64().unwrap(),
            floats(&ids["vector"]),
            payload(&ids["payload"]),
        ));
        let r = c.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("ids.retrieve", async {
        let order = list(&ids["scroll_order"]);
        let r = c
            .get_points(
                GetPointsBuilder::new(&coll, pids(&ids["scroll_order"]))
                    .with_payload(true)
                    .with_vectors(true),
            )
            .await
            .map_err(e)?;
        let mut got = ids_of(&r.result);
        got.sort_by_key(|j| j.to_string());
        let mut want = order.clone();
        want.sort_by_key(|j| j.to_string());
        ensure!(got == want, "ids {got:?}, want {want:?}");
        for p in &r.result {
            cmp.payload("payload", &p.payload, &ids["payload"])?;
            cmp.dense("vector", p.vectors.as_ref().and_then(|v| v.get_vector()), &ids["vector"])?;
        }
        Ok(())
    })
    .await;
    run.check("ids.scroll_order", async {
        let r = c.scroll(ScrollPointsBuilder::new(&coll).limit(10)).await.map_err(e)?;
        let want = list(&ids["scroll_order"]);
        ensure!(ids_of(&r.result) == want, "ids {:?}, want {want:?}", ids_of(&r.result));
        ensure!(r.next_page_offset.is_none(), "next_page_offset {:?}", r.next_page_offset);
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Upload points
    let up = &x["upload"];
    let coll = name("upload");
    fresh(c, &coll).await;
    run.check("upload.create_collection", async {
        c.create_collection(CreateCollectionBuilder::new(&coll).vectors_config(
            VectorParamsBuilder::new(up["size"].as_u64().unwrap(), Distance::Dot),
        ))
        .await
        .map_err(e)?;
        Ok(())
    })
    .await;
    let upload_points = || -> Vec<PointStruct> {
        up["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| PointStruct::new(pid(&p["id"]), floats(&p["vector"]), payload(&p["payload"])))
            .collect()
    };
    run.check("upload.records", async {
        let r = c
            .upsert_points(UpsertPointsBuilder::new(&coll, upload_points()).wait(true))
            .await
            .map_err(e)?;
        completed(r.result)?;
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == up["count"].as_u64(), "count {n:?}");
        Ok(())
    })
    .await;
    run.check("upload.idempotent", async {
        c.upsert_points(UpsertPointsBuilder::new(&coll, upload_points()).wait(true))
            .await
            .map_err(e)?;
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == up["count"].as_u64(), "count {n:?}");
        let r = c
            .get_points(GetPointsBuilder::new(&coll, pids(&J::from(vec![2]))).with_payload(true))
            .await
            .map_err(e)?;
        ensure!(r.result.len() == 1, "{} points", r.result.len());
        cmp.payload("payload", &r.result[0].payload, &up["points"][1]["payload"])
    })
    .await;

    // ------------------------------------------------------------------ Named vectors
    let nv = &x["named"];
    let coll = name("named");
    fresh(c, &coll).await;
    run.check("named.create_collection", async {
        let mut config = VectorsConfigBuilder::default();
        config.add_named_vector_params(
            "image",
            VectorParamsBuilder::new(nv["image_size"].as_u64().unwrap(), Distance::Dot),
        );
        config.add_named_vector_params(
            "text",
            VectorParamsBuilder::new(nv["text_size"].as_u64().unwrap(), Distance::Dot),
        );
        c.create_collection(CreateCollectionBuilder::new(&coll).vectors_config(config))
            .await
            .map_err(e)?;
        Ok(())
    })
    .await;
    let named_map = |p: &J| -> HashMap<String, Vec<f32>> {
        ["image", "text"]
            .iter()
            .filter(|n| !p[**n].is_null())
            .map(|n| (n.to_string(), floats(&p[*n])))
            .collect()
    };
    run.check("named.upsert", async {
        let points: Vec<PointStruct> = nv["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| PointStruct::new(pid(&p["id"]), named_map(p), Payload::default()))
            .collect();
        let r = c.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)
    })
    .await;
    let check_named = |p: &RetrievedPoint, want: &J| -> Check {
        let mut want_names: Vec<String> =
            ["image", "text"].iter().filter(|n| !want[**n].is_null()).map(|n| n.to_string()).collect();
        want_names.sort();
        let got_names = named(&p.vectors);
        ensure!(got_names == want_names, "point {}: vectors {got_names:?}, want {want_names:?}", want["id"]);
        for n in &want_names {
            let got = p.vectors.as_ref().and_then(|v| v.get_vector_by_name(n));
            cmp.dense(&format!("point {} {n}", want["id"]), got, &want[n.as_str()])?;
        }
        Ok(())
    };
    let get_one = |id: J, vectors: WithVectorsSelector| {
        let coll = coll.clone();
        async move {
            let r = c
                .get_points(
                    GetPointsBuilder::new(&coll, vec![pid(&id)])
                        .with_vectors(vectors.selector_options.expect("a selector")),
                )
                .await
                .map_err(e)?;
            ensure!(r.result.len() == 1, "point {id}: {} points", r.result.len());
            Ok::<RetrievedPoint, String>(r.result.into_iter().next().unwrap())
        }
    };
    run.check("named.retrieve", async {
        for want in nv["points"].as_array().unwrap() {
            let p = get_one(want["id"].clone(), true.into()).await?;
            check_named(&p, want)?;
        }
        Ok(())
    })
    .await;
    run.check("named.replace_point", async {
        let rep = &nv["replace"];
        c.upsert_points(
            UpsertPointsBuilder::new(
                &coll,
                vec![PointStruct::new(pid(&rep["id"]), named_map(rep), Payload::default())],
            )
            .wait(true),
        )
        .await
        .map_err(e)?;
        let p = get_one(rep["id"].clone(), true.into()).await?;
        check_named(&p, rep)
    })
    .await;
    run.check("named.update_vectors", async {
        let points: Vec<PointVectors> = nv["update"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| PointVectors { id: Some(pid(&u["id"])), vectors: Some(named_map(u).into()) })
            .collect();
        let r = c
            .update_vectors(UpdatePointVectorsBuilder::new(&coll, points).wait(true))
            .await
            .map_err(e)?;
        completed(r.result)?;
        for want in nv["after_update"].as_array().unwrap() {
            let p = get_one(want["id"].clone(), true.into()).await?;
            check_named(&p, want)?;
        }
        Ok(())
    })
    .await;
    run.check("named.update_vectors_missing_point", async {
        let missing = &nv["missing_id"];
        let image = HashMap::from([("image".to_string(), floats(&nv["points"][0]["image"]))]);
        let r = c
            .update_vectors(
                UpdatePointVectorsBuilder::new(
                    &coll,
                    vec![PointVectors { id: Some(pid(missing)), vectors: Some(image.into()) }],
                )
                .wait(true),
            )
            .await;
        match r {
            Err(QdrantError::ResponseError { status }) => {
                let code = format!("{:?}", status.code());
                ensure!(code == "NotFound", "status {code}: {}", status.message());
                Ok(())
            }
            other => Err(format!("want NotFound, got {other:?}")),
        }
    })
    .await;
    run.check("named.with_vectors_include", async {
        let p = get_one(J::from(1), vec!["text"].into()).await?;
        let names = named(&p.vectors);
        ensure!(names == vec!["text".to_string()], "vectors {names:?}");
        Ok(())
    })
    .await;
    run.check("named.delete_vectors", async {
        let ids = pids(&nv["delete_vectors_ids"]);
        let names = strs(&nv["delete_vectors_names"]);
        let r = c
            .delete_vectors(
                DeletePointVectorsBuilder::new(&coll)
                    .points_selector(PointsIdsList { ids: ids.clone() })
                    .vectors(names.into_iter().map(String::from).collect::<Vec<String>>())
                    .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        for id in list(&nv["delete_vectors_ids"]) {
            let p = get_one(id.clone(), true.into()).await?;
            ensure!(named(&p.vectors).is_empty(), "point {id} still has {:?}", named(&p.vectors));
        }
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == nv["count"].as_u64(), "count {n:?}");
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Sparse vectors
    let sp = &x["sparse"];
    let coll = name("sparse");
    let sname = sp["name"].as_str().unwrap();
    fresh(c, &coll).await;
    run.check("sparse.create_collection", async {
        let mut sparse = SparseVectorsConfigBuilder::default();
        sparse.add_named_vector_params(sname, SparseVectorParamsBuilder::default());
        c.create_collection(CreateCollectionBuilder::new(&coll).sparse_vectors_config(sparse))
            .await
            .map_err(e)?;
        Ok(())
    })
    .await;
    let pairs = |p: &J| -> Vec<(u32, f32)> {
        u32s(&p["indices"]).into_iter().zip(floats(&p["values"])).collect()
    };
    run.check("sparse.upsert", async {
        let points: Vec<PointStruct> = sp["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                PointStruct::new(
                    pid(&p["id"]),
                    HashMap::from([(sname.to_string(), pairs(p))]),
                    Payload::default(),
                )
            })
            .collect();
        let r = c.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("sparse.retrieve", async {
        for want in sp["stored"].as_array().unwrap() {
            let r = c
                .get_points(GetPointsBuilder::new(&coll, vec![pid(&want["id"])]).with_vectors(true))
                .await
                .map_err(e)?;
            ensure!(r.result.len() == 1, "point {}: {} points", want["id"], r.result.len());
            let got = r.result[0].vectors.as_ref().and_then(|v| v.get_vector_by_name(sname));
            match got {
                Some(vector_output::Vector::Sparse(s)) => {
                    ensure!(s.indices == u32s(&want["indices"]), "point {}: indices {:?}", want["id"], s.indices);
                    cmp.floats(&format!("point {} values", want["id"]), &s.values, &floats(&want["values"]))?;
                }
                other => return Err(format!("point {}: got {other:?}", want["id"])),
            }
        }
        Ok(())
    })
    .await;
    run.check("sparse.query", async {
        let r = c
            .query(
                QueryPointsBuilder::new(&coll)
                    .query(pairs(&sp["query"]))
                    .using(sname)
                    .limit(sp["limit"].as_u64().unwrap()),
            )
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &sp["hits"])
    })
    .await;

    // ------------------------------------------------------------------ Multivectors
    let mv = &x["multi"];
    let coll = name("multi");
    fresh(c, &coll).await;
    run.check("multi.create_collection", async {
        c.create_collection(
            CreateCollectionBuilder::new(&coll).vectors_config(
                VectorParamsBuilder::new(mv["size"].as_u64().unwrap(), Distance::Dot)
                    .multivector_config(MultiVectorConfigBuilder::new(MultiVectorComparator::MaxSim)),
            ),
        )
        .await
        .map_err(e)?;
        Ok(())
    })
    .await;
    run.check("multi.upsert", async {
        let points: Vec<PointStruct> = mv["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| PointStruct::new(pid(&p["id"]), Vector::new_multi(rows(&p["rows"])), Payload::default()))
            .collect();
        let r = c.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("multi.retrieve", async {
        for want in mv["points"].as_array().unwrap() {
            let r = c
                .get_points(GetPointsBuilder::new(&coll, vec![pid(&want["id"])]).with_vectors(true))
                .await
                .map_err(e)?;
            ensure!(r.result.len() == 1, "point {}: {} points", want["id"], r.result.len());
            match r.result[0].vectors.as_ref().and_then(|v| v.get_vector()) {
                Some(vector_output::Vector::MultiDense(m)) => {
                    let want_rows = rows(&want["rows"]);
                    ensure!(m.vectors.len() == want_rows.len(), "point {}: {m:?}", want["id"]);
                    for (g, w) in m.vectors.iter().zip(&want_rows) {
                        cmp.floats(&format!("point {}", want["id"]), &g.data, w)?;
                    }
                }
                other => return Err(format!("point {}: got {other:?}", want["id"])),
            }
        }
        Ok(())
    })
    .await;
    run.check("multi.query", async {
        let r = c
            .query(QueryPointsBuilder::new(&coll).query(rows(&mv["query"])))
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &mv["hits"])
    })
    .await;

    // ------------------------------------------------------------------ Points: read, scroll, count, search, delete
    let pt = &x["points"];
    let coll = name("points");
    fresh(c, &coll).await;
    run.check("points.create_collection_and_indexes", async {
        c.create_collection(CreateCollectionBuilder::new(&coll).vectors_config(
            VectorParamsBuilder::new(pt["size"].as_u64().unwrap(), Distance::Dot),
        ))
        .await
        .map_err(e)?;
        let r = c
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(&coll, "timestamp", FieldType::Integer).wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        let r = c
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(&coll, "color", FieldType::Keyword).wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)
    })
    .await;
    run.check("points.upsert", async {
        let points: Vec<PointStruct> = pt["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| PointStruct::new(pid(&p["id"]), floats(&p["vector"]), payload(&p["payload"])))
            .collect();
        let r = c.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)
    })
    .await;
    let by_id = |id: &J| pt["points"].as_array().unwrap().iter().find(|p| &p["id"] == id).unwrap().clone();
    run.check("points.retrieve", async {
        // As the chapter writes it: ids only, payload and vectors left to the defaults.
        let r = c
            .get_points(GetPointsBuilder::new(&coll, pids(&pt["retrieve"]["ids"])))
            .await
            .map_err(e)?;
        let mut got = ids_of(&r.result);
        got.sort_by_key(|j| j.as_u64());
        ensure!(got == list(&pt["retrieve"]["found"]), "ids {got:?}");
        Ok(())
    })
    .await;
    run.check("points.retrieve_with_payload_and_vectors", async {
        let r = c
            .get_points(
                GetPointsBuilder::new(&coll, pids(&pt["retrieve_full"]))
                    .with_payload(true)
                    .with_vectors(true),
            )
            .await
            .map_err(e)?;
        ensure!(r.result.len() == 2, "{} points", r.result.len());
        for p in &r.result {
            let want = by_id(&id_json(&p.id));
            cmp.payload("payload", &p.payload, &want["payload"])?;
            cmp.dense("vector", p.vectors.as_ref().and_then(|v| v.get_vector()), &want["vector"])?;
        }
        Ok(())
    })
    .await;
    let sf = &pt["scroll_first"];
    let red = sf["color"].as_str().unwrap().to_string();
    run.check("points.scroll_filter", async {
        let r = c
            .scroll(
                ScrollPointsBuilder::new(&coll)
                    .filter(Filter::must([Condition::matches("color", red.clone())]))
                    .limit(sf["limit"].as_u64().unwrap() as u32)
                    .with_payload(true)
                    .with_vectors(false),
            )
            .await
            .map_err(e)?;
        ensure!(ids_of(&r.result) == list(&sf["ids"]), "ids {:?}", ids_of(&r.result));
        let p = &r.result[0];
        cmp.payload("payload", &p.payload, &by_id(&sf["ids"][0])["payload"])?;
        ensure!(p.vectors.is_none(), "vectors returned: {:?}", p.vectors);
        ensure!(id_json(&r.next_page_offset) == sf["next_page_offset"], "next_page_offset {:?}", r.next_page_offset);
        Ok(())
    })
    .await;
    run.check("points.scroll_pages", async {
        let mut seen = vec![];
        let mut offset: Option<PointId> = None;
        for _ in 0..10 {
            let mut b = ScrollPointsBuilder::new(&coll)
                .filter(Filter::must([Condition::matches("color", red.clone())]))
                .limit(1);
            if let Some(o) = offset.take() {
                b = b.offset(o);
            }
            let r = c.scroll(b).await.map_err(e)?;
            seen.extend(ids_of(&r.result));
            match r.next_page_offset {
                Some(o) => offset = Some(o),
                None => break,
            }
        }
        ensure!(seen == list(&pt["scroll_all_red"]), "ids {seen:?}");
        Ok(())
    })
    .await;
    let ob = &pt["order_by"];
    let order_values = |points: &[RetrievedPoint]| -> Vec<J> {
        use qdrant_client::qdrant::order_value::Variant;
        points
            .iter()
            .map(|p| match p.order_value.as_ref().and_then(|o| o.variant.clone()) {
                Some(Variant::Int(i)) => J::from(i),
                Some(Variant::Float(f)) => J::from(f),
                None => J::Null,
            })
            .collect()
    };
    run.check("points.scroll_order_by", async {
        let r = c
            .scroll(
                ScrollPointsBuilder::new(&coll)
                    .limit(ob["limit"].as_u64().unwrap() as u32)
                    .order_by(OrderByBuilder::new(ob["key"].as_str().unwrap())),
            )
            .await
            .map_err(e)?;
        ensure!(ids_of(&r.result) == list(&ob["ids"]), "ids {:?}", ids_of(&r.result));
        ensure!(order_values(&r.result) == list(&ob["values"]), "order values {:?}", order_values(&r.result));
        ensure!(r.next_page_offset.is_none(), "next_page_offset {:?}", r.next_page_offset);
        Ok(())
    })
    .await;
    run.check("points.scroll_order_by_desc_start_from", async {
        let obd = &pt["order_by_desc"];
        let r = c
            .scroll(
                ScrollPointsBuilder::new(&coll).limit(ob["limit"].as_u64().unwrap() as u32).order_by(
                    OrderByBuilder::new(ob["key"].as_str().unwrap())
                        .direction(Direction::Desc.into())
                        .start_from(start_from::Value::Integer(obd["start_from"].as_i64().unwrap()))
                        .build(),
                ),
            )
            .await
            .map_err(e)?;
        ensure!(ids_of(&r.result) == list(&obd["ids"]), "ids {:?}", ids_of(&r.result));
        ensure!(order_values(&r.result) == list(&obd["values"]), "order values {:?}", order_values(&r.result));
        Ok(())
    })
    .await;
    run.check("points.count_filter", async {
        let r = c
            .count(
                CountPointsBuilder::new(&coll)
                    .filter(Filter::must([Condition::matches("color", red.clone())]))
                    .exact(true),
            )
            .await
            .map_err(e)?;
        let n = r.result.map(|r| r.count);
        ensure!(n == pt["count_red"].as_u64(), "count {n:?}");
        let r = c.count(CountPointsBuilder::new(&coll)).await.map_err(e)?;
        let n = r.result.map(|r| r.count);
        ensure!(n == pt["count_all"].as_u64(), "count all {n:?}");
        Ok(())
    })
    .await;
    run.check("points.query_filter", async {
        let q = &pt["query_red"];
        let r = c
            .query(
                QueryPointsBuilder::new(&coll)
                    .query(floats(&q["vector"]))
                    .filter(Filter::must([Condition::matches("color", q["color"].as_str().unwrap().to_string())]))
                    .limit(q["limit"].as_u64().unwrap())
                    .with_payload(true),
            )
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &q["hits"])?;
        for p in &r.result {
            cmp.payload("payload", &p.payload, &by_id(&id_json(&p.id))["payload"])?;
        }
        let q = &pt["query_all"];
        let r = c
            .query(QueryPointsBuilder::new(&coll).query(floats(&q["vector"])).limit(q["limit"].as_u64().unwrap()))
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &q["hits"])
    })
    .await;
    run.check("points.search_filter", async {
        let q = &pt["search_not_red"];
        let r = c
            .search_points(
                SearchPointsBuilder::new(&coll, floats(&q["vector"]), q["limit"].as_u64().unwrap())
                    .filter(Filter::must_not([Condition::matches(
                        "color",
                        q["color"].as_str().unwrap().to_string(),
                    )])),
            )
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &q["hits"])
    })
    .await;

    // ------------------------------------------------------------------ Payload
    let pl = &x["payload"];
    let retrieve_payload = |id: J| {
        let coll = coll.clone();
        async move {
            let r = c
                .get_points(GetPointsBuilder::new(&coll, vec![pid(&id)]).with_payload(true))
                .await
                .map_err(e)?;
            ensure!(r.result.len() == 1, "point {id}: {} points", r.result.len());
            Ok::<HashMap<String, Value>, String>(r.result.into_iter().next().unwrap().payload)
        }
    };
    run.check("payload.set", async {
        let s = &pl["set"];
        let r = c
            .set_payload(
                SetPayloadPointsBuilder::new(&coll, payload(&s["payload"]))
                    .points_selector(PointsIdsList { ids: vec![pid(&s["id"])] })
                    .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        cmp.payload("payload", &retrieve_payload(s["id"].clone()).await?, &s["expected"])
    })
    .await;
    run.check("payload.overwrite", async {
        let o = &pl["overwrite"];
        let r = c
            .overwrite_payload(
                SetPayloadPointsBuilder::new(&coll, payload(&o["payload"]))
                    .points_selector(PointsSelectorOneOf::Points(PointsIdsList { ids: vec![pid(&o["id"])] }))
                    .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        cmp.payload("payload", &retrieve_payload(o["id"].clone()).await?, &o["payload"])
    })
    .await;
    run.check("payload.delete_keys_by_filter", async {
        let d = &pl["delete"];
        let r = c
            .delete_payload(
                DeletePayloadPointsBuilder::new(&coll, strs(&d["keys"]))
                    .points_selector(Filter::must([Condition::matches(
                        "color",
                        d["color"].as_str().unwrap().to_string(),
                    )]))
                    .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        for want in d["expected"].as_array().unwrap() {
            cmp.payload(&format!("point {}", want["id"]), &retrieve_payload(want["id"].clone()).await?, &want["payload"])?;
        }
        Ok(())
    })
    .await;
    run.check("payload.clear", async {
        let id = &pl["clear"]["id"];
        let r = c
            .clear_payload(
                ClearPayloadPointsBuilder::new(&coll).points(PointsIdsList { ids: vec![pid(id)] }).wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        let got = retrieve_payload(id.clone()).await?;
        ensure!(got.is_empty(), "payload {got:?}");
        Ok(())
    })
    .await;

    run.check("points.delete_ids", async {
        let r = c
            .delete_points(
                DeletePointsBuilder::new(&coll).points(PointsIdsList { ids: pids(&pt["delete_ids"]) }).wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == pt["count_after_delete_ids"].as_u64(), "count {n:?}");
        Ok(())
    })
    .await;
    run.check("points.delete_filter", async {
        let r = c
            .delete_points(
                DeletePointsBuilder::new(&coll)
                    .points(Filter::must([Condition::matches(
                        "color",
                        pt["delete_color"].as_str().unwrap().to_string(),
                    )]))
                    .wait(true),
            )
            .await
            .map_err(e)?;
        completed(r.result)?;
        let r = c.scroll(ScrollPointsBuilder::new(&coll).limit(100)).await.map_err(e)?;
        ensure!(ids_of(&r.result) == list(&pt["left_after_delete_filter"]), "ids {:?}", ids_of(&r.result));
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Awaiting result
    run.check("wait.false_then_true", async {
        let w = &x["wait"];
        let p = &w["point"];
        let point = || PointStruct::new(pid(&p["id"]), floats(&p["vector"]), payload(&p["payload"]));
        let r = c
            .upsert_points(UpsertPointsBuilder::new(&coll, vec![point()]).wait(false))
            .await
            .map_err(e)?;
        let status = r.result.as_ref().map(|r| r.status);
        ensure!(
            status == Some(UpdateStatus::Acknowledged as i32) || status == Some(UpdateStatus::Completed as i32),
            "wait=false status {status:?}"
        );
        let r = c
            .upsert_points(UpsertPointsBuilder::new(&coll, vec![point()]).wait(true))
            .await
            .map_err(e)?;
        completed(r.result)?;
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == w["count_after"].as_u64(), "count {n:?}");
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Batch update
    let bt = &x["batch"];
    let coll = name("batch");
    fresh(c, &coll).await;
    let one = || -> PointsSelectorOneOf { PointsIdsList { ids: vec![pid(&bt["id"])] }.into() };
    let int_payload = |j: &J| -> HashMap<String, Value> {
        j.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap().into())).collect()
    };
    let first_six = || -> Vec<PointsUpdateOperation> {
        vec![
            PointsUpdateOperation {
                operation: Some(Operation::Upsert(PointStructList {
                    points: vec![PointStruct::new(pid(&bt["id"]), floats(&bt["vector"]), Payload::default())],
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::UpdateVectors(UpdateVectors {
                    points: vec![PointVectors {
                        id: Some(pid(&bt["id"])),
                        vectors: Some(floats(&bt["vector"]).into()),
                    }],
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeleteVectors(DeleteVectors {
                    points_selector: Some(one().into()),
                    vectors: Some(VectorsSelector { names: vec!["".into()] }),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::OverwritePayload(OverwritePayload {
                    points_selector: Some(one().into()),
                    payload: int_payload(&bt["overwrite"]),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::SetPayload(SetPayload {
                    points_selector: Some(one().into()),
                    payload: int_payload(&bt["set"]),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeletePayload(DeletePayload {
                    points_selector: Some(one().into()),
                    keys: strs(&bt["delete_keys"]),
                    ..Default::default()
                })),
            },
        ]
    };
    let last_two = || -> Vec<PointsUpdateOperation> {
        vec![
            PointsUpdateOperation {
                operation: Some(Operation::ClearPayload(ClearPayload {
                    points: Some(one().into()),
                    ..Default::default()
                })),
            },
            PointsUpdateOperation {
                operation: Some(Operation::DeletePoints(DeletePoints {
                    points: Some(one().into()),
                    ..Default::default()
                })),
            },
        ]
    };
    run.check("batch.create_collection", async {
        c.create_collection(CreateCollectionBuilder::new(&coll).vectors_config(
            VectorParamsBuilder::new(bt["size"].as_u64().unwrap(), Distance::Dot),
        ))
        .await
        .map_err(e)?;
        Ok(())
    })
    .await;
    run.check("batch.all_operations", async {
        let mut ops = first_six();
        ops.extend(last_two());
        let r = c
            .update_points_batch(UpdateBatchPointsBuilder::new(&coll, ops).wait(true))
            .await
            .map_err(e)?;
        ensure!(r.result.len() as u64 == bt["results"].as_u64().unwrap(), "{} results", r.result.len());
        for res in r.result {
            completed(Some(res))?;
        }
        let got = c.get_points(GetPointsBuilder::new(&coll, vec![pid(&bt["id"])])).await.map_err(e)?;
        ensure!(got.result.is_empty(), "point still there: {:?}", got.result);
        Ok(())
    })
    .await;
    run.check("batch.state_after_each_step", async {
        c.update_points_batch(UpdateBatchPointsBuilder::new(&coll, first_six()).wait(true))
            .await
            .map_err(e)?;
        let r = c
            .get_points(GetPointsBuilder::new(&coll, vec![pid(&bt["id"])]).with_payload(true).with_vectors(true))
            .await
            .map_err(e)?;
        ensure!(r.result.len() == 1, "{} points", r.result.len());
        let p = &r.result[0];
        cmp.payload("payload", &p.payload, &bt["after_first_six"]["payload"])?;
        ensure!(p.vectors.as_ref().and_then(|v| v.get_vector()).is_none(), "vector left: {:?}", p.vectors);
        let r = c
            .update_points_batch(UpdateBatchPointsBuilder::new(&coll, last_two()).wait(true))
            .await
            .map_err(e)?;
        ensure!(r.result.len() == 2, "{} results", r.result.len());
        let n = c.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        ensure!(n.result.map(|r| r.count) == Some(0), "count {:?}", n.result);
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Message size, compression
    let lg = &x["large"];
    let coll = name("large");
    fresh(c, &coll).await;
    let size = lg["size"].as_u64().unwrap() as usize;
    let large_vector = |i: usize| -> Vec<f32> {
        (0..size).map(|j| ((i * 1009 + j * 17) % 10007) as f32 / 10007.0).collect()
    };
    run.check("limits.large_upsert_gzip", async {
        // A request past gRPC's usual 4 MiB, sent gzip-compressed (the client's `compression`);
        // a minute rather than the client's default 5 s deadline, for a loaded 2-core machine.
        let gz = Qdrant::from_url(&url)
            .compression(Some(CompressionEncoding::Gzip))
            .timeout(std::time::Duration::from_secs(60))
            .skip_compatibility_check()
            .build()
            .map_err(e)?;
        gz.create_collection(
            CreateCollectionBuilder::new(&coll)
                .vectors_config(VectorParamsBuilder::new(size as u64, Distance::Dot)),
        )
        .await
        .map_err(e)?;
        let points: Vec<PointStruct> = (0..lg["count"].as_u64().unwrap() as usize)
            .map(|i| PointStruct::new(i as u64, large_vector(i), Payload::default()))
            .collect();
        let r = gz.upsert_points(UpsertPointsBuilder::new(&coll, points).wait(true)).await.map_err(e)?;
        completed(r.result)?;
        let n = gz.count(CountPointsBuilder::new(&coll).exact(true)).await.map_err(e)?;
        let n = n.result.map(|r| r.count);
        ensure!(n == lg["count"].as_u64(), "count {n:?}");
        let probe = lg["probe_id"].as_u64().unwrap();
        let r = gz
            .get_points(GetPointsBuilder::new(&coll, vec![probe.into()]).with_vectors(true))
            .await
            .map_err(e)?;
        ensure!(r.result.len() == 1, "{} points", r.result.len());
        let got = r.result[0].vectors.as_ref().and_then(|v| v.get_vector());
        match got {
            Some(vector_output::Vector::Dense(d)) => cmp.floats("vector", &d.data, &large_vector(probe as usize)),
            other => Err(format!("vector {other:?}")),
        }
    })
    .await;

    // ------------------------------------------------------------------ Errors
    run.check("errors.missing_collection", async {
        let r = c.count(CountPointsBuilder::new(x["errors"]["missing_collection"].as_str().unwrap())).await;
        match r {
            Err(QdrantError::ResponseError { status }) => {
                let code = format!("{:?}", status.code());
                ensure!(code == "NotFound", "status {code}: {}", status.message());
                Ok(())
            }
            other => Err(format!("want NotFound, got {other:?}")),
        }
    })
    .await;
    run.check("errors.wrong_dimension", async {
        let coll = name("points");
        let r = c
            .upsert_points(
                UpsertPointsBuilder::new(
                    &coll,
                    vec![PointStruct::new(999, floats(&x["errors"]["wrong_dim_vector"]), Payload::default())],
                )
                .wait(true),
            )
            .await;
        match r {
            Err(QdrantError::ResponseError { status }) => {
                let code = format!("{:?}", status.code());
                ensure!(code == "InvalidArgument", "status {code}: {}", status.message());
                Ok(())
            }
            other => Err(format!("want InvalidArgument, got {other:?}")),
        }
    })
    .await;

    // ------------------------------------------------------------------ Collections
    run.check("collections.errors", async {
        let cx = &x["collections"];
        let existing = format!("rust_{}", cx["existing"].as_str().unwrap());
        let r = c
            .create_collection(
                CreateCollectionBuilder::new(&existing).vectors_config(VectorParamsBuilder::new(3, Distance::Dot)),
            )
            .await;
        fails_with("creating an existing collection", r, &cx["codes"]["create_existing"])?;
        let r = c.delete_collection(cx["missing"].as_str().unwrap()).await.map_err(e)?;
        ensure!(!r.result, "deleting a missing collection answered true");
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Aliases
    let al = &x["aliases"];
    let coll = format!("rust_{}", al["collection"].as_str().unwrap());
    let alias = format!("rust_{}", al["alias"].as_str().unwrap());
    let renamed = format!("rust_{}", al["renamed"].as_str().unwrap());
    let count_of = |target: String| async move {
        let r = c.count(CountPointsBuilder::new(target).exact(true)).await;
        r.map(|r| r.result.map(|r| r.count))
    };
    // The program's aliases in ListAliases (the others' are left out), sorted.
    let own_aliases = || async {
        let r = c.list_aliases().await.map_err(e)?;
        let mut got: Vec<(String, String)> = r
            .aliases
            .into_iter()
            .filter(|a| a.alias_name.starts_with("rust_"))
            .map(|a| (a.alias_name, a.collection_name))
            .collect();
        got.sort();
        Ok::<_, String>(got)
    };
    let collection_aliases = || async {
        let r = c.list_collection_aliases(coll.as_str()).await.map_err(e)?;
        let mut got: Vec<String> = r.aliases.into_iter().map(|a| a.alias_name).collect();
        got.sort();
        Ok::<_, String>(got)
    };
    let _ = c.delete_alias(alias.as_str()).await;
    let _ = c.delete_alias(renamed.as_str()).await;
    run.check("aliases.create", async {
        let r = c.create_alias(CreateAliasBuilder::new(&coll, &alias)).await.map_err(e)?;
        ensure!(r.result, "create_alias answered false");
        Ok(())
    })
    .await;
    run.check("aliases.list", async {
        let got = own_aliases().await?;
        ensure!(got == vec![(alias.clone(), coll.clone())], "list_aliases {got:?}");
        let got = collection_aliases().await?;
        ensure!(got == vec![alias.clone()], "list_collection_aliases {got:?}");
        let r = c.list_collection_aliases(al["missing_collection"].as_str().unwrap()).await.map_err(e)?;
        ensure!(r.aliases.is_empty(), "aliases of a missing collection: {:?}", r.aliases);
        Ok(())
    })
    .await;
    run.check("aliases.count_and_query", async {
        let n = count_of(alias.clone()).await.map_err(e)?;
        ensure!(n == al["count"].as_u64(), "count through the alias {n:?}");
        let q = &al["query"];
        let r = c
            .query(QueryPointsBuilder::new(&alias).query(floats(&q["vector"])).limit(q["limit"].as_u64().unwrap()))
            .await
            .map_err(e)?;
        cmp.hits(&r.result, &q["hits"])
    })
    .await;
    run.check("aliases.collection_ops", async {
        ensure!(c.collection_exists(&alias).await.map_err(e)?, "collection_exists through the alias: false");
        // Qdrant deletes a collection by its own name only: through an alias, nothing (false).
        let r = c.delete_collection(alias.as_str()).await.map_err(e)?;
        ensure!(!r.result, "deleting through the alias answered true");
        let n = count_of(coll.clone()).await.map_err(e)?;
        ensure!(n == al["count"].as_u64(), "the collection's count after {n:?}");
        let got = collection_aliases().await?;
        ensure!(got == vec![alias.clone()], "list_collection_aliases after {got:?}");
        Ok(())
    })
    .await;
    run.check("aliases.rename", async {
        let r = c.rename_alias(RenameAliasBuilder::new(&alias, &renamed)).await.map_err(e)?;
        ensure!(r.result, "rename_alias answered false");
        let got = collection_aliases().await?;
        ensure!(got == vec![renamed.clone()], "list_collection_aliases {got:?}");
        let n = count_of(renamed.clone()).await.map_err(e)?;
        ensure!(n == al["count"].as_u64(), "count through the new name {n:?}");
        fails_with("count through the old name", count_of(alias.clone()).await, &al["codes"]["use_removed_alias"])
    })
    .await;
    run.check("aliases.delete", async {
        let r = c.delete_alias(renamed.as_str()).await.map_err(e)?;
        ensure!(r.result, "delete_alias answered false");
        let got = collection_aliases().await?;
        ensure!(got.is_empty(), "list_collection_aliases {got:?}");
        let got = own_aliases().await?;
        ensure!(got.is_empty(), "list_aliases {got:?}");
        fails_with("count through the deleted alias", count_of(renamed.clone()).await, &al["codes"]["use_removed_alias"])?;
        // Qdrant's "delete alias if exists": a missing one is no error.
        let r = c.delete_alias(renamed.as_str()).await.map_err(e)?;
        ensure!(r.result, "deleting a missing alias answered false");
        let n = count_of(coll.clone()).await.map_err(e)?;
        ensure!(n == al["count"].as_u64(), "the collection's count after {n:?}");
        Ok(())
    })
    .await;
    run.check("aliases.errors", async {
        let codes = &al["codes"];
        let missing = al["missing_collection"].as_str().unwrap();
        let r = c.create_alias(CreateAliasBuilder::new(missing, &alias)).await;
        fails_with("alias of a missing collection", r, &codes["create_for_missing_collection"])?;
        let taken = format!("rust_{}", al["named_as_collection"].as_str().unwrap());
        let r = c.create_alias(CreateAliasBuilder::new(&coll, &taken)).await;
        fails_with("alias named as a collection", r, &codes["create_named_as_collection"])?;
        let r = c.rename_alias(RenameAliasBuilder::new(al["missing_alias"].as_str().unwrap(), &alias)).await;
        fails_with("rename of a missing alias", r, &codes["rename_missing_alias"])?;
        let got = own_aliases().await?;
        ensure!(got.is_empty(), "aliases left: {got:?}");
        Ok(())
    })
    .await;

    // ------------------------------------------------------------------ Snapshots
    let sn = &x["snapshots"];
    let coll = format!("rust_{}", sn["collection"].as_str().unwrap());
    let prefix = format!("{coll}-");
    let made: std::cell::RefCell<Option<SnapshotDescription>> = Default::default();
    run.check("snapshots.create", async {
        let r = c.create_snapshot(coll.as_str()).await.map_err(e)?;
        let d = r.snapshot_description.ok_or("no snapshot_description")?;
        snapshot_described("created", &d, &prefix, sn)?;
        *made.borrow_mut() = Some(d);
        Ok(())
    })
    .await;
    run.check("snapshots.list", async {
        let made = made.borrow().clone().ok_or("no snapshot was created")?;
        let r = c.list_snapshots(coll.as_str()).await.map_err(e)?;
        let found: Vec<_> = r.snapshot_descriptions.iter().filter(|d| d.name == made.name).collect();
        ensure!(found.len() == 1, "{:?} not in {:?}", made.name, r.snapshot_descriptions);
        snapshot_described("listed", found[0], &prefix, sn)?;
        ensure!(
            found[0].size == made.size && found[0].checksum == made.checksum,
            "listed {:?}, created {made:?}",
            found[0]
        );
        Ok(())
    })
    .await;
    run.check("snapshots.delete", async {
        let made = made.borrow().clone().ok_or("no snapshot was created")?;
        c.delete_snapshot(DeleteSnapshotRequestBuilder::new(&coll, &made.name)).await.map_err(e)?;
        let r = c.list_snapshots(coll.as_str()).await.map_err(e)?;
        ensure!(
            r.snapshot_descriptions.iter().all(|d| d.name != made.name),
            "still listed: {:?}",
            r.snapshot_descriptions
        );
        let r = c.delete_snapshot(DeleteSnapshotRequestBuilder::new(&coll, &made.name)).await;
        fails_with("deleting it again", r, &sn["codes"]["delete_missing"])
    })
    .await;
    run.check("snapshots.errors", async {
        let codes = &sn["codes"];
        let missing = x["aliases"]["missing_collection"].as_str().unwrap();
        fails_with("create for a missing collection", c.create_snapshot(missing).await, &codes["create_for_missing_collection"])?;
        fails_with("list for a missing collection", c.list_snapshots(missing).await, &codes["list_for_missing_collection"])?;
        let r = c.delete_snapshot(DeleteSnapshotRequestBuilder::new(&coll, sn["missing_snapshot"].as_str().unwrap())).await;
        fails_with("delete of a missing snapshot", r, &codes["delete_missing"])?;
        let r = c.delete_full_snapshot(sn["missing_snapshot"].as_str().unwrap()).await;
        fails_with("delete of a missing full snapshot", r, &codes["delete_missing_full"])
    })
    .await;
    run.check("snapshots.through_alias", async {
        // As in Qdrant: the aliased collection's snapshot, named and listed as the collection's.
        let alias = format!("rust_{}", sn["alias"].as_str().unwrap());
        c.create_alias(CreateAliasBuilder::new(&coll, &alias)).await.map_err(e)?;
        let outcome = async {
            let r = c.create_snapshot(alias.as_str()).await.map_err(e)?;
            let d = r.snapshot_description.ok_or("no snapshot_description")?;
            snapshot_described("created through the alias", &d, &prefix, sn)?;
            for (what, target) in [("the collection", &coll), ("the alias", &alias)] {
                let r = c.list_snapshots(target.as_str()).await.map_err(e)?;
                ensure!(
                    r.snapshot_descriptions.iter().any(|l| l.name == d.name),
                    "{:?} not listed through {what}: {:?}",
                    d.name,
                    r.snapshot_descriptions
                );
            }
            c.delete_snapshot(DeleteSnapshotRequestBuilder::new(&alias, &d.name)).await.map_err(e)?;
            let r = c.list_snapshots(coll.as_str()).await.map_err(e)?;
            ensure!(r.snapshot_descriptions.iter().all(|l| l.name != d.name), "still listed: {:?}", r.snapshot_descriptions);
            Ok::<(), String>(())
        }
        .await;
        c.delete_alias(alias.as_str()).await.map_err(e)?;
        outcome
    })
    .await;
    run.check("snapshots.full", async {
        let full_prefix = sn["full_prefix"].as_str().unwrap();
        let r = c.create_full_snapshot().await.map_err(e)?;
        let d = r.snapshot_description.ok_or("no snapshot_description")?;
        snapshot_described("created", &d, full_prefix, sn)?;
        let r = c.list_full_snapshots().await.map_err(e)?;
        let found: Vec<_> = r.snapshot_descriptions.iter().filter(|l| l.name == d.name).collect();
        ensure!(found.len() == 1, "{:?} not in {:?}", d.name, r.snapshot_descriptions);
        snapshot_described("listed", found[0], full_prefix, sn)?;
        ensure!(found[0].size == d.size && found[0].checksum == d.checksum, "listed {:?}, created {d:?}", found[0]);
        c.delete_full_snapshot(d.name.as_str()).await.map_err(e)?;
        let r = c.list_full_snapshots().await.map_err(e)?;
        ensure!(r.snapshot_descriptions.iter().all(|l| l.name != d.name), "still listed: {:?}", r.snapshot_descriptions);
        Ok(())
    })
    .await;

    for key in ["ids", "upload", "named", "sparse", "multi", "points", "batch", "large"] {
        let _ = c.delete_collection(name(key)).await;
    }
    println!("rust: {} passed, {} failed", run.passed, run.failed);
    std::process::exit(if run.failed == 0 { 0 } else { 1 });
}
