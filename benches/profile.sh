#!/usr/bin/env bash
# Where a proxied request's CPU time goes: samples Gatehouse (or bare Pingora) with
# `perf record -e cpu-clock` while wrk drives the pass-through, then sums the samples by
# component (kernel, tokio, Pingora, http/bytes, allocator, Gatehouse, libc).
#
# Usage: benches/profile.sh [gatehouse|bare-pingora]   (needs perf: apt linux-perf)
set -euo pipefail

TARGET=${1:-gatehouse}
SECONDS_SAMPLED=${SECONDS_SAMPLED:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
BENCH_NAME=profile
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"

ORIGIN_PORT=$(free_port)
PROXY_PORT=$(free_port)
cat >"$WORK/origin.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/origin.pid; error_log $WORK/origin.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$ORIGIN_PORT; location / { return 200 "ok\n"; } } }
EOF
taskset -c 0 nginx -p "$WORK" -c "$WORK/origin.conf" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT"

if [ "$TARGET" = gatehouse ]; then
    cat >"$WORK/gatehouse.yaml" <<EOF
server: { threads: 1, pid_file: $WORK/pid, upgrade_sock: $WORK/upgrade.sock }
listeners: [ { name: bench, address: "127.0.0.1:$PROXY_PORT" } ]
upstreams: { app: { backends: [ { address: "127.0.0.1:$ORIGIN_PORT" } ] } }
routes: [ { name: all, upstream: app } ]
EOF
    RUST_LOG=warn taskset -c 1 "$BIN_DIR/gatehouse" -c "$WORK/gatehouse.yaml" >/dev/null 2>&1 &
else
    RUST_LOG=warn taskset -c 1 "$BIN_DIR/examples/bare_pingora" "127.0.0.1:$PROXY_PORT" \
        "127.0.0.1:$ORIGIN_PORT" 1 >/dev/null 2>&1 &
fi
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_port "$PROXY_PORT"

taskset -c 0 wrk -t1 -c16 -d$((SECONDS_SAMPLED + 2))s "http://127.0.0.1:$PROXY_PORT/" >/dev/null &
PIDS+=($!)
sleep 1
perf record -q -e cpu-clock -F 4000 -p "$PROXY_PID" -o "$WORK/perf.data" -- sleep "$SECONDS_SAMPLED" >/dev/null 2>&1

perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
    awk '
        /^ +[0-9.]+%/ {
            pct = $1 + 0; line = $0
            if (line ~ /\[kernel/) c = "kernel (TCP/IP on loopback, syscalls, scheduling)"
            else if (line ~ /gatehouse::/) c = "Gatehouse (routing, headers, balancing, health)"
            else if (line ~ /mi_|mimalloc|malloc|free|realloc/) c = "allocator"
            else if (line ~ /tokio::/) c = "tokio runtime (tasks, wakers, IO readiness)"
            else if (line ~ /pingora/) c = "Pingora (HTTP/1 parsing and proxy state machine, pool, timers)"
            else if (line ~ /http::|bytes::|httparse/) c = "http/bytes/httparse (header maps, buffers)"
            else if (line ~ /libc|\[vdso\]/) c = "libc (memcpy, syscall wrappers, clock)"
            else c = "other"
            sum[c] += pct
        }
        END { for (c in sum) printf "%6.1f%%  %s\n", sum[c], c }' | sort -rn
