#!/usr/bin/env bash
# Side-by-side load benchmark: Gatehouse vs a bare Pingora pass-through vs nginx.
#
# On loopback. The origin (nginx `return 200`) and the load generator (wrk) share core 0;
# the proxy under test runs alone on core 1 with one worker thread, so it is the
# bottleneck and its CPU time per request is what we compare. Rounds interleave the
# proxies (A B C A B C ...) so that drift on a shared machine hits all of them alike.
# Reported per proxy: requests/s, p50/p99 latency, and CPU microseconds per request
# (utime+stime of all the proxy's processes from /proc, over the run, divided by the
# requests wrk completed; and utime alone beside it); then the ratios (of utime+stime),
# as medians over rounds.
#
# Usage: benches/load.sh [SCENARIO...]   (scenarios: passthrough edge waf waf-post;
#        default: all)
# waf / waf-post: a benign browser GET with query arguments and a cookie / a 2 KB form
# POST, through Gatehouse with the WAF off, Gatehouse with CRS 4 at paranoia 1, and nginx
# with ModSecurity v3 and the same CRS (CRS_DIR, default ../shared/corpora/crs).
# Environment: ROUNDS (5), DURATION seconds per run (4), CONNECTIONS (16), BIN_DIR,
# WAF_REQUESTS (varied: each WAF request another page, session and form; or repeated),
# BASELINE_BIN_DIR (another build's target/release: its gatehouse with the WAF runs in the
# same rounds as `baseline-waf`, for an A/B of two builds on a noisy machine),
# GATEHOUSE_SERVER_EXTRA (extra `server:` keys for a tuning experiment, e.g.
# ", work_stealing: true").
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
CONNECTIONS=${CONNECTIONS:-16}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/target/release}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(passthrough edge waf waf-post)
CRS_DIR=$(cd "${CRS_DIR:-$ROOT/../shared/corpora/crs}" && pwd)
MODSEC_MODULE=${MODSEC_MODULE:-/usr/lib/nginx/modules/ngx_http_modsecurity_module.so}
LOAD_CORE=0
PROXY_CORE=1

BENCH_NAME=bench-load
# shellcheck source=benches/common.sh
. "$ROOT/benches/common.sh"

for tool in nginx wrk taskset; do
    command -v "$tool" >/dev/null || die "$tool is missing (make bench-load installs it)"
done
[ -x "$BIN_DIR/gatehouse" ] && [ -x "$BIN_DIR/examples/bare_pingora" ] ||
    die "build first: cargo build --release --bin gatehouse --example bare_pingora"
[ "$(nproc)" -ge 2 ] || die "needs 2 cores (one for the proxy, one for origin and load)"
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)

# CPU ticks (utime+stime, then utime alone) of a process and its children that are
# still alive.
cpu_ticks() {
    local total=0 user=0 pid stat rest
    for pid in "$@" $(for p in "$@"; do pgrep -P "$p" || true; done); do
        [ -r "/proc/$pid/stat" ] || continue
        stat=$(cat "/proc/$pid/stat")
        rest=${stat##*) }
        # fields after the command: state(3) ... utime(14) stime(15) => 12th and 13th here
        read -r -a f <<<"$rest"
        total=$((total + f[11] + f[12]))
        user=$((user + f[11]))
    done
    echo "$total $user"
}

# --- the origin -------------------------------------------------------------------
ORIGIN_PORT=$(free_port)
mkdir -p "$WORK/origin"
cat >"$WORK/origin/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/origin/nginx.pid;
error_log $WORK/origin/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport;
        location / { return 200 "ok\n"; }
    }
}
EOF
taskset -c $LOAD_CORE "$NGINX" -p "$WORK/origin" -c "$WORK/origin/nginx.conf" >/dev/null 2>"$WORK/origin.log" &
PIDS+=($!)
wait_port "$ORIGIN_PORT"

# --- proxy configs per scenario ----------------------------------------------------
# passthrough: one upstream, everything passed through, upstream keep-alive.
# edge: 30 routes (10 sites x exact/prefix/regex), a 90/10 split sticky by cookie (the
#       client sends its cookie; nginx: split_clients on it), header rewrites, forwarding
#       headers from a trusted proxy, request ids, backend headers hidden, and an access
#       log to a file in combined format (nginx buffers it as Gatehouse does: 64k, 200ms).
SITES=10
edge_routes_yaml() {
    local i
    for i in $(seq 0 $((SITES - 1))); do
        cat <<EOF
  - { name: login-$i, upstream: app, match: { host: site$i.example.com, path: { exact: /login } } }
  - name: api-$i
    upstream: app
    match: { host: site$i.example.com, path: { prefix: /api/v1/ } }
    split: { canary: app-canary, weight: 10, sticky: { cookie: { name: gh_variant } } }
    request_headers: { remove: [X-Debug], set: { X-Site: site$i } }
    response_headers: { set: { X-Frame-Options: DENY } }
  - { name: static-$i, upstream: app, match: { host: site$i.example.com, path: { regex: "^/static/[a-z]+/" } } }
EOF
    done
}

edge_nginx_servers() {
    local i
    for i in $(seq 0 $((SITES - 1))); do
        cat <<EOF
    server {
        listen 127.0.0.1:$1;
        server_name site$i.example.com;
        location = /login { proxy_pass http://app; }
        location /api/v1/ {
            proxy_pass http://\$api_variant;
            # proxy_set_header here replaces every inherited one, so all are repeated.
            include $WORK/nginx-edge/forwarding.conf;
            proxy_set_header X-Debug "";
            proxy_set_header X-Site site$i;
            # add_header here replaces the inherited ones too.
            add_header X-Request-Id \$request_id;
            add_header X-Frame-Options DENY;
        }
        location ~ ^/static/[a-z]+/ { proxy_pass http://app; }
    }
EOF
    done
}

start_gatehouse() { # scenario port [waf] [bin_dir]
    local dir="$WORK/gatehouse-$1${3:+-waf}${4:+-baseline}"
    mkdir -p "$dir"
    {
        cat <<EOF
server: { threads: 1, pid_file: $dir/pid, upgrade_sock: $dir/upgrade.sock${GATEHOUSE_SERVER_EXTRA:-} }
listeners: [ { name: bench, address: "127.0.0.1:$2" } ]
upstreams:
  app:
    backends: [ { address: "127.0.0.1:$ORIGIN_PORT" } ]
  app-canary:
    backends: [ { address: "127.0.0.1:$ORIGIN_PORT" } ]
EOF
        if [ "$1" = edge ]; then
            echo "trusted_proxies: [127.0.0.1]"
            echo "access_log: { path: $dir/access.log, format: combined }"
            echo "routes:"
            edge_routes_yaml
        elif [ -n "${3:-}" ]; then
            echo "waf: { crs: { crs: \"$CRS_DIR\", paranoia: 1 } }"
            echo "routes: [ { name: all, upstream: app, waf: crs } ]"
        else
            echo "routes: [ { name: all, upstream: app } ]"
        fi
    } >"$dir/gatehouse.yaml"
    RUST_LOG=warn taskset -c $PROXY_CORE "${4:-$BIN_DIR}/gatehouse" -c "$dir/gatehouse.yaml" >/dev/null 2>"$dir/log" &
    echo $!
}

start_bare() { # scenario port
    RUST_LOG=warn taskset -c $PROXY_CORE "$BIN_DIR/examples/bare_pingora" "127.0.0.1:$2" \
        "127.0.0.1:$ORIGIN_PORT" 1 >/dev/null 2>"$WORK/bare-$1.log" &
    echo $!
}

start_nginx() { # scenario port [modsecurity]
    local dir="$WORK/nginx-$1${3:+-modsec}"
    mkdir -p "$dir"
    {
        if [ -n "${3:-}" ]; then
            echo "load_module $MODSEC_MODULE;"
            {
                echo "SecRuleEngine On"
                echo "SecRequestBodyAccess On"
                echo "SecRequestBodyLimit 13107200"
                echo "SecRequestBodyNoFilesLimit 131072"
                echo "Include $CRS_DIR/crs-setup.conf.example"
                echo 'SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=1"'
                echo "Include $CRS_DIR/rules/*.conf"
            } >"$dir/modsec.conf"
        fi
        cat <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    keepalive_requests 1000000;
    upstream app { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
EOF
        if [ "$1" = edge ]; then
            cat >"$dir/forwarding.conf" <<EOF
proxy_set_header Connection "";
proxy_set_header Host \$host;
proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
proxy_set_header X-Real-IP \$remote_addr;
proxy_set_header X-Forwarded-Proto \$scheme;
proxy_set_header X-Forwarded-Host \$host;
proxy_set_header X-Request-Id \$request_id;
EOF
            cat <<EOF
    upstream app-canary { server 127.0.0.1:$ORIGIN_PORT; keepalive 64; }
    split_clients "\${cookie_gh_variant}" \$api_variant { 10% app-canary; * app; }
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    include $dir/forwarding.conf;
    access_log $dir/access.log combined buffer=64k flush=200ms;
    add_header X-Request-Id \$request_id;
    proxy_hide_header Server;
    proxy_hide_header X-Powered-By;
EOF
            edge_nginx_servers "$2"
        elif [ -n "${3:-}" ]; then
            echo "    access_log off;"
            echo "    modsecurity on;"
            echo "    modsecurity_rules_file $dir/modsec.conf;"
            echo "    server { listen 127.0.0.1:$2; location / { proxy_pass http://app; } }"
        else
            echo "    access_log off;"
            echo "    server { listen 127.0.0.1:$2; location / { proxy_pass http://app; } }"
        fi
        echo "}"
    } >"$dir/nginx.conf"
    taskset -c $PROXY_CORE "$NGINX" -p "$dir" -c "$dir/nginx.conf" >/dev/null 2>"$dir/log" &
    echo $!
}

# The WAF scenarios' requests: a browser's headers and cookie; the POST's 2 KB form. By
# default (WAF_REQUESTS=varied) every request is another page, session and form: the
# query arguments, Referer, cookie values and form values change from one request to the
# next, and only what a browser sends on every request (User-Agent, Accept...) repeats,
# so that the WAF's memo of values kept between requests is credited only with what it
# would find in real traffic. WAF_REQUESTS=repeated sends one request over and over.
WAF_REQUESTS=${WAF_REQUESTS:-varied}
case $WAF_REQUESTS in varied | repeated) ;; *) die "WAF_REQUESTS is varied or repeated" ;; esac
{
    echo 'wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"'
    echo 'wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"'
    echo 'wrk.headers["Accept-Language"] = "en-US,en;q=0.5"'
    echo 'wrk.headers["Accept-Encoding"] = "gzip, deflate, br"'
    echo 'wrk.headers["Referer"] = "https://shop.example.com/catalog?page=1"'
    echo 'wrk.headers["Cookie"] = "session=3f9a1c2e7b5d4a60; theme=dark; _ga=GA1.2.1234567890.1700000000"'
    if [ "$WAF_REQUESTS" = varied ]; then
        cat <<'EOF'
local n = 0
-- Request number n's own page and session.
function vary()
    n = n + 1
    wrk.headers["Referer"] = "https://shop.example.com/catalog?page=" .. n
    wrk.headers["Cookie"] = string.format("session=%07x%09x; theme=dark; _ga=GA1.2.%d.1700000000",
        (n * 7919) % 268435456, (n * 104729 + 12345) % 68719476736, 1000000000 + n)
end
EOF
    fi
} >"$WORK/browser.lua"
{
    cat "$WORK/browser.lua"
    if [ "$WAF_REQUESTS" = varied ]; then
        cat <<'EOF'
request = function()
    vary()
    local path = string.format("/products/list?category=shoes&size=%d&sort=price_asc&page=%d",
        30 + n % 20, n)
    return wrk.format("GET", path)
end
EOF
    fi
} >"$WORK/browser-get.lua"
{
    cat "$WORK/browser.lua"
    echo 'wrk.method = "POST"'
    echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
    if [ "$WAF_REQUESTS" = varied ]; then
        cat <<'EOF'
request = function()
    vary()
    local fields = {}
    for i = 0, 24 do
        fields[#fields + 1] = string.format(
            "field%d=some+ordinary+text+value+number+%04d+with+words+and+more+words+here+to+fill&",
            i, (n * 31 + i) % 10000)
    end
    return wrk.format("POST", "/account/profile", nil, string.sub(table.concat(fields), 1, 2048))
end
EOF
    else
        printf 'wrk.body = "'
        for i in $(seq 0 24); do
            printf 'field%d=some+ordinary+text+value+number+%04d+with+words+and+more+words+here+to+fill&' "$i" "$i"
        done | head -c 2048
        echo '"'
    fi
} >"$WORK/form-post.lua"

# wrk against a port; prints "requests rps p50_us p99_us"
run_wrk() { # port seconds host path [script]
    local out
    out=$(taskset -c $LOAD_CORE wrk -t1 -c"$CONNECTIONS" -d"$2s" --latency \
        -H "Host: $3" -H "X-Forwarded-For: 203.0.113.7" -H "User-Agent: Mozilla/5.0 bench" \
        -H "Cookie: theme=dark; gh_variant=4242" ${5:+-s "$5"} \
        "http://127.0.0.1:$1$4")
    awk '
        function us(v) {
            if (v ~ /us$/) return v + 0;
            if (v ~ /ms$/) return (v + 0) * 1000;
            if (v ~ /s$/) return (v + 0) * 1000000;
            return v + 0;
        }
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50%/ { p50 = us($2) }
        /^ +99%/ { p99 = us($2) }
        END { printf "%d %.0f %.0f %.0f\n", req, rps, p50, p99 }
    ' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "Gatehouse load benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "rounds=$ROUNDS duration=${DURATION}s connections=$CONNECTIONS waf_requests=$WAF_REQUESTS; proxy pinned to core $PROXY_CORE (1 worker), origin+wrk on core $LOAD_CORE"
echo

for scenario in "${SCENARIOS[@]}"; do
    script=""
    PROXIES=(gatehouse bare-pingora nginx)
    case $scenario in
        passthrough) host=localhost; path=/ ;;
        edge) host=site9.example.com; path=/api/v1/users/42 ;;
        waf | waf-post)
            host=shop.example.com
            path='/products/list?category=shoes&size=42&sort=price_asc'
            script=$WORK/browser-get.lua
            if [ "$scenario" = waf-post ]; then path=/account/profile; script=$WORK/form-post.lua; fi
            [ -r "$MODSEC_MODULE" ] ||
                die "nginx's ModSecurity module is missing (make bench-load installs libnginx-mod-http-modsecurity)"
            PROXIES=(gatehouse gatehouse-waf nginx-modsec)
            if [ -n "${BASELINE_BIN_DIR:-}" ]; then
                [ -x "$BASELINE_BIN_DIR/gatehouse" ] || die "no gatehouse in BASELINE_BIN_DIR=$BASELINE_BIN_DIR"
                PROXIES+=(baseline-waf)
            fi
            ;;
        *) die "unknown scenario $scenario (passthrough, edge, waf, waf-post)" ;;
    esac
    declare -A PORT PID
    for proxy in "${PROXIES[@]}"; do
        PORT[$proxy]=$(free_port)
        case $proxy in
            gatehouse) PID[$proxy]=$(start_gatehouse "$scenario" "${PORT[$proxy]}") ;;
            gatehouse-waf) PID[$proxy]=$(start_gatehouse "$scenario" "${PORT[$proxy]}" waf) ;;
            baseline-waf) PID[$proxy]=$(start_gatehouse "$scenario" "${PORT[$proxy]}" waf "$BASELINE_BIN_DIR") ;;
            bare-pingora) PID[$proxy]=$(start_bare "$scenario" "${PORT[$proxy]}") ;;
            nginx) PID[$proxy]=$(start_nginx "$scenario" "${PORT[$proxy]}") ;;
            nginx-modsec) PID[$proxy]=$(start_nginx "$scenario" "${PORT[$proxy]}" modsec) ;;
        esac
        PIDS+=("${PID[$proxy]}")
        wait_port "${PORT[$proxy]}"
        run_wrk "${PORT[$proxy]}" 1 "$host" "$path" "$script" >/dev/null # warm up
    done
    results="$WORK/results-$scenario"
    : >"$results"
    for round in $(seq 1 "$ROUNDS"); do
        for proxy in "${PROXIES[@]}"; do
            read -r before user_before <<<"$(cpu_ticks "${PID[$proxy]}")"
            read -r req rps p50 p99 <<<"$(run_wrk "${PORT[$proxy]}" "$DURATION" "$host" "$path" "$script")"
            read -r after user_after <<<"$(cpu_ticks "${PID[$proxy]}")"
            [ "$req" -gt 0 ] || die "$proxy served nothing in $scenario; see $WORK"
            per_request() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.2f", t * 1000000 / hz / n }'; }
            cpu_us=$(per_request $((after - before)))
            user_us=$(per_request $((user_after - user_before)))
            echo "$round $proxy $rps $p50 $p99 $cpu_us $user_us" >>"$results"
        done
    done
    for proxy in "${PROXIES[@]}"; do kill -INT "${PID[$proxy]}" 2>/dev/null || true; done

    echo "== scenario: $scenario (${script:+$(basename "$script" .lua) }http://$host$path) =="
    # (User time alone beside it: the proxy's own code, without the kernel's share, which
    # moves with how busy the other core is.)
    printf "%-14s %12s %10s %10s %14s %14s\n" proxy "requests/s" "p50 (us)" "p99 (us)" "CPU us/req" "user us/req"
    declare -A CPU
    for proxy in "${PROXIES[@]}"; do
        col() { awk -v p="$proxy" -v c="$1" '$2 == p { print $c }' "$results" | median; }
        CPU[$proxy]=$(col 6)
        printf "%-14s %12.0f %10.0f %10.0f %14.2f %14.2f\n" "$proxy" "$(col 3)" "$(col 4)" "$(col 5)" "${CPU[$proxy]}" "$(col 7)"
    done
    # Ratios per round, then the median (drift cancels within a round).
    ratio() {
        awk -v a="$1" -v b="$2" '
            $2 == a { x[$1] = $6 } $2 == b { y[$1] = $6 }
            END { for (r in x) if (y[r] > 0) print x[r] / y[r] }' "$results" | median
    }
    if [ "${PROXIES[1]}" = gatehouse-waf ]; then
        printf "ratio CPU/request  gatehouse-waf/gatehouse: %.3f   nginx-modsec/gatehouse-waf: %.1f   (medians of per-round ratios)\n" \
            "$(ratio gatehouse-waf gatehouse)" "$(ratio nginx-modsec gatehouse-waf)"
        if [ -n "${BASELINE_BIN_DIR:-}" ]; then
            printf "ratio CPU/request  gatehouse-waf/baseline-waf: %.3f   (this build against BASELINE_BIN_DIR's, same rounds)\n" \
                "$(ratio gatehouse-waf baseline-waf)"
        fi
        echo
    else
        printf "ratio CPU/request  gatehouse/bare-pingora: %.3f   gatehouse/nginx: %.3f   (medians of per-round ratios)\n\n" \
            "$(ratio gatehouse bare-pingora)" "$(ratio gatehouse nginx)"
    fi
    unset PORT PID CPU
done
