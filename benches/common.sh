# Shared by the benchmark scripts: ports, waiting, cleanup. Sourced, not run.

WORK=$(mktemp -d "/tmp/gatehouse-${BENCH_NAME:-bench}.XXXXXX")
PIDS=()
cleanup() {
    # SIGINT: fast shutdown for Pingora and nginx alike (SIGTERM makes Pingora wait its grace period).
    for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }

# A port nothing listens on (random, checked), so runs never collide with anything.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    die "nothing listens on $port; see $WORK"
}
