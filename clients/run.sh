#!/usr/bin/env bash
# `make test-clients`: build the Rust, Go and Java client checks (clients/README.md), start a
# Tessera server on free ports with a temporary storage directory, run the three against its
# gRPC port, stop it. Every cache (cargo registry, Go module and build caches, Maven
# repository) and build output stays inside the clone, under ignored directories; versions
# come from clients/rust/Cargo.lock, clients/go/go.sum and the exact versions in
# clients/java/pom.xml. Exits non-zero if a toolchain is missing, a build fails or a check
# fails.
#
# CLIENTS="rust go java" (the default) chooses which run; TESSERA_IDLE_S (default 35) is how
# long the Go keep-alive check sits idle (0 turns it off).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
CLIENTS=${CLIENTS:-rust go java}
CACHE=$ROOT/clients/.cache
export TESSERA_EXPECTATIONS=$ROOT/clients/expectations.json
export TESSERA_IDLE_S=${TESSERA_IDLE_S:-35}

say() { printf '== %s\n' "$*"; }
die() { printf 'make test-clients: %s\n' "$*" >&2; exit 2; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

[ -x "$PY" ] || die "$PY not found: run 'make install' first"
for lang in $CLIENTS; do
	case $lang in
	rust) need cargo "the Rust toolchain (rustup, cargo >= 1.85) must be on PATH" ;;
	go) need go "Go >= 1.24 must be on PATH" ;;
	java)
		need java "a JDK >= 17 must be on PATH (apt-get install openjdk-17-jdk-headless)"
		need javac "a JDK >= 17 must be on PATH (apt-get install openjdk-17-jdk-headless)"
		need mvn "Maven >= 3.6 must be on PATH (apt-get install maven)"
		;;
	*) die "unknown client '$lang' in CLIENTS (rust, go, java)" ;;
	esac
done

# ------------------------------------------------------------------------------ build
build_rust() {
	CARGO_HOME=$CACHE/cargo cargo build --locked --quiet --manifest-path clients/rust/Cargo.toml
}
build_go() {
	(cd clients/go && GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/pkg/mod GOCACHE=$CACHE/go-build \
		GOFLAGS='-modcacherw -mod=readonly' GOTOOLCHAIN=local go build -o bin/check .)
}
build_java() {
	mvn -q -B -Dstyle.color=never -f clients/java/pom.xml -Dmaven.repo.local="$CACHE/m2" \
		compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
}
# Java's build is mostly downloads, and so is the first step of Go's: both run in the
# background while Rust compiles (the machine has 2 cores), each logging to a file.
BUILD_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/tessera-clients-build.XXXXXX")
declare -A BUILD_PIDS=()
for lang in $CLIENTS; do
	if [ "$lang" = java ]; then
		build_java >"$BUILD_LOGS/java.log" 2>&1 &
		BUILD_PIDS[java]=$!
	elif [ "$lang" = go ]; then
		(cd clients/go && GOPATH=$CACHE/go GOMODCACHE=$CACHE/go/pkg/mod GOFLAGS='-modcacherw -mod=readonly' \
			GOTOOLCHAIN=local go mod download) >"$BUILD_LOGS/go-download.log" 2>&1 &
		BUILD_PIDS[go]=$!
	fi
done
start_all=$(date +%s)
for lang in $CLIENTS; do
	start=$(date +%s)
	if [ -n "${BUILD_PIDS[$lang]:-}" ]; then
		wait "${BUILD_PIDS[$lang]}" || { cat "$BUILD_LOGS"/*.log >&2; die "fetching or building the $lang client check failed"; }
	fi
	[ "$lang" = java ] && { say "built java (in the background)"; continue; }
	say "build $lang"
	"build_$lang" || die "building the $lang client check failed"
	say "built $lang in $(elapsed "$start")"
done
rm -rf "$BUILD_LOGS"
say "all built in $(elapsed "$start_all")"

# ------------------------------------------------------------------------------ server
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tessera-clients.XXXXXX")
SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
read -r HTTP_PORT GRPC_PORT < <("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
say "start tessera: REST 127.0.0.1:$HTTP_PORT, gRPC 127.0.0.1:$GRPC_PORT, storage $TMP/storage"
"$PY" -m tessera serve --host 127.0.0.1 --port "$HTTP_PORT" --grpc-port "$GRPC_PORT" \
	--storage "$TMP/storage" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
"$PY" - "$HTTP_PORT" "$SERVER_PID" <<'EOF' || { tail -n 30 "$TMP/server.log" >&2; die "the server did not become ready"; }
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the server exited")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("not ready after 60 s")
EOF

# ------------------------------------------------------------------------------ run
export TESSERA_GRPC_HOST=127.0.0.1 TESSERA_GRPC_PORT=$GRPC_PORT
export TESSERA_GRPC_URL=http://127.0.0.1:$GRPC_PORT
run_rust() { (cd clients/rust && ./target/debug/tessera-client-check-rust); }
run_go() { (cd clients/go && ./bin/check); }
run_java() {
	(cd clients/java && java -Djava.util.logging.config.file=/dev/null \
		-cp "target/classes:$(cat target/classpath.txt)" tessera.clients.Main)
}
# Go first, in the background: its keep-alive check idles while the others run.
status=0
GO_PID=
if [[ " $CLIENTS " == *" go "* ]]; then
	run_go >"$TMP/go.out" 2>&1 &
	GO_PID=$!
fi
for lang in $CLIENTS; do
	[ "$lang" = go ] && continue
	start=$(date +%s)
	say "run $lang"
	"run_$lang" || status=1
	say "ran $lang in $(elapsed "$start")"
done
if [ -n "$GO_PID" ]; then
	say "run go (its keep-alive check idles ${TESSERA_IDLE_S}s; 0: no such check)"
	wait "$GO_PID" || status=1
	cat "$TMP/go.out"
fi
if [ "$status" != 0 ]; then
	say "server log (last 40 lines)"
	tail -n 40 "$TMP/server.log"
fi
exit "$status"
