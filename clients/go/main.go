// The examples of Qdrant's Points chapter (shared/spec/points.md), written with the official
// Go client (github.com/qdrant/go-client) as the chapter writes them, run against a Tessera
// server's gRPC port and checked against the answers in clients/expectations.json.
//
// Environment: TESSERA_GRPC_HOST (default 127.0.0.1), TESSERA_GRPC_PORT (default 6334),
// TESSERA_EXPECTATIONS (default ../expectations.json), TESSERA_IDLE_S (seconds a second
// connection sits idle beside the other checks, default 0: no keepalive check). Prints one line
// per check and "go: N passed, M failed"; exits 1 when a check failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

type J = any
type M = map[string]any

// ---------------------------------------------------------------------------- JSON helpers

func obj(j J) M           { return j.(M) }
func arr(j J) []any       { return j.([]any) }
func str(j J) string      { return j.(string) }
func get(j J, k string) J { return obj(j)[k] }

func num(j J) float64 {
	f, err := j.(json.Number).Float64()
	if err != nil {
		panic(err)
	}
	return f
}

func u64(j J) uint64 {
	n, err := strconv.ParseUint(string(j.(json.Number)), 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func i64(j J) int64 {
	n, err := j.(json.Number).Int64()
	if err != nil {
		panic(err)
	}
	return n
}

// isInt: a JSON number without a fraction or exponent is an integer payload value.
func isInt(n json.Number) bool { return !strings.ContainsAny(string(n), ".eE") }

func floats(j J) []float32 {
	out := []float32{}
	for _, x := range arr(j) {
		out = append(out, float32(num(x)))
	}
	return out
}

func rows(j J) [][]float32 {
	out := [][]float32{}
	for _, r := range arr(j) {
		out = append(out, floats(r))
	}
	return out
}

func u32s(j J) []uint32 {
	out := []uint32{}
	for _, x := range arr(j) {
		out = append(out, uint32(u64(x)))
	}
	return out
}

func strs(j J) []string {
	out := []string{}
	for _, x := range arr(j) {
		out = append(out, str(x))
	}
	return out
}

func pid(j J) *qdrant.PointId {
	if s, ok := j.(string); ok {
		return qdrant.NewID(s)
	}
	return qdrant.NewIDNum(u64(j))
}

func pids(j J) []*qdrant.PointId {
	out := []*qdrant.PointId{}
	for _, x := range arr(j) {
		out = append(out, pid(x))
	}
	return out
}

// native turns decoded JSON (json.Number) into the Go values NewValueMap takes.
func native(j J) any {
	switch v := j.(type) {
	case json.Number:
		if isInt(v) {
			n, _ := v.Int64()
			return n
		}
		f, _ := v.Float64()
		return f
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = native(x)
		}
		return out
	case M:
		out := M{}
		for k, x := range v {
			out[k] = native(x)
		}
		return out
	}
	return j
}

func payload(j J) map[string]*qdrant.Value {
	return qdrant.NewValueMap(native(j).(M))
}

// idJSON: a returned id in the shape of the expectations (a number or a UUID string).
func idJSON(p *qdrant.PointId) string {
	if p == nil {
		return "null"
	}
	if u, ok := p.PointIdOptions.(*qdrant.PointId_Uuid); ok {
		return strconv.Quote(u.Uuid)
	}
	return strconv.FormatUint(p.GetNum(), 10)
}

func wantIDs(j J) []string {
	out := []string{}
	for _, x := range arr(j) {
		if s, ok := x.(string); ok {
			out = append(out, strconv.Quote(s))
		} else {
			out = append(out, string(x.(json.Number)))
		}
	}
	return out
}

func gotIDs[P interface{ GetId() *qdrant.PointId }](points []P) []string {
	out := []string{}
	for _, p := range points {
		out = append(out, idJSON(p.GetId()))
	}
	return out
}

// ---------------------------------------------------------------------------- comparisons

var tol float64

func fail(format string, args ...any) error { return fmt.Errorf(format, args...) }

func eqFloats(what string, got []float32, want []float32) error {
	if len(got) != len(want) {
		return fail("%s: got %v, want %v", what, got, want)
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > tol {
			return fail("%s: got %v, want %v", what, got, want)
		}
	}
	return nil
}

func eqValue(path string, got *qdrant.Value, want J) error {
	switch w := want.(type) {
	case nil:
		if _, ok := got.GetKind().(*qdrant.Value_NullValue); !ok {
			return fail("%s: got %v, want null", path, got)
		}
	case bool:
		if k, ok := got.GetKind().(*qdrant.Value_BoolValue); !ok || k.BoolValue != w {
			return fail("%s: got %v, want %v", path, got, w)
		}
	case string:
		if k, ok := got.GetKind().(*qdrant.Value_StringValue); !ok || k.StringValue != w {
			return fail("%s: got %v, want %q", path, got, w)
		}
	case json.Number:
		if isInt(w) {
			n, _ := w.Int64()
			if k, ok := got.GetKind().(*qdrant.Value_IntegerValue); !ok || k.IntegerValue != n {
				return fail("%s: got %v, want integer %v", path, got, w)
			}
		} else {
			f, _ := w.Float64()
			if k, ok := got.GetKind().(*qdrant.Value_DoubleValue); !ok || math.Abs(k.DoubleValue-f) > tol {
				return fail("%s: got %v, want double %v", path, got, w)
			}
		}
	case []any:
		k, ok := got.GetKind().(*qdrant.Value_ListValue)
		if !ok || len(k.ListValue.GetValues()) != len(w) {
			return fail("%s: got %v, want %v", path, got, w)
		}
		for i, x := range w {
			if err := eqValue(fmt.Sprintf("%s[%d]", path, i), k.ListValue.GetValues()[i], x); err != nil {
				return err
			}
		}
	case M:
		k, ok := got.GetKind().(*qdrant.Value_StructValue)
		if !ok {
			return fail("%s: got %v, want %v", path, got, w)
		}
		return eqPayload(path, k.StructValue.GetFields(), w)
	}
	return nil
}

func eqPayload(path string, got map[string]*qdrant.Value, want J) error {
	w := obj(want)
	gk, wk := []string{}, []string{}
	for k := range got {
		gk = append(gk, k)
	}
	for k := range w {
		wk = append(wk, k)
	}
	sort.Strings(gk)
	sort.Strings(wk)
	if !reflect.DeepEqual(gk, wk) {
		return fail("%s: keys %v, want %v", path, gk, wk)
	}
	for k, x := range w {
		if err := eqValue(path+"."+k, got[k], x); err != nil {
			return err
		}
	}
	return nil
}

func eqHits(got []*qdrant.ScoredPoint, want J) error {
	ids := []string{}
	for _, h := range arr(want) {
		ids = append(ids, wantIDs([]any{get(h, "id")})...)
	}
	if g := gotIDs(got); !reflect.DeepEqual(g, ids) {
		return fail("ids %v, want %v", g, ids)
	}
	for i, h := range arr(want) {
		if math.Abs(float64(got[i].GetScore())-num(get(h, "score"))) > tol {
			return fail("point %v: score %v, want %v", get(h, "id"), got[i].GetScore(), get(h, "score"))
		}
	}
	return nil
}

func completed(r *qdrant.UpdateResult, err error) error {
	if err != nil {
		return err
	}
	if r.GetStatus() != qdrant.UpdateStatus_Completed {
		return fail("update status %v, want Completed", r.GetStatus())
	}
	return nil
}

func wantCode(err error, code codes.Code) error {
	if err == nil {
		return fail("no error, want %v", code)
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == code {
		return nil
	}
	if st, ok := status.FromError(err); ok && st.Code() == code {
		return nil
	}
	return fail("want %v, got %v", code, err)
}

// codeNamed: the gRPC status code of a canonical name as expectations.json writes them
// ("NOT_FOUND"; grpc-go spells it NotFound).
func codeNamed(name J) codes.Code {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		camel, canonical := c.String(), ""
		for i, ch := range camel {
			if i > 0 && ch >= 'A' && ch <= 'Z' {
				canonical += "_"
			}
			canonical += strings.ToUpper(string(ch))
		}
		if canonical == str(name) {
			return c
		}
	}
	panic("no gRPC status code " + str(name))
}

// snapshotDescribed: a snapshot's name (prefix...".snapshot"), a size, a SHA-256 checksum in
// lower-case hex and a creation time.
func snapshotDescribed(what string, d *qdrant.SnapshotDescription, prefix string, sn J) error {
	if !strings.HasPrefix(d.GetName(), prefix) || !strings.HasSuffix(d.GetName(), str(get(sn, "suffix"))) {
		return fail("%s: name %q", what, d.GetName())
	}
	if d.GetSize() <= 0 {
		return fail("%s: size %d", what, d.GetSize())
	}
	sum := d.GetChecksum()
	if uint64(len(sum)) != u64(get(sn, "checksum_hex_length")) || strings.Trim(sum, "0123456789abcdef") != "" {
		return fail("%s: checksum %q", what, sum)
	}
	if d.GetCreationTime() == nil {
		return fail("%s: no creation_time", what)
	}
	return nil
}

func vectorNames(v *qdrant.VectorsOutput) []string {
	out := []string{}
	for n := range v.GetVectors().GetVectors() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------- the run

// run counts the checks. known: the expectations' known_failures ("go:<check>" -> why): such a
// check failing is reported and not counted; passing, it fails so that the entry is removed.
type run struct {
	passed, failed, known int
	knownFailures         M
}

func (r *run) check(name string, f func() error) {
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return f()
	}()
	why, known := r.knownFailures["go:"+name]
	switch {
	case err != nil && known:
		r.known++
		fmt.Printf("known %s: %v\n      (%s)\n", name, err, why)
	case err != nil:
		r.failed++
		fmt.Printf("FAIL  %s: %v\n", name, err)
	case known:
		r.failed++
		fmt.Printf("FAIL  %s: passes now; remove it from known_failures in clients/expectations.json\n", name)
	default:
		r.passed++
		fmt.Printf("ok    %s\n", name)
	}
}

// largeVector: point i's vector of the "large" expectations.
func largeVector(i, size int) []float32 {
	v := make([]float32, size)
	for j := range v {
		v[j] = float32((i*1009+j*17)%10007) / 10007
	}
	return v
}

// watchIdle opens its own connection, then sits idle on it for `idle` seconds and reports
// whether the server closed it meanwhile.
func watchIdle(client *qdrant.Client, idle int) error {
	ctx := context.Background()
	if _, err := client.HealthCheck(ctx); err != nil {
		return err
	}
	conn := client.GetConnection()
	start := time.Now()
	deadline := start.Add(time.Duration(idle) * time.Second)
	for time.Now().Before(deadline) {
		state := conn.GetState()
		if state != connectivity.Ready {
			return fail("after %.0f s idle the connection is %v: the server closed it", time.Since(start).Seconds(), state)
		}
		wait, cancel := context.WithDeadline(ctx, deadline)
		conn.WaitForStateChange(wait, state)
		cancel()
	}
	_, err := client.HealthCheck(ctx)
	return err
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	raw, err := os.ReadFile(env("TESSERA_EXPECTATIONS", "../expectations.json"))
	if err != nil {
		panic(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x M
	if err := dec.Decode(&x); err != nil {
		panic(err)
	}
	tol = num(x["tolerance"])
	name := func(key string) string { return "go_" + str(get(x[key], "collection")) }
	port, _ := strconv.Atoi(env("TESSERA_GRPC_PORT", "6334"))

	client, err := qdrant.NewClient(&qdrant.Config{
		Host: env("TESSERA_GRPC_HOST", "127.0.0.1"),
		Port: port,
	})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx := context.Background()
	r := &run{knownFailures: obj(x["known_failures"])}

	// Keep-alive: the client pings an idle connection every 10 s (PermitWithoutStream). A
	// server that counts those pings as abuse answers GOAWAY (too_many_pings) and drops the
	// connection. A second client sits idle beside the other checks; its check comes last.
	idle, _ := strconv.Atoi(env("TESSERA_IDLE_S", "0"))
	idleDone := make(chan error, 1)
	if idle > 0 {
		idleClient, err := qdrant.NewClient(&qdrant.Config{
			Host: env("TESSERA_GRPC_HOST", "127.0.0.1"), Port: port, PoolSize: 1, SkipCompatibilityCheck: true,
		})
		if err != nil {
			panic(err)
		}
		defer idleClient.Close()
		go func() { idleDone <- watchIdle(idleClient, idle) }()
	}
	fresh := func(coll string) { _ = client.DeleteCollection(ctx, coll) }
	count := func(coll string, filter *qdrant.Filter) (uint64, error) {
		return client.Count(ctx, &qdrant.CountPoints{CollectionName: coll, Filter: filter, Exact: qdrant.PtrOf(true)})
	}
	wantCount := func(coll string, want J) error {
		n, err := count(coll, nil)
		if err != nil {
			return err
		}
		if n != u64(want) {
			return fail("count %d, want %v", n, want)
		}
		return nil
	}

	r.check("health_check", func() error {
		reply, err := client.HealthCheck(ctx)
		if err != nil {
			return err
		}
		if reply.GetVersion() != str(x["server_version"]) {
			return fail("version %q", reply.GetVersion())
		}
		return nil
	})

	// ------------------------------------------------------------------ Point IDs
	ids := x["ids"]
	coll := name("ids")
	fresh(coll)
	r.check("ids.create_collection", func() error {
		err := client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size:     u64(get(ids, "size")),
				Distance: qdrant.Distance_Dot,
			}),
		})
		if err != nil {
			return err
		}
		exists, err := client.CollectionExists(ctx, coll)
		if err == nil && !exists {
			return fail("CollectionExists: false")
		}
		return err
	})
	r.check("ids.upsert_uuid", func() error {
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Points: []*qdrant.PointStruct{
				{
					Id:      qdrant.NewID(str(get(ids, "uuid"))),
					Vectors: qdrant.NewVectors(floats(get(ids, "vector"))...),
					Payload: payload(get(ids, "payload")),
				},
			},
		}))
	})
	r.check("ids.upsert_num", func() error {
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Points: []*qdrant.PointStruct{
				{
					Id:      qdrant.NewIDNum(u64(get(ids, "num"))),
					Vectors: qdrant.NewVectors(floats(get(ids, "vector"))...),
					Payload: payload(get(ids, "payload")),
				},
			},
		}))
	})
	r.check("ids.upsert_other_forms", func() error {
		points := []*qdrant.PointStruct{}
		for _, f := range arr(get(ids, "other_forms")) {
			points = append(points, &qdrant.PointStruct{
				Id:      qdrant.NewID(str(get(f, "sent"))),
				Vectors: qdrant.NewVectors(floats(get(ids, "vector"))...),
				Payload: payload(get(ids, "payload")),
			})
		}
		points = append(points, &qdrant.PointStruct{
			Id:      qdrant.NewIDNum(u64(get(ids, "max_u64"))),
			Vectors: qdrant.NewVectors(floats(get(ids, "vector"))...),
			Payload: payload(get(ids, "payload")),
		})
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
	})
	r.check("ids.retrieve", func() error {
		got, err := client.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll,
			Ids:            pids(get(ids, "scroll_order")),
			WithPayload:    qdrant.NewWithPayload(true),
			WithVectors:    qdrant.NewWithVectors(true),
		})
		if err != nil {
			return err
		}
		g, w := gotIDs(got), wantIDs(get(ids, "scroll_order"))
		sort.Strings(g)
		sort.Strings(w)
		if !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		for _, p := range got {
			if err := eqPayload("payload", p.GetPayload(), get(ids, "payload")); err != nil {
				return err
			}
			if err := eqFloats("vector", p.GetVectors().GetVector().GetDenseVector().GetData(), floats(get(ids, "vector"))); err != nil {
				return err
			}
		}
		return nil
	})
	r.check("ids.scroll_order", func() error {
		got, next, err := client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{
			CollectionName: coll, Limit: qdrant.PtrOf(uint32(10)),
		})
		if err != nil {
			return err
		}
		if g, w := gotIDs(got), wantIDs(get(ids, "scroll_order")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		if next != nil {
			return fail("next_page_offset %v", next)
		}
		return nil
	})

	// ------------------------------------------------------------------ Upload points
	up := x["upload"]
	coll = name("upload")
	fresh(coll)
	uploadPoints := func() []*qdrant.PointStruct {
		out := []*qdrant.PointStruct{}
		for _, p := range arr(get(up, "points")) {
			out = append(out, &qdrant.PointStruct{
				Id:      pid(get(p, "id")),
				Vectors: qdrant.NewVectors(floats(get(p, "vector"))...),
				Payload: payload(get(p, "payload")),
			})
		}
		return out
	}
	r.check("upload.create_collection", func() error {
		return client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size: u64(get(up, "size")), Distance: qdrant.Distance_Dot,
			}),
		})
	})
	r.check("upload.records", func() error {
		err := completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: uploadPoints(),
		}))
		if err != nil {
			return err
		}
		return wantCount(coll, get(up, "count"))
	})
	r.check("upload.idempotent", func() error {
		if _, err := client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: uploadPoints(),
		}); err != nil {
			return err
		}
		if err := wantCount(coll, get(up, "count")); err != nil {
			return err
		}
		got, err := client.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll,
			Ids:            []*qdrant.PointId{qdrant.NewIDNum(2)},
			WithPayload:    qdrant.NewWithPayload(true),
		})
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fail("%d points", len(got))
		}
		return eqPayload("payload", got[0].GetPayload(), get(arr(get(up, "points"))[1], "payload"))
	})

	// ------------------------------------------------------------------ Named vectors
	nv := x["named"]
	coll = name("named")
	fresh(coll)
	namedMap := func(p J) map[string]*qdrant.Vector {
		out := map[string]*qdrant.Vector{}
		for _, n := range []string{"image", "text"} {
			if v, ok := obj(p)[n]; ok {
				out[n] = qdrant.NewVector(floats(v)...)
			}
		}
		return out
	}
	getOne := func(coll string, id J, vectors *qdrant.WithVectorsSelector) (*qdrant.RetrievedPoint, error) {
		got, err := client.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll, Ids: []*qdrant.PointId{pid(id)}, WithVectors: vectors,
			WithPayload: qdrant.NewWithPayload(true),
		})
		if err != nil {
			return nil, err
		}
		if len(got) != 1 {
			return nil, fail("point %v: %d points", id, len(got))
		}
		return got[0], nil
	}
	checkNamed := func(p *qdrant.RetrievedPoint, want J) error {
		wantNames := []string{}
		for _, n := range []string{"image", "text"} {
			if _, ok := obj(want)[n]; ok {
				wantNames = append(wantNames, n)
			}
		}
		if g := vectorNames(p.GetVectors()); !reflect.DeepEqual(g, wantNames) {
			return fail("point %v: vectors %v, want %v", get(want, "id"), g, wantNames)
		}
		for _, n := range wantNames {
			v := p.GetVectors().GetVectors().GetVectors()[n]
			if err := eqFloats(fmt.Sprintf("point %v %s", get(want, "id"), n), v.GetDenseVector().GetData(), floats(get(want, n))); err != nil {
				return err
			}
		}
		return nil
	}
	r.check("named.create_collection", func() error {
		return client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
				"image": {Size: u64(get(nv, "image_size")), Distance: qdrant.Distance_Dot},
				"text":  {Size: u64(get(nv, "text_size")), Distance: qdrant.Distance_Dot},
			}),
		})
	})
	r.check("named.upsert", func() error {
		points := []*qdrant.PointStruct{}
		for _, p := range arr(get(nv, "points")) {
			points = append(points, &qdrant.PointStruct{
				Id:      pid(get(p, "id")),
				Vectors: qdrant.NewVectorsMap(namedMap(p)),
			})
		}
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
	})
	r.check("named.retrieve", func() error {
		for _, want := range arr(get(nv, "points")) {
			p, err := getOne(coll, get(want, "id"), qdrant.NewWithVectors(true))
			if err != nil {
				return err
			}
			if err := checkNamed(p, want); err != nil {
				return err
			}
		}
		return nil
	})
	r.check("named.replace_point", func() error {
		rep := get(nv, "replace")
		if _, err := client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true),
			Points: []*qdrant.PointStruct{{Id: pid(get(rep, "id")), Vectors: qdrant.NewVectorsMap(namedMap(rep))}},
		}); err != nil {
			return err
		}
		p, err := getOne(coll, get(rep, "id"), qdrant.NewWithVectors(true))
		if err != nil {
			return err
		}
		return checkNamed(p, rep)
	})
	r.check("named.update_vectors", func() error {
		points := []*qdrant.PointVectors{}
		for _, u := range arr(get(nv, "update")) {
			points = append(points, &qdrant.PointVectors{
				Id:      pid(get(u, "id")),
				Vectors: qdrant.NewVectorsMap(namedMap(u)),
			})
		}
		err := completed(client.UpdateVectors(ctx, &qdrant.UpdatePointVectors{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
		if err != nil {
			return err
		}
		for _, want := range arr(get(nv, "after_update")) {
			p, err := getOne(coll, get(want, "id"), qdrant.NewWithVectors(true))
			if err != nil {
				return err
			}
			if err := checkNamed(p, want); err != nil {
				return err
			}
		}
		return nil
	})
	r.check("named.update_vectors_missing_point", func() error {
		_, err := client.UpdateVectors(ctx, &qdrant.UpdatePointVectors{
			CollectionName: coll, Wait: qdrant.PtrOf(true),
			Points: []*qdrant.PointVectors{{
				Id: pid(get(nv, "missing_id")),
				Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
					"image": qdrant.NewVector(floats(get(arr(get(nv, "points"))[0], "image"))...),
				}),
			}},
		})
		return wantCode(err, codes.NotFound)
	})
	r.check("named.with_vectors_include", func() error {
		p, err := getOne(coll, json.Number("1"), qdrant.NewWithVectorsInclude("text"))
		if err != nil {
			return err
		}
		if g := vectorNames(p.GetVectors()); !reflect.DeepEqual(g, []string{"text"}) {
			return fail("vectors %v", g)
		}
		return nil
	})
	r.check("named.delete_vectors", func() error {
		err := completed(client.DeleteVectors(ctx, &qdrant.DeletePointVectors{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			PointsSelector: qdrant.NewPointsSelector(pids(get(nv, "delete_vectors_ids"))...),
			Vectors:        &qdrant.VectorsSelector{Names: strs(get(nv, "delete_vectors_names"))},
		}))
		if err != nil {
			return err
		}
		for _, id := range arr(get(nv, "delete_vectors_ids")) {
			p, err := getOne(coll, id, qdrant.NewWithVectors(true))
			if err != nil {
				return err
			}
			if g := vectorNames(p.GetVectors()); len(g) != 0 {
				return fail("point %v still has %v", id, g)
			}
		}
		return wantCount(coll, get(nv, "count"))
	})

	// ------------------------------------------------------------------ Sparse vectors
	sp := x["sparse"]
	coll = name("sparse")
	sname := str(get(sp, "name"))
	fresh(coll)
	r.check("sparse.create_collection", func() error {
		return client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			SparseVectorsConfig: qdrant.NewSparseVectorsConfig(map[string]*qdrant.SparseVectorParams{
				sname: {},
			}),
		})
	})
	r.check("sparse.upsert", func() error {
		points := []*qdrant.PointStruct{}
		for _, p := range arr(get(sp, "points")) {
			points = append(points, &qdrant.PointStruct{
				Id: pid(get(p, "id")),
				Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{
					sname: qdrant.NewVectorSparse(u32s(get(p, "indices")), floats(get(p, "values"))),
				}),
			})
		}
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
	})
	r.check("sparse.retrieve", func() error {
		for _, want := range arr(get(sp, "stored")) {
			p, err := getOne(coll, get(want, "id"), qdrant.NewWithVectors(true))
			if err != nil {
				return err
			}
			s := p.GetVectors().GetVectors().GetVectors()[sname].GetSparseVector()
			if s == nil {
				return fail("point %v: no sparse vector in %v", get(want, "id"), p.GetVectors())
			}
			if !reflect.DeepEqual(s.GetIndices(), u32s(get(want, "indices"))) {
				return fail("point %v: indices %v", get(want, "id"), s.GetIndices())
			}
			if err := eqFloats(fmt.Sprintf("point %v values", get(want, "id")), s.GetValues(), floats(get(want, "values"))); err != nil {
				return err
			}
		}
		return nil
	})
	r.check("sparse.query", func() error {
		q := get(sp, "query")
		got, err := client.Query(ctx, &qdrant.QueryPoints{
			CollectionName: coll,
			Query:          qdrant.NewQuerySparse(u32s(get(q, "indices")), floats(get(q, "values"))),
			Using:          qdrant.PtrOf(sname),
			Limit:          qdrant.PtrOf(u64(get(sp, "limit"))),
		})
		if err != nil {
			return err
		}
		return eqHits(got, get(sp, "hits"))
	})

	// ------------------------------------------------------------------ Multivectors
	mv := x["multi"]
	coll = name("multi")
	fresh(coll)
	r.check("multi.create_collection", func() error {
		return client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size:     u64(get(mv, "size")),
				Distance: qdrant.Distance_Dot,
				MultivectorConfig: &qdrant.MultiVectorConfig{
					Comparator: qdrant.MultiVectorComparator_MaxSim,
				},
			}),
		})
	})
	r.check("multi.upsert", func() error {
		points := []*qdrant.PointStruct{}
		for _, p := range arr(get(mv, "points")) {
			points = append(points, &qdrant.PointStruct{
				Id:      pid(get(p, "id")),
				Vectors: qdrant.NewVectorsMulti(rows(get(p, "rows"))),
			})
		}
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
	})
	r.check("multi.retrieve", func() error {
		for _, want := range arr(get(mv, "points")) {
			p, err := getOne(coll, get(want, "id"), qdrant.NewWithVectors(true))
			if err != nil {
				return err
			}
			m := p.GetVectors().GetVector().GetMultiVector()
			wantRows := rows(get(want, "rows"))
			if m == nil || len(m.GetVectors()) != len(wantRows) {
				return fail("point %v: got %v", get(want, "id"), p.GetVectors())
			}
			for i, row := range m.GetVectors() {
				if err := eqFloats(fmt.Sprintf("point %v", get(want, "id")), row.GetData(), wantRows[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	r.check("multi.query", func() error {
		got, err := client.Query(ctx, &qdrant.QueryPoints{
			CollectionName: coll,
			Query:          qdrant.NewQueryMulti(rows(get(mv, "query"))),
		})
		if err != nil {
			return err
		}
		return eqHits(got, get(mv, "hits"))
	})

	// ------------------------------------------------------------------ Points: read, scroll, count, search, delete
	pt := x["points"]
	coll = name("points")
	fresh(coll)
	byID := func(id string) J {
		for _, p := range arr(get(pt, "points")) {
			if wantIDs([]any{get(p, "id")})[0] == id {
				return p
			}
		}
		panic("no point " + id)
	}
	r.check("points.create_collection_and_indexes", func() error {
		if err := client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size: u64(get(pt, "size")), Distance: qdrant.Distance_Dot,
			}),
		}); err != nil {
			return err
		}
		if err := completed(client.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{
			CollectionName: coll,
			FieldName:      "timestamp",
			FieldType:      qdrant.FieldType_FieldTypeInteger.Enum(),
			Wait:           qdrant.PtrOf(true),
		})); err != nil {
			return err
		}
		return completed(client.CreateFieldIndex(ctx, &qdrant.CreateFieldIndexCollection{
			CollectionName: coll,
			FieldName:      "color",
			FieldType:      qdrant.FieldType_FieldTypeKeyword.Enum(),
			Wait:           qdrant.PtrOf(true),
		}))
	})
	r.check("points.upsert", func() error {
		points := []*qdrant.PointStruct{}
		for _, p := range arr(get(pt, "points")) {
			points = append(points, &qdrant.PointStruct{
				Id:      pid(get(p, "id")),
				Vectors: qdrant.NewVectors(floats(get(p, "vector"))...),
				Payload: payload(get(p, "payload")),
			})
		}
		return completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		}))
	})
	r.check("points.retrieve", func() error {
		// As the chapter writes it: ids only, payload and vectors left to the defaults.
		got, err := client.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll,
			Ids:            pids(get(get(pt, "retrieve"), "ids")),
		})
		if err != nil {
			return err
		}
		g := gotIDs(got)
		sort.Slice(g, func(i, j int) bool { a, _ := strconv.Atoi(g[i]); b, _ := strconv.Atoi(g[j]); return a < b })
		if w := wantIDs(get(get(pt, "retrieve"), "found")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		return nil
	})
	r.check("points.retrieve_with_payload_and_vectors", func() error {
		got, err := client.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll,
			Ids:            pids(get(pt, "retrieve_full")),
			WithPayload:    qdrant.NewWithPayload(true),
			WithVectors:    qdrant.NewWithVectors(true),
		})
		if err != nil {
			return err
		}
		if len(got) != 2 {
			return fail("%d points", len(got))
		}
		for _, p := range got {
			want := byID(idJSON(p.GetId()))
			if err := eqPayload("payload", p.GetPayload(), get(want, "payload")); err != nil {
				return err
			}
			if err := eqFloats("vector", p.GetVectors().GetVector().GetDenseVector().GetData(), floats(get(want, "vector"))); err != nil {
				return err
			}
		}
		return nil
	})
	sf := get(pt, "scroll_first")
	red := str(get(sf, "color"))
	r.check("points.scroll_filter", func() error {
		got, next, err := client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{
			CollectionName: coll,
			Filter: &qdrant.Filter{
				Must: []*qdrant.Condition{
					qdrant.NewMatch("color", red),
				},
			},
			Limit:       qdrant.PtrOf(uint32(u64(get(sf, "limit")))),
			WithPayload: qdrant.NewWithPayload(true),
		})
		if err != nil {
			return err
		}
		if g, w := gotIDs(got), wantIDs(get(sf, "ids")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		if err := eqPayload("payload", got[0].GetPayload(), get(byID(gotIDs(got)[0]), "payload")); err != nil {
			return err
		}
		if got[0].GetVectors() != nil {
			return fail("vectors returned: %v", got[0].GetVectors())
		}
		if idJSON(next) != wantIDs([]any{get(sf, "next_page_offset")})[0] {
			return fail("next_page_offset %v", next)
		}
		return nil
	})
	r.check("points.scroll_pages", func() error {
		seen := []string{}
		var offset *qdrant.PointId
		for i := 0; i < 10; i++ {
			got, next, err := client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{
				CollectionName: coll,
				Filter:         &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatch("color", red)}},
				Limit:          qdrant.PtrOf(uint32(1)),
				Offset:         offset,
			})
			if err != nil {
				return err
			}
			seen = append(seen, gotIDs(got)...)
			if next == nil {
				break
			}
			offset = next
		}
		if w := wantIDs(get(pt, "scroll_all_red")); !reflect.DeepEqual(seen, w) {
			return fail("ids %v, want %v", seen, w)
		}
		return nil
	})
	ob := get(pt, "order_by")
	orderValues := func(points []*qdrant.RetrievedPoint) []string {
		out := []string{}
		for _, p := range points {
			switch v := p.GetOrderValue().GetVariant().(type) {
			case *qdrant.OrderValue_Int:
				out = append(out, strconv.FormatInt(v.Int, 10))
			case *qdrant.OrderValue_Float:
				out = append(out, fmt.Sprintf("float %v", v.Float))
			default:
				out = append(out, "none")
			}
		}
		return out
	}
	r.check("points.scroll_order_by", func() error {
		got, next, err := client.ScrollAndOffset(ctx, &qdrant.ScrollPoints{
			CollectionName: coll,
			Limit:          qdrant.PtrOf(uint32(u64(get(ob, "limit")))),
			OrderBy: &qdrant.OrderBy{
				Key: str(get(ob, "key")),
			},
		})
		if err != nil {
			return err
		}
		if g, w := gotIDs(got), wantIDs(get(ob, "ids")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		if g, w := orderValues(got), wantIDs(get(ob, "values")); !reflect.DeepEqual(g, w) {
			return fail("order values %v, want %v", g, w)
		}
		if next != nil {
			return fail("next_page_offset %v", next)
		}
		return nil
	})
	r.check("points.scroll_order_by_desc_start_from", func() error {
		obd := get(pt, "order_by_desc")
		got, err := client.Scroll(ctx, &qdrant.ScrollPoints{
			CollectionName: coll,
			Limit:          qdrant.PtrOf(uint32(u64(get(ob, "limit")))),
			OrderBy: &qdrant.OrderBy{
				Key:       str(get(ob, "key")),
				Direction: qdrant.Direction_Desc.Enum(),
				StartFrom: qdrant.NewStartFromInt(i64(get(obd, "start_from"))),
			},
		})
		if err != nil {
			return err
		}
		if g, w := gotIDs(got), wantIDs(get(obd, "ids")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		if g, w := orderValues(got), wantIDs(get(obd, "values")); !reflect.DeepEqual(g, w) {
			return fail("order values %v, want %v", g, w)
		}
		return nil
	})
	r.check("points.count_filter", func() error {
		n, err := client.Count(ctx, &qdrant.CountPoints{
			CollectionName: coll,
			Filter: &qdrant.Filter{
				Must: []*qdrant.Condition{
					qdrant.NewMatch("color", red),
				},
			},
			Exact: qdrant.PtrOf(true),
		})
		if err != nil {
			return err
		}
		if n != u64(get(pt, "count_red")) {
			return fail("count %d", n)
		}
		n, err = client.Count(ctx, &qdrant.CountPoints{CollectionName: coll})
		if err != nil {
			return err
		}
		if n != u64(get(pt, "count_all")) {
			return fail("count all %d", n)
		}
		return nil
	})
	r.check("points.query_filter", func() error {
		q := get(pt, "query_red")
		got, err := client.Query(ctx, &qdrant.QueryPoints{
			CollectionName: coll,
			Query:          qdrant.NewQuery(floats(get(q, "vector"))...),
			Filter:         &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewMatch("color", str(get(q, "color")))}},
			Limit:          qdrant.PtrOf(u64(get(q, "limit"))),
			WithPayload:    qdrant.NewWithPayload(true),
		})
		if err != nil {
			return err
		}
		if err := eqHits(got, get(q, "hits")); err != nil {
			return err
		}
		for _, p := range got {
			if err := eqPayload("payload", p.GetPayload(), get(byID(idJSON(p.GetId())), "payload")); err != nil {
				return err
			}
		}
		q = get(pt, "query_all")
		got, err = client.Query(ctx, &qdrant.QueryPoints{
			CollectionName: coll,
			Query:          qdrant.NewQuery(floats(get(q, "vector"))...),
			Limit:          qdrant.PtrOf(u64(get(q, "limit"))),
		})
		if err != nil {
			return err
		}
		return eqHits(got, get(q, "hits"))
	})
	r.check("points.search_filter", func() error {
		// The Go client wraps Query only; Search is called through its gRPC stub.
		q := get(pt, "search_not_red")
		resp, err := client.GetPointsClient().Search(ctx, &qdrant.SearchPoints{
			CollectionName: coll,
			Vector:         floats(get(q, "vector")),
			Filter:         &qdrant.Filter{MustNot: []*qdrant.Condition{qdrant.NewMatch("color", str(get(q, "color")))}},
			Limit:          u64(get(q, "limit")),
		})
		if err != nil {
			return err
		}
		return eqHits(resp.GetResult(), get(q, "hits"))
	})

	// ------------------------------------------------------------------ Payload
	pl := x["payload"]
	retrievePayload := func(id J) (map[string]*qdrant.Value, error) {
		p, err := getOne(coll, id, nil)
		if err != nil {
			return nil, err
		}
		return p.GetPayload(), nil
	}
	r.check("payload.set", func() error {
		s := get(pl, "set")
		if err := completed(client.SetPayload(ctx, &qdrant.SetPayloadPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Payload:        payload(get(s, "payload")),
			PointsSelector: qdrant.NewPointsSelector(pid(get(s, "id"))),
		})); err != nil {
			return err
		}
		got, err := retrievePayload(get(s, "id"))
		if err != nil {
			return err
		}
		return eqPayload("payload", got, get(s, "expected"))
	})
	r.check("payload.overwrite", func() error {
		o := get(pl, "overwrite")
		if err := completed(client.OverwritePayload(ctx, &qdrant.SetPayloadPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Payload:        payload(get(o, "payload")),
			PointsSelector: qdrant.NewPointsSelector(pid(get(o, "id"))),
		})); err != nil {
			return err
		}
		got, err := retrievePayload(get(o, "id"))
		if err != nil {
			return err
		}
		return eqPayload("payload", got, get(o, "payload"))
	})
	r.check("payload.delete_keys_by_filter", func() error {
		d := get(pl, "delete")
		if err := completed(client.DeletePayload(ctx, &qdrant.DeletePayloadPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Keys:           strs(get(d, "keys")),
			PointsSelector: qdrant.NewPointsSelectorFilter(&qdrant.Filter{
				Must: []*qdrant.Condition{qdrant.NewMatch("color", str(get(d, "color")))},
			}),
		})); err != nil {
			return err
		}
		for _, want := range arr(get(d, "expected")) {
			got, err := retrievePayload(get(want, "id"))
			if err != nil {
				return err
			}
			if err := eqPayload(fmt.Sprintf("point %v", get(want, "id")), got, get(want, "payload")); err != nil {
				return err
			}
		}
		return nil
	})
	r.check("payload.clear", func() error {
		id := get(get(pl, "clear"), "id")
		if err := completed(client.ClearPayload(ctx, &qdrant.ClearPayloadPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Points:         qdrant.NewPointsSelector(pid(id)),
		})); err != nil {
			return err
		}
		got, err := retrievePayload(id)
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fail("payload %v", got)
		}
		return nil
	})

	r.check("points.delete_ids", func() error {
		if err := completed(client.Delete(ctx, &qdrant.DeletePoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Points:         qdrant.NewPointsSelector(pids(get(pt, "delete_ids"))...),
		})); err != nil {
			return err
		}
		return wantCount(coll, get(pt, "count_after_delete_ids"))
	})
	r.check("points.delete_filter", func() error {
		if err := completed(client.Delete(ctx, &qdrant.DeletePoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Points: qdrant.NewPointsSelectorFilter(
				&qdrant.Filter{
					Must: []*qdrant.Condition{
						qdrant.NewMatch("color", str(get(pt, "delete_color"))),
					},
				},
			),
		})); err != nil {
			return err
		}
		got, err := client.Scroll(ctx, &qdrant.ScrollPoints{CollectionName: coll, Limit: qdrant.PtrOf(uint32(100))})
		if err != nil {
			return err
		}
		if g, w := gotIDs(got), wantIDs(get(pt, "left_after_delete_filter")); !reflect.DeepEqual(g, w) {
			return fail("ids %v, want %v", g, w)
		}
		return nil
	})

	// ------------------------------------------------------------------ Awaiting result
	r.check("wait.false_then_true", func() error {
		w := x["wait"]
		p := get(w, "point")
		point := func() []*qdrant.PointStruct {
			return []*qdrant.PointStruct{{
				Id:      pid(get(p, "id")),
				Vectors: qdrant.NewVectors(floats(get(p, "vector"))...),
				Payload: payload(get(p, "payload")),
			}}
		}
		res, err := client.Upsert(ctx, &qdrant.UpsertPoints{CollectionName: coll, Points: point()})
		if err != nil {
			return err
		}
		if s := res.GetStatus(); s != qdrant.UpdateStatus_Acknowledged && s != qdrant.UpdateStatus_Completed {
			return fail("wait=false status %v", s)
		}
		if err := completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: point(),
		})); err != nil {
			return err
		}
		return wantCount(coll, get(w, "count_after"))
	})

	// ------------------------------------------------------------------ Batch update
	bt := x["batch"]
	coll = name("batch")
	fresh(coll)
	one := func() *qdrant.PointsSelector { return qdrant.NewPointsSelector(pid(get(bt, "id"))) }
	firstSix := func() []*qdrant.PointsUpdateOperation {
		return []*qdrant.PointsUpdateOperation{
			qdrant.NewPointsUpdateUpsert(&qdrant.PointsUpdateOperation_PointStructList{
				Points: []*qdrant.PointStruct{{
					Id:      pid(get(bt, "id")),
					Vectors: qdrant.NewVectors(floats(get(bt, "vector"))...),
				}},
			}),
			qdrant.NewPointsUpdateUpdateVectors(&qdrant.PointsUpdateOperation_UpdateVectors{
				Points: []*qdrant.PointVectors{{
					Id:      pid(get(bt, "id")),
					Vectors: qdrant.NewVectors(floats(get(bt, "vector"))...),
				}},
			}),
			qdrant.NewPointsUpdateDeleteVectors(&qdrant.PointsUpdateOperation_DeleteVectors{
				PointsSelector: one(),
				Vectors:        &qdrant.VectorsSelector{Names: []string{""}},
			}),
			qdrant.NewPointsUpdateOverwritePayload(&qdrant.PointsUpdateOperation_OverwritePayload{
				PointsSelector: one(),
				Payload:        payload(get(bt, "overwrite")),
			}),
			qdrant.NewPointsUpdateSetPayload(&qdrant.PointsUpdateOperation_SetPayload{
				PointsSelector: one(),
				Payload:        payload(get(bt, "set")),
			}),
			qdrant.NewPointsUpdateDeletePayload(&qdrant.PointsUpdateOperation_DeletePayload{
				PointsSelector: one(),
				Keys:           strs(get(bt, "delete_keys")),
			}),
		}
	}
	lastTwo := func() []*qdrant.PointsUpdateOperation {
		return []*qdrant.PointsUpdateOperation{
			qdrant.NewPointsUpdateClearPayload(&qdrant.PointsUpdateOperation_ClearPayload{Points: one()}),
			qdrant.NewPointsUpdateDeletePoints(&qdrant.PointsUpdateOperation_DeletePoints{Points: one()}),
		}
	}
	r.check("batch.create_collection", func() error {
		return client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size: u64(get(bt, "size")), Distance: qdrant.Distance_Dot,
			}),
		})
	})
	r.check("batch.all_operations", func() error {
		results, err := client.UpdateBatch(ctx, &qdrant.UpdateBatchPoints{
			CollectionName: coll,
			Wait:           qdrant.PtrOf(true),
			Operations:     append(firstSix(), lastTwo()...),
		})
		if err != nil {
			return err
		}
		if uint64(len(results)) != u64(get(bt, "results")) {
			return fail("%d results", len(results))
		}
		for _, res := range results {
			if err := completed(res, nil); err != nil {
				return err
			}
		}
		got, err := client.Get(ctx, &qdrant.GetPoints{CollectionName: coll, Ids: []*qdrant.PointId{pid(get(bt, "id"))}})
		if err != nil {
			return err
		}
		if len(got) != 0 {
			return fail("point still there: %v", got)
		}
		return nil
	})
	r.check("batch.state_after_each_step", func() error {
		if _, err := client.UpdateBatch(ctx, &qdrant.UpdateBatchPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Operations: firstSix(),
		}); err != nil {
			return err
		}
		p, err := getOne(coll, get(bt, "id"), qdrant.NewWithVectors(true))
		if err != nil {
			return err
		}
		if err := eqPayload("payload", p.GetPayload(), get(get(bt, "after_first_six"), "payload")); err != nil {
			return err
		}
		if v := p.GetVectors().GetVector(); v != nil {
			return fail("vector left: %v", v)
		}
		results, err := client.UpdateBatch(ctx, &qdrant.UpdateBatchPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Operations: lastTwo(),
		})
		if err != nil {
			return err
		}
		if len(results) != 2 {
			return fail("%d results", len(results))
		}
		return wantCount(coll, json.Number("0"))
	})

	// ------------------------------------------------------------------ Errors
	r.check("errors.missing_collection", func() error {
		_, err := client.Count(ctx, &qdrant.CountPoints{CollectionName: str(get(x["errors"], "missing_collection"))})
		return wantCode(err, codes.NotFound)
	})
	r.check("errors.wrong_dimension", func() error {
		_, err := client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: name("points"), Wait: qdrant.PtrOf(true),
			Points: []*qdrant.PointStruct{{
				Id:      qdrant.NewIDNum(999),
				Vectors: qdrant.NewVectors(floats(get(x["errors"], "wrong_dim_vector"))...),
			}},
		})
		return wantCode(err, codes.InvalidArgument)
	})

	// ------------------------------------------------------------------ Message size, compression
	lg := x["large"]
	coll = name("large")
	fresh(coll)
	size, total := int(u64(get(lg, "size"))), int(u64(get(lg, "count")))
	r.check("limits.large_upsert", func() error {
		if err := client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: coll,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size: uint64(size), Distance: qdrant.Distance_Dot,
			}),
		}); err != nil {
			return err
		}
		points := make([]*qdrant.PointStruct, total)
		for i := range points {
			points[i] = &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(i)), Vectors: qdrant.NewVectors(largeVector(i, size)...)}
		}
		if err := completed(client.Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: coll, Wait: qdrant.PtrOf(true), Points: points,
		})); err != nil {
			return err
		}
		return wantCount(coll, get(lg, "count"))
	})
	r.check("compression.gzip", func() error {
		gz, err := qdrant.NewClient(&qdrant.Config{
			Host: env("TESSERA_GRPC_HOST", "127.0.0.1"), Port: port, PoolSize: 1, SkipCompatibilityCheck: true,
			GrpcOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name))},
		})
		if err != nil {
			return err
		}
		defer gz.Close()
		probe := int(u64(get(lg, "probe_id")))
		got, err := gz.Get(ctx, &qdrant.GetPoints{
			CollectionName: coll,
			Ids:            []*qdrant.PointId{qdrant.NewIDNum(uint64(probe))},
			WithVectors:    qdrant.NewWithVectors(true),
		})
		if err != nil {
			return err
		}
		if len(got) != 1 {
			return fail("%d points", len(got))
		}
		return eqFloats("vector", got[0].GetVectors().GetVector().GetDenseVector().GetData(), largeVector(probe, size))
	})

	// ------------------------------------------------------------------ Collections
	r.check("collections.errors", func() error {
		cx := x["collections"]
		err := client.CreateCollection(ctx, &qdrant.CreateCollection{
			CollectionName: "go_" + str(get(cx, "existing")),
			VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 3, Distance: qdrant.Distance_Dot}),
		})
		if err := wantCode(err, codeNamed(get(get(cx, "codes"), "create_existing"))); err != nil {
			return fail("creating an existing collection: %v", err)
		}
		// The client keeps only the error: the raw service answers false.
		reply, err := client.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: str(get(cx, "missing"))})
		if err == nil && reply.GetResult() {
			return fail("deleting a missing collection answered true")
		}
		return err
	})

	// ------------------------------------------------------------------ Aliases
	al := x["aliases"]
	coll = "go_" + str(get(al, "collection"))
	alias, renamed := "go_"+str(get(al, "alias")), "go_"+str(get(al, "renamed"))
	aliasCodes := get(al, "codes")
	// The program's aliases in ListAliases (the others' are left out), sorted.
	ownAliases := func() ([]string, error) {
		all, err := client.ListAliases(ctx)
		got := []string{}
		for _, a := range all {
			if strings.HasPrefix(a.GetAliasName(), "go_") {
				got = append(got, a.GetAliasName()+" -> "+a.GetCollectionName())
			}
		}
		sort.Strings(got)
		return got, err
	}
	collectionAliases := func() ([]string, error) {
		got, err := client.ListCollectionAliases(ctx, coll)
		sort.Strings(got)
		return got, err
	}
	_ = client.DeleteAlias(ctx, alias)
	_ = client.DeleteAlias(ctx, renamed)
	r.check("aliases.create", func() error {
		return client.CreateAlias(ctx, alias, coll)
	})
	r.check("aliases.list", func() error {
		got, err := ownAliases()
		if err != nil {
			return err
		}
		if want := []string{alias + " -> " + coll}; !reflect.DeepEqual(got, want) {
			return fail("ListAliases %v, want %v", got, want)
		}
		names, err := collectionAliases()
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(names, []string{alias}) {
			return fail("ListCollectionAliases %v", names)
		}
		names, err = client.ListCollectionAliases(ctx, str(get(al, "missing_collection")))
		if err == nil && len(names) != 0 {
			return fail("aliases of a missing collection: %v", names)
		}
		return err
	})
	r.check("aliases.count_and_query", func() error {
		if err := wantCount(alias, get(al, "count")); err != nil {
			return err
		}
		q := get(al, "query")
		got, err := client.Query(ctx, &qdrant.QueryPoints{
			CollectionName: alias,
			Query:          qdrant.NewQuery(floats(get(q, "vector"))...),
			Limit:          qdrant.PtrOf(u64(get(q, "limit"))),
		})
		if err != nil {
			return err
		}
		return eqHits(got, get(q, "hits"))
	})
	r.check("aliases.collection_ops", func() error {
		exists, err := client.CollectionExists(ctx, alias)
		if err != nil {
			return err
		}
		if !exists {
			return fail("CollectionExists through the alias: false")
		}
		// Qdrant deletes a collection by its own name only: through an alias, nothing (false).
		reply, err := client.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: alias})
		if err != nil {
			return err
		}
		if reply.GetResult() {
			return fail("deleting through the alias answered true")
		}
		if err := wantCount(coll, get(al, "count")); err != nil {
			return err
		}
		names, err := collectionAliases()
		if err == nil && !reflect.DeepEqual(names, []string{alias}) {
			return fail("ListCollectionAliases after %v", names)
		}
		return err
	})
	r.check("aliases.rename", func() error {
		if err := client.RenameAlias(ctx, alias, renamed); err != nil {
			return err
		}
		names, err := collectionAliases()
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(names, []string{renamed}) {
			return fail("ListCollectionAliases %v", names)
		}
		if err := wantCount(renamed, get(al, "count")); err != nil {
			return err
		}
		_, err = count(alias, nil)
		return wantCode(err, codeNamed(get(aliasCodes, "use_removed_alias")))
	})
	r.check("aliases.delete", func() error {
		if err := client.DeleteAlias(ctx, renamed); err != nil {
			return err
		}
		names, err := collectionAliases()
		if err != nil {
			return err
		}
		if len(names) != 0 {
			return fail("ListCollectionAliases %v", names)
		}
		own, err := ownAliases()
		if err != nil {
			return err
		}
		if len(own) != 0 {
			return fail("ListAliases %v", own)
		}
		_, err = count(renamed, nil)
		if err := wantCode(err, codeNamed(get(aliasCodes, "use_removed_alias"))); err != nil {
			return err
		}
		// Qdrant's "delete alias if exists": a missing one is no error.
		if err := client.DeleteAlias(ctx, renamed); err != nil {
			return fail("deleting a missing alias: %v", err)
		}
		return wantCount(coll, get(al, "count"))
	})
	r.check("aliases.errors", func() error {
		err := client.CreateAlias(ctx, alias, str(get(al, "missing_collection")))
		if err := wantCode(err, codeNamed(get(aliasCodes, "create_for_missing_collection"))); err != nil {
			return fail("alias of a missing collection: %v", err)
		}
		err = client.CreateAlias(ctx, "go_"+str(get(al, "named_as_collection")), coll)
		if err := wantCode(err, codeNamed(get(aliasCodes, "create_named_as_collection"))); err != nil {
			return fail("alias named as a collection: %v", err)
		}
		err = client.RenameAlias(ctx, str(get(al, "missing_alias")), alias)
		if err := wantCode(err, codeNamed(get(aliasCodes, "rename_missing_alias"))); err != nil {
			return fail("rename of a missing alias: %v", err)
		}
		own, err := ownAliases()
		if err == nil && len(own) != 0 {
			return fail("aliases left: %v", own)
		}
		return err
	})

	// ------------------------------------------------------------------ Snapshots
	sn := x["snapshots"]
	coll = "go_" + str(get(sn, "collection"))
	snapCodes := get(sn, "codes")
	var made *qdrant.SnapshotDescription
	findSnapshot := func(list []*qdrant.SnapshotDescription, name string) []*qdrant.SnapshotDescription {
		found := []*qdrant.SnapshotDescription{}
		for _, d := range list {
			if d.GetName() == name {
				found = append(found, d)
			}
		}
		return found
	}
	sameSnapshot := func(listed, created *qdrant.SnapshotDescription) error {
		if listed.GetSize() != created.GetSize() || listed.GetChecksum() != created.GetChecksum() {
			return fail("listed %v, created %v", listed, created)
		}
		return nil
	}
	r.check("snapshots.create", func() error {
		d, err := client.CreateSnapshot(ctx, coll)
		if err != nil {
			return err
		}
		made = d
		return snapshotDescribed("created", d, coll+"-", sn)
	})
	r.check("snapshots.list", func() error {
		if made == nil {
			return fail("no snapshot was created")
		}
		list, err := client.ListSnapshots(ctx, coll)
		if err != nil {
			return err
		}
		found := findSnapshot(list, made.GetName())
		if len(found) != 1 {
			return fail("%q not in %v", made.GetName(), list)
		}
		if err := snapshotDescribed("listed", found[0], coll+"-", sn); err != nil {
			return err
		}
		return sameSnapshot(found[0], made)
	})
	r.check("snapshots.delete", func() error {
		if made == nil {
			return fail("no snapshot was created")
		}
		if err := client.DeleteSnapshot(ctx, coll, made.GetName()); err != nil {
			return err
		}
		list, err := client.ListSnapshots(ctx, coll)
		if err != nil {
			return err
		}
		if len(findSnapshot(list, made.GetName())) != 0 {
			return fail("still listed: %v", list)
		}
		err = client.DeleteSnapshot(ctx, coll, made.GetName())
		return wantCode(err, codeNamed(get(snapCodes, "delete_missing")))
	})
	r.check("snapshots.errors", func() error {
		missing := str(get(al, "missing_collection"))
		_, err := client.CreateSnapshot(ctx, missing)
		if err := wantCode(err, codeNamed(get(snapCodes, "create_for_missing_collection"))); err != nil {
			return fail("create for a missing collection: %v", err)
		}
		_, err = client.ListSnapshots(ctx, missing)
		if err := wantCode(err, codeNamed(get(snapCodes, "list_for_missing_collection"))); err != nil {
			return fail("list for a missing collection: %v", err)
		}
		err = client.DeleteSnapshot(ctx, coll, str(get(sn, "missing_snapshot")))
		if err := wantCode(err, codeNamed(get(snapCodes, "delete_missing"))); err != nil {
			return fail("delete of a missing snapshot: %v", err)
		}
		err = client.DeleteFullSnapshot(ctx, str(get(sn, "missing_snapshot")))
		if err := wantCode(err, codeNamed(get(snapCodes, "delete_missing_full"))); err != nil {
			return fail("delete of a missing full snapshot: %v", err)
		}
		return nil
	})
	r.check("snapshots.through_alias", func() error {
		// As in Qdrant: the aliased collection's snapshot, named and listed as the collection's.
		snapAlias := "go_" + str(get(sn, "alias"))
		if err := client.CreateAlias(ctx, snapAlias, coll); err != nil {
			return err
		}
		defer func() { _ = client.DeleteAlias(ctx, snapAlias) }()
		d, err := client.CreateSnapshot(ctx, snapAlias)
		if err != nil {
			return err
		}
		if err := snapshotDescribed("created through the alias", d, coll+"-", sn); err != nil {
			return err
		}
		for _, target := range []string{coll, snapAlias} {
			list, err := client.ListSnapshots(ctx, target)
			if err != nil {
				return err
			}
			if len(findSnapshot(list, d.GetName())) != 1 {
				return fail("%q not listed through %s: %v", d.GetName(), target, list)
			}
		}
		if err := client.DeleteSnapshot(ctx, snapAlias, d.GetName()); err != nil {
			return err
		}
		list, err := client.ListSnapshots(ctx, coll)
		if err == nil && len(findSnapshot(list, d.GetName())) != 0 {
			return fail("still listed: %v", list)
		}
		return err
	})
	r.check("snapshots.full", func() error {
		prefix := str(get(sn, "full_prefix"))
		d, err := client.CreateFullSnapshot(ctx)
		if err != nil {
			return err
		}
		if err := snapshotDescribed("created", d, prefix, sn); err != nil {
			return err
		}
		list, err := client.ListFullSnapshots(ctx)
		if err != nil {
			return err
		}
		found := findSnapshot(list, d.GetName())
		if len(found) != 1 {
			return fail("%q not in %v", d.GetName(), list)
		}
		if err := snapshotDescribed("listed", found[0], prefix, sn); err != nil {
			return err
		}
		if err := sameSnapshot(found[0], d); err != nil {
			return err
		}
		if err := client.DeleteFullSnapshot(ctx, d.GetName()); err != nil {
			return err
		}
		list, err = client.ListFullSnapshots(ctx)
		if err == nil && len(findSnapshot(list, d.GetName())) != 0 {
			return fail("still listed: %v", list)
		}
		return err
	})

	if idle > 0 {
		r.check("keepalive.idle_connection_stays_ready", func() error { return <-idleDone })
	}

	for _, key := range []string{"ids", "upload", "named", "sparse", "multi", "points", "batch", "large"} {
		fresh(name(key))
	}
	if r.known > 0 {
		fmt.Printf("go: %d known Tessera failures (known_failures in clients/expectations.json)\n", r.known)
	}
	fmt.Printf("go: %d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		os.Exit(1)
	}
}
