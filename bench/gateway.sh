#!/usr/bin/env bash
# HTTPS through the gateway vs. direct vs. mitmproxy (DESIGN §8; run by hand, not in CI).
#
# Small GETs over keep-alive HTTPS, with one load generator (bench/loadgen, `loadgen`) and
# one upstream (`bench-upstream`, a tiny Rust HTTPS server with a CA made at start):
#   direct      loadgen → upstream
#   clawpatrol  loadgen → CONNECT → clawpatrol gateway (MITM, 6 rules, a bearer credential
#               injected from CLAWPATROL_SECRET_BENCH_TOKEN, every request audited to
#               SQLite) → upstream
#   mitmproxy   loadgen → CONNECT → mitmdump (regular mode, quiet, lazy connections,
#               upstream verified against the same CA) → upstream
# Each scenario runs twice: a throughput run (CONNECTIONS connections) and a latency run
# (LAT_CONNECTIONS connections, one request in flight each: no queueing, so its p50 minus
# direct's is the latency a proxy adds). Then the budgets are checked: clawpatrol ≥ 20×
# mitmproxy's req/s (throughput run), p50 added ≤ 250 µs (latency run), gateway idle RSS
# ≤ 30 MiB (VmRSS after start and after the load). It also prints each proxy's CPU time per
# request (all threads, from /proc), which other load on the machine skews much less, and
# checks that every request took the intended path (errors 0, upstream counters, audit DB).
#
# CPU pinning (2-core machine): with PIN=1 (the default when `taskset` exists and there
# are ≥ 2 CPUs) the proxy under test runs alone on PROXY_CPUS (1), the load generator and
# the upstream share LOADGEN_CPUS/UPSTREAM_CPUS (0). Both proxies get the same single
# core (mitmproxy is single-threaded anyway; the gateway's tokio runtime sizes itself to
# its affinity mask, so it runs one worker); the direct run leaves CPU 1 idle. PIN=0
# lets the scheduler place everything. Numbers are only meaningful on an idle machine.
#
# The gateway logs at GATEWAY_LOG (default `warn`: no line per request, as mitmdump -q).
#
# Environment (defaults in brackets):
#   CONNECTIONS [16]  DURATION [10]  WARMUP [2]  LAT_CONNECTIONS [1]  LAT_DURATION [DURATION]
#   PIN [1]  PROXY_CPUS [1]  LOADGEN_CPUS [0]  UPSTREAM_CPUS [0]  BODY_SIZE [32]
#   GATEWAY_LOG [warn]  SKIP_MITMPROXY [0]  MITMDUMP [bench/.venv/bin/mitmdump, installed
#   from PyPI on first use]  KEEP_TMP [0]  BENCH_JSON [unset: path for the raw results]
#   CARGO_TARGET_DIR [target]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
LAT_CONNECTIONS=${LAT_CONNECTIONS:-1}
LAT_DURATION=${LAT_DURATION:-$DURATION}
PIN=${PIN:-1}
PROXY_CPUS=${PROXY_CPUS:-1}
LOADGEN_CPUS=${LOADGEN_CPUS:-0}
UPSTREAM_CPUS=${UPSTREAM_CPUS:-0}
BODY_SIZE=${BODY_SIZE:-32}
GATEWAY_LOG=${GATEWAY_LOG:-warn}
SKIP_MITMPROXY=${SKIP_MITMPROXY:-0}
KEEP_TMP=${KEEP_TMP:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$ROOT/bench/.venv

HOST=bench.test
URL="https://$HOST/bench/items?page=1"
SECRET=bench-secret-$RANDOM$RANDOM
PLACEHOLDER=placeholder-bench-token

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'bench/gateway.sh: %s\n' "$*" >&2
    exit 1
}

for tool in cargo python3 curl; do
    command -v "$tool" >/dev/null || die "\`$tool\` is needed"
done

# --- processes and cleanup -----------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/clawpatrol-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process started by this script with SIGTERM and waits for it.
stop() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

# Waits until FILE has a line starting with PREFIX (process PID alive); prints the rest.
wait_line() {
    local file=$1 prefix=$2 pid=$3 what=$4 i line
    for ((i = 0; i < 300; i++)); do
        line=$(grep -m1 "^$prefix" "$file" 2>/dev/null || true)
        if [[ -n $line ]]; then
            printf '%s\n' "${line#"$prefix"}"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "$what exited at start; see its log: $(cat "${file%.out}.log" 2>/dev/null)"
        sleep 0.1
    done
    die "$what did not start within 30 s"
}

if [[ $PIN == 1 ]]; then
    if ! command -v taskset >/dev/null || (($(nproc) < 2)); then
        log "no taskset or fewer than 2 CPUs: running unpinned"
        PIN=0
    fi
fi
if [[ $PIN == 1 ]]; then
    PIN_PROXY=(taskset -c "$PROXY_CPUS")
    PIN_LOADGEN=(taskset -c "$LOADGEN_CPUS")
    PIN_UPSTREAM=(taskset -c "$UPSTREAM_CPUS")
    PINNING="proxy on CPU $PROXY_CPUS, loadgen on CPU $LOADGEN_CPUS, upstream on CPU $UPSTREAM_CPUS"
else
    PIN_PROXY=() PIN_LOADGEN=() PIN_UPSTREAM=()
    PINNING="none"
fi

# --- build ---------------------------------------------------------------------------
log "building clawpatrol and bench/loadgen (release)"
CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet -p clawpatrol-proxy --bin clawpatrol
CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet --manifest-path bench/loadgen/Cargo.toml
BIN=$TARGET_DIR/release
CLAWPATROL=$BIN/clawpatrol

if [[ $SKIP_MITMPROXY != 1 ]]; then
    if [[ -z ${MITMDUMP:-} ]]; then
        MITMDUMP=$VENV/bin/mitmdump
        if [[ ! -x $MITMDUMP ]]; then
            log "installing mitmproxy from PyPI into bench/.venv"
            python3 -m venv "$VENV"
            "$VENV/bin/pip" install --quiet mitmproxy
        fi
    fi
    [[ -x $MITMDUMP ]] || die "mitmdump not found at $MITMDUMP"
    MITM_VERSION=$("$MITMDUMP" --version 2>/dev/null | sed -n 's/^Mitmproxy: *//p')
fi

# --- upstream ------------------------------------------------------------------------
log "starting the upstream"
"${PIN_UPSTREAM[@]}" "$BIN/bench-upstream" --ca-out "$WORK/upstream-ca.pem" --name "$HOST" \
    --body-size "$BODY_SIZE" --expect-auth "Bearer $SECRET" \
    >"$WORK/upstream.out" 2>"$WORK/upstream.log" &
PIDS+=($!)
UP_PID=$!
UP_ADDR=$(wait_line "$WORK/upstream.out" "listening on " "$UP_PID" upstream)
UP_PORT=${UP_ADDR##*:}

# The upstream's counters, fetched directly (not counted as requests).
upstream_stats() {
    curl -sS --fail --noproxy '*' --cacert "$WORK/upstream-ca.pem" \
        --resolve "$HOST:$UP_PORT:127.0.0.1" "https://$HOST:$UP_PORT/__stats"
}

# CPU time (clock ticks) of each thread of process $1, summed by thread name, as JSON.
thread_ticks() {
    [[ -n $1 ]] || {
        echo '{}'
        return
    }
    python3 - "$1" <<'PY'
import glob, json, sys
ticks = {}
for stat in glob.glob("/proc/%s/task/*/stat" % sys.argv[1]):
    try:
        text = open(stat).read()
    except OSError:
        continue
    name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
    ticks[name] = ticks.get(name, 0) + int(rest[11]) + int(rest[12])  # utime + stime
print(json.dumps(ticks))
PY
}

# run NAME CONNS DURATION [loadgen args...]: one load run; leaves NAME.json (loadgen's
# result, the upstream's counter deltas, and the CPU time of the proxy $PROXY_PID by
# thread name) in $WORK.
PROXY_PID=
run() {
    local name=$1 conns=$2 duration=$3 before after cpu_before cpu_after
    shift 3
    cpu_before=$(thread_ticks "$PROXY_PID")
    before=$(upstream_stats)
    log "$name: $conns connection(s), ${WARMUP}s warm-up + ${duration}s"
    if ! "${PIN_LOADGEN[@]}" "$BIN/loadgen" --url "$URL" --connections "$conns" \
        --duration "$duration" --warmup "$WARMUP" \
        --header "Authorization: Bearer $PLACEHOLDER" --header "Accept: */*" "$@" \
        >"$WORK/$name.load" 2>"$WORK/$name.err"; then
        log "$name: the load generator failed: $(cat "$WORK/$name.err")"
    fi
    [[ -s $WORK/$name.err ]] && sed 's/^/    /' "$WORK/$name.err" >&2
    after=$(upstream_stats)
    cpu_after=$(thread_ticks "$PROXY_PID")
    python3 - "$WORK/$name.load" "$before" "$after" "$cpu_before" "$cpu_after" "$(getconf CLK_TCK)" \
        >"$WORK/$name.json" <<'PY'
import json, sys
path, before, after = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
cpu_before, cpu_after, hz = json.loads(sys.argv[4]), json.loads(sys.argv[5]), int(sys.argv[6])
try:
    r = json.load(open(path))
except Exception:
    r = {"requests": 0, "rps": 0, "p50_us": 0, "p99_us": 0, "errors": -1}
r["upstream"] = {k: after[k] - before[k] for k in after}
r["upstream"]["connections"] -= 1  # the connection of the second /__stats fetch
r["proxy_cpu_s"] = {k: (v - cpu_before.get(k, 0)) / hz for k, v in cpu_after.items()}
print(json.dumps(r))
PY
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- direct --------------------------------------------------------------------------
run direct "$CONNECTIONS" "$DURATION" --connect-to "$UP_ADDR" --ca "$WORK/upstream-ca.pem"
run direct-lat "$LAT_CONNECTIONS" "$LAT_DURATION" --connect-to "$UP_ADDR" --ca "$WORK/upstream-ca.pem"

# --- clawpatrol ----------------------------------------------------------------------
{
    cat <<EOF
# bench/gateway.sh: one HTTPS endpoint with a private CA, a bearer credential injected
# from CLAWPATROL_SECRET_BENCH_TOKEN, and a handful of rules every request is decided on.
schema_version = 1

endpoint "https" "bench" {
  hosts   = ["$HOST"]
  ca_cert = <<EOT
$(cat "$WORK/upstream-ca.pem")
EOT
}

credential "bearer_token" "bench-token" {
  endpoint    = https.bench
  placeholder = "$PLACEHOLDER"
}

profile "default" {
  credentials = [bearer_token.bench-token]
}

rule "no-token-leak" {
  endpoint  = https.bench
  priority  = 1000
  condition = "http.method in ['POST', 'PUT', 'PATCH'] && http.body.contains('ghp_')"
  verdict   = "deny"
  reason    = "request bodies must not carry tokens"
}

rule "no-deletes" {
  endpoint  = https.bench
  priority  = 900
  condition = "http.method == 'DELETE'"
  verdict   = "deny"
  reason    = "deletes are not allowed"
}

rule "no-admin" {
  endpoint  = https.bench
  priority  = 800
  condition = "http.path.startsWith('/admin')"
  verdict   = "deny"
  reason    = "the admin API is off limits"
}

rule "read-only-archive" {
  endpoint  = https.bench
  priority  = 700
  condition = "http.path.matches('^/archive/') && !(http.method in ['GET', 'HEAD'])"
  verdict   = "deny"
  reason    = "the archive is read-only"
}

rule "reads" {
  endpoint  = https.bench
  priority  = 100
  condition = "http.method in ['GET', 'HEAD'] && http.path.startsWith('/bench/')"
  verdict   = "allow"
}

rule "writes" {
  endpoint  = https.bench
  priority  = 50
  condition = "http.method in ['POST', 'PUT', 'PATCH']"
  verdict   = "allow"
}
EOF
} >"$WORK/policy.hcl"
"$CLAWPATROL" validate "$WORK/policy.hcl" >"$WORK/validate.log" 2>&1 ||
    die "the bench policy does not validate: $(cat "$WORK/validate.log")"

log "starting the gateway"
"${PIN_PROXY[@]}" env -u HTTPS_PROXY -u HTTP_PROXY -u https_proxy -u http_proxy \
    RUST_LOG="$GATEWAY_LOG" CLAWPATROL_SECRET_BENCH_TOKEN="$SECRET" \
    "$CLAWPATROL" gateway "$WORK/policy.hcl" --state-dir "$WORK/state" \
    --proxy-listen 127.0.0.1:0 --transparent-listen 127.0.0.1:0 \
    --connect-to "$HOST:443:$UP_ADDR" \
    >"$WORK/gateway.out" 2>"$WORK/gateway.log" &
PIDS+=($!)
GW_PID=$!
GW_DB=$(wait_line "$WORK/gateway.out" "audit database " "$GW_PID" gateway)
GW_PROXY=$(wait_line "$WORK/gateway.out" "proxy listening on " "$GW_PID" gateway)
GW_CA=$(wait_line "$WORK/gateway.out" "ca certificate " "$GW_PID" gateway)
sleep 1
GW_RSS_START=$(rss_kib "$GW_PID")
PROXY_PID=$GW_PID

run clawpatrol "$CONNECTIONS" "$DURATION" --proxy "$GW_PROXY" --ca "$GW_CA"
run clawpatrol-lat "$LAT_CONNECTIONS" "$LAT_DURATION" --proxy "$GW_PROXY" --ca "$GW_CA"
sleep 2
GW_RSS_AFTER=$(rss_kib "$GW_PID")
GW_HWM=$(hwm_kib "$GW_PID")
PROXY_PID=
log "stopping the gateway (flushes the audit queue)"
stop "$GW_PID"
GW_AUDIT=$(python3 - "$GW_DB" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = dict(db.execute("SELECT action, count(*) FROM actions GROUP BY action").fetchall())
injected = db.execute(
    "SELECT count(*) FROM actions WHERE credential = 'bench-token' AND action = 'allow'"
).fetchone()[0]
print(json.dumps({"rows": sum(rows.values()), "by_action": rows, "allowed_with_credential": injected}))
PY
)
GW_LOG_WARN=$(grep -c -E 'WARN|ERROR' "$WORK/gateway.log" || true)

# --- mitmproxy -----------------------------------------------------------------------
if [[ $SKIP_MITMPROXY != 1 ]]; then
    MITM_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log "starting mitmdump $MITM_VERSION"
    "${PIN_PROXY[@]}" env -u HTTPS_PROXY -u HTTP_PROXY -u https_proxy -u http_proxy \
        BENCH_CONNECT_TO="$HOST:443:$UP_ADDR" \
        "$MITMDUMP" -q --mode regular --listen-host 127.0.0.1 --listen-port "$MITM_PORT" \
        --set confdir="$WORK/mitmproxy" \
        --set ssl_verify_upstream_trusted_ca="$WORK/upstream-ca.pem" \
        --set connection_strategy=lazy \
        --set flow_detail=0 --set termlog_verbosity=error \
        -s "$ROOT/bench/mitm_connect_to.py" \
        >"$WORK/mitmproxy.log" 2>&1 &
    PIDS+=($!)
    MITM_PID=$!
    for ((i = 0; i < 300; i++)); do
        if [[ -s $WORK/mitmproxy/mitmproxy-ca-cert.pem ]] &&
            (exec 3<>"/dev/tcp/127.0.0.1/$MITM_PORT") 2>/dev/null; then
            break
        fi
        kill -0 "$MITM_PID" 2>/dev/null || die "mitmdump exited at start: $(cat "$WORK/mitmproxy.log")"
        sleep 0.1
    done
    ((i < 300)) || die "mitmdump did not start within 30 s"
    PROXY_PID=$MITM_PID
    run mitmproxy "$CONNECTIONS" "$DURATION" --proxy "127.0.0.1:$MITM_PORT" --ca "$WORK/mitmproxy/mitmproxy-ca-cert.pem"
    run mitmproxy-lat "$LAT_CONNECTIONS" "$LAT_DURATION" --proxy "127.0.0.1:$MITM_PORT" --ca "$WORK/mitmproxy/mitmproxy-ca-cert.pem"
    PROXY_PID=
    stop "$MITM_PID"
fi

# --- report --------------------------------------------------------------------------
export WORK CONNECTIONS DURATION WARMUP LAT_CONNECTIONS LAT_DURATION PINNING BODY_SIZE \
    GW_RSS_START GW_RSS_AFTER GW_HWM GW_AUDIT GW_LOG_WARN GATEWAY_LOG SKIP_MITMPROXY
export MITM_VERSION=${MITM_VERSION:-} BENCH_JSON=${BENCH_JSON:-}
python3 - <<'PY'
import json, os, sys

env = os.environ
work = env["WORK"]
mitm = env["SKIP_MITMPROXY"] != "1"
names = ["direct", "clawpatrol"] + (["mitmproxy"] if mitm else [])
res = {}
for n in names:
    for suffix in ("", "-lat"):
        with open(os.path.join(work, n + suffix + ".json")) as f:
            res[n + suffix] = json.load(f)
audit = json.loads(env["GW_AUDIT"])
rss_start, rss_after, hwm = (int(env[k]) / 1024 for k in ("GW_RSS_START", "GW_RSS_AFTER", "GW_HWM"))

print()
print("clawpatrol gateway benchmark: keep-alive HTTPS GETs, %s-byte bodies" % env["BODY_SIZE"])
print("warm-up %s s; CPU pinning: %s; gateway log level %s; mitmproxy %s"
      % (env["WARMUP"], env["PINNING"], env["GATEWAY_LOG"], env["MITM_VERSION"] or "skipped"))

def table(title, suffix):
    print()
    print(title)
    print("  %-12s %10s %9s %9s %13s %7s" % ("scenario", "req/s", "p50 µs", "p99 µs", "p50 added µs", "errors"))
    base = res["direct" + suffix]["p50_us"]
    for n in names:
        r = res[n + suffix]
        added = "-" if n == "direct" else "%+d" % (r["p50_us"] - base)
        print("  %-12s %10.0f %9d %9d %13s %7d" % (n, r["rps"], r["p50_us"], r["p99_us"], added, r["errors"]))

table("Throughput: %s connections, %s s" % (env["CONNECTIONS"], env["DURATION"]), "")
table("Latency: %s connection(s), one request in flight each, %s s"
      % (env["LAT_CONNECTIONS"], env["LAT_DURATION"]), "-lat")

cp, cpl, dl = res["clawpatrol"], res["clawpatrol-lat"], res["direct-lat"]
added = cpl["p50_us"] - dl["p50_us"]
rows = []
if mitm and res["mitmproxy"]["rps"] > 0:
    ratio = cp["rps"] / res["mitmproxy"]["rps"]
    rows.append(("clawpatrol / mitmproxy req/s", "%.1f×" % ratio, "≥ 20×", ratio >= 20))
else:
    rows.append(("clawpatrol / mitmproxy req/s", "n/a", "≥ 20×", None))
rows.append(("p50 added by clawpatrol (latency run)", "%d µs" % added, "≤ 250 µs", added <= 250))
rows.append(("gateway idle RSS after start", "%.1f MiB" % rss_start, "≤ 30 MiB", rss_start <= 30))
rows.append(("gateway idle RSS after the load", "%.1f MiB" % rss_after, "≤ 30 MiB", rss_after <= 30))
print()
print("Budgets (DESIGN §8)")
for what, got, budget, ok in rows:
    verdict = {True: "ok", False: "OVER BUDGET", None: "-"}[ok]
    print("  %-40s %10s   %-9s %s" % (what, got, budget, verdict))
print("  (gateway peak RSS under load: %.1f MiB)" % hwm)

# CPU time the proxy process spent per request (all its threads, from /proc), which is
# less sensitive to other load on the machine than wall-clock figures.
print()
print("Proxy CPU time per request (throughput run; from /proc/<pid>/task/*/stat, %s Hz ticks)"
      % os.popen("getconf CLK_TCK").read().strip())
for n in names[1:]:
    r = res[n]
    cpu = r.get("proxy_cpu_s", {})
    reqs = r["upstream"]["requests"]
    if not reqs or not cpu:
        continue
    total = sum(cpu.values()) / reqs * 1e6
    parts = ", ".join("%s %.0f µs" % (k, v / reqs * 1e6) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0)
    print("  %-12s %6.0f µs  (%s)" % (n, total, parts))

# Did the requests really take the path they claim? Each loadgen run trusts only the CA
# of the hop it talks TLS to (upstream, gateway or mitmproxy), so a completed request was
# intercepted by that hop; the upstream's counters and the audit database confirm it.
problems = []
for n, r in res.items():
    up = r["upstream"]
    if r["errors"] != 0:
        problems.append("%s: %d errors" % (n, r["errors"]))
    if r["requests"] == 0:
        problems.append("%s: no request completed" % n)
    if up["requests"] < r["requests"]:
        problems.append("%s: upstream saw %d requests, loadgen counted %d" % (n, up["requests"], r["requests"]))
    if n.startswith("clawpatrol") and up["authorized"] != up["requests"]:
        problems.append("%s: the credential was injected in %d of %d upstream requests"
                        % (n, up["authorized"], up["requests"]))
    if not n.startswith("clawpatrol") and up["authorized"] != 0:
        problems.append("%s: the upstream saw the real secret without the gateway" % n)
gw_upstream = res["clawpatrol"]["upstream"]["requests"] + res["clawpatrol-lat"]["upstream"]["requests"]
if audit["allowed_with_credential"] != gw_upstream:
    problems.append("audit: %d allowed rows with the credential for %d upstream requests"
                    % (audit["allowed_with_credential"], gw_upstream))
print()
print("Checks")
for n in names:
    for suffix in ("", "-lat"):
        r = res[n + suffix]
        print("  %-16s loadgen %7d requests (%d errors, %d connects); upstream %7d requests on %d connections, %d with the real secret"
              % (n + suffix, r["requests"], r["errors"], r["connects"], r["upstream"]["requests"],
                 r["upstream"]["connections"], r["upstream"]["authorized"]))
print("  gateway audit: %d rows %s, %d allowed with credential bench-token; %s WARN/ERROR log lines"
      % (audit["rows"], json.dumps(audit["by_action"]), audit["allowed_with_credential"], env["GW_LOG_WARN"]))
for p in problems:
    print("  PROBLEM: " + p)
if not problems:
    print("  all requests took the intended path, errors = 0")

if env.get("BENCH_JSON"):
    with open(env["BENCH_JSON"], "w") as f:
        json.dump({"runs": res, "audit": audit, "rss_kib": {"start": env["GW_RSS_START"],
                   "after": env["GW_RSS_AFTER"], "peak": env["GW_HWM"]}}, f, indent=2)
sys.exit(1 if problems else 0)
PY
