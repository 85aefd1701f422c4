#!/usr/bin/env bash
# Postgres through the gateway vs. direct vs. pgbouncer (session mode), side by side.
#
#   bench/pgbench.sh                      # pgbench -S -c 16 -j 2 -T 30 per target, then 1-client latency runs
#   PERF_OUT=/tmp/gw.perf bench/pgbench.sh  # also record a perf profile of the gateway under load
#   PERF_OUT=/tmp/gw.perf PERF_ARGS="--call-graph dwarf -F 499" bench/pgbench.sh   # perf flags (default -g)
#   CLIENTS=8 DURATION=10 bench/pgbench.sh
#   LAYOUTS=pinned bench/pgbench.sh         # only one CPU layout (default: "shared pinned")
#   BUSY_POLL=500 bench/pgbench.sh          # busy-polling window of the second gateway run, µs
#                                           # (default 1000; 0 skips that run)
#   RUNS=5 bench/pgbench.sh                 # repeat every layout's targets 5 times, interleaved,
#                                           # and print the medians and how many runs met the budget
#   GATEWAY_ARGS="--postgres-threads 1" bench/pgbench.sh   # extra gateway flags (experiments)
#
# This machine's speed can swing by 20 % or more between identical runs, so one run decides
# little: with RUNS > 1 each run measures every target once, in the same order, and the
# summary gives each run's figures, then the medians and the count of runs in which the
# gateway met each budget.
#
# The gateway is measured twice per layout: as started by default, and with
# `--postgres-busy-poll $BUSY_POLL` (its session threads keep polling for the next message
# for that long instead of sleeping, which pays off only when the gateway has CPUs of its
# own: compare the pinned and shared layouts).
#
# Each target is measured in two CPU layouts, one after the other:
#   shared  server, pgbench and proxy float over every CPU (the proxy's CPU is taken from the
#           server and the client);
#   pinned  the proxy alone on the last CPU, server and pgbench on the others (like
#           bench/gateway.sh, which pins each proxy to one core; a deployed proxy does not
#           share the database's CPUs). Needs at least 2 CPUs.
# The proxies are restarted for each layout, so the gateway sizes its session threads from
# the CPUs it may use.
#
# Needs root (the PostgreSQL server runs as the `postgres` user via runuser), PostgreSQL 15
# server binaries (/usr/lib/postgresql/*/bin), pgbench and pgbouncer (installed with apt-get
# when missing). Everything lives in a temporary directory and every process started here is
# stopped on exit. Budget (DESIGN §8): gateway TPS ≥ 80 % of direct and ≥ pgbouncer's.
#
# Median latency added per query comes from 1-client runs (`pgbench -l` per-transaction logs):
# with 16 clients on 2 cores the median is dominated by queueing.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS="${CLIENTS:-16}"
LAYOUTS="${LAYOUTS:-shared pinned}"
PERF_ARGS="${PERF_ARGS:--g}"
for layout in $LAYOUTS; do
  case "$layout" in shared|pinned) ;; *) echo "bench/pgbench.sh: unknown layout '$layout' in LAYOUTS (shared, pinned)" >&2; exit 2 ;; esac
done
DURATION="${DURATION:-30}"
LAT_DURATION="${LAT_DURATION:-10}"
BUSY_POLL="${BUSY_POLL:-1000}"
case "$BUSY_POLL" in ''|*[!0-9]*) echo "bench/pgbench.sh: BUSY_POLL must be a number of microseconds" >&2; exit 2 ;; esac
if [ "$BUSY_POLL" -gt 10000 ]; then echo "bench/pgbench.sh: BUSY_POLL is at most 10000 µs (the gateway's limit)" >&2; exit 2; fi
SCALE="${SCALE:-10}"
GATEWAY_ARGS="${GATEWAY_ARGS:-}"
RUNS="${RUNS:-1}"
case "$RUNS" in ''|*[!0-9]*) RUNS=0 ;; esac
if [ "$((10#$RUNS))" -lt 1 ]; then echo "bench/pgbench.sh: RUNS must be a whole number of runs, at least 1" >&2; exit 2; fi
RUNS="$((10#$RUNS))"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/pgbench.sh: run as root (initdb and pg_ctl run as the postgres user via runuser)" >&2
  exit 2
fi
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "==> apt-get install pgbouncer"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
command -v pgbench >/dev/null || { echo "pgbench is missing (apt-get install postgresql-client)" >&2; exit 2; }

echo "==> building clawpatrol (release)"
cargo build --release --locked -q -p clawpatrol-proxy
target_dir="${CARGO_TARGET_DIR:-target}"
CLAWPATROL="$target_dir/release/clawpatrol"

tmp="$(mktemp -d /tmp/cp-pgbench.XXXXXX)"
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -d "$tmp/data" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT="$(free_port)"; GW_PORT="$(free_port)"; BOUNCER_PORT="$(free_port)"
PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "==> PostgreSQL on 127.0.0.1:$PG_PORT"
mkdir "$tmp/data"; chown -R postgres:postgres "$tmp"
runuser -u postgres -- "$PGBIN/initdb" -D "$tmp/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
cat >> "$tmp/data/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
password_encryption = 'scram-sha-256'
max_connections = 100
fsync = off
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start >/dev/null
runuser -u postgres -- psql -X -q -h "$tmp" -p "$PG_PORT" -d postgres \
  -c "CREATE ROLE app LOGIN PASSWORD '$PASSWORD'" -c "CREATE DATABASE appdb OWNER app"
PGPASSWORD="$PASSWORD" pgbench -q -i -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U app appdb >/dev/null 2>&1

cat > "$tmp/policy.hcl" <<HCL
schema_version = 1
endpoint "postgres" "db" {
  host    = "127.0.0.1:$PG_PORT"
  sslmode = "disable"
  listen  = "127.0.0.1:$GW_PORT"
}
credential "postgres_credential" "app" {
  endpoint = postgres.db
  user     = "app"
}
profile "bench" {
  credentials = [postgres_credential.app]
}
rule "no-ddl" {
  endpoint  = postgres.db
  priority  = 100
  condition = "sql.verb in ['drop', 'create', 'alter', 'truncate']"
  verdict   = "deny"
  reason    = "schema changes land via migrations"
}
rule "no-files" {
  endpoint  = postgres.db
  condition = "'pg_read_file' in sql.functions"
  verdict   = "deny"
}
rule "reads" {
  endpoint  = postgres.db
  condition = "sql.verb == 'select'"
  verdict   = "allow"
}
HCL
mkdir -p "$tmp/bouncer"; chown postgres:postgres "$tmp/bouncer"
printf '"app" "%s"\n' "$PASSWORD" > "$tmp/bouncer/userlist.txt"
cat > "$tmp/bouncer/pgbouncer.ini" <<INI
[databases]
appdb = host=127.0.0.1 port=$PG_PORT dbname=appdb
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $tmp/bouncer/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
logfile = $tmp/bouncer/pgbouncer.log
pidfile = $tmp/bouncer/pgbouncer.pid
INI
chown -R postgres:postgres "$tmp/bouncer"

NCPU="$(nproc --all)"
LAST_CPU=$(( NCPU - 1 ))
REST_CPUS="$([ "$NCPU" -gt 2 ] && echo "0-$(( NCPU - 2 ))" || echo 0)"
POSTMASTER_PID="$(head -1 "$tmp/data/postmaster.pid")"

# layout_cpus LAYOUT -> "SERVER_CPUS PROXY_CPUS" (taskset lists)
layout_cpus() {
  case "$1" in
    shared) echo "0-$LAST_CPU 0-$LAST_CPU" ;;
    pinned) echo "$REST_CPUS $LAST_CPU" ;;
  esac
}
# Moves the PostgreSQL server (postmaster and its running children) to CPUS; backends forked
# later inherit the postmaster's affinity.
pin_server() {
  taskset -a -pc "$1" "$POSTMASTER_PID" >/dev/null
  for c in $(pgrep -P "$POSTMASTER_PID"); do taskset -a -pc "$1" "$c" >/dev/null; done
}

start_gateway() { # NAME PROXY_CPUS [extra gateway args...]
  local name="$1" cpus="$2"; shift 2
  echo "==> clawpatrol gateway on 127.0.0.1:$GW_PORT (CPUs $cpus) $*"
  CLAWPATROL_SECRET_APP="$PASSWORD" RUST_LOG=warn taskset -c "$cpus" "$CLAWPATROL" gateway "$tmp/policy.hcl" \
    --state-dir "$tmp/state-$name" --proxy-listen 127.0.0.1:0 --transparent-listen 127.0.0.1:0 \
    --management-listen 127.0.0.1:0 "$@" >"$tmp/gw-$name.out" 2>"$tmp/gw-$name.err" &
  GW_PID="$!"; pids+=("$GW_PID")
  for _ in $(seq 100); do grep -q "^audit database" "$tmp/gw-$name.out" 2>/dev/null && break; sleep 0.1; done
  grep -q "^audit database" "$tmp/gw-$name.out" || { cat "$tmp/gw-$name.err" >&2; exit 1; }
}
# Stops the gateway and prints the id of its last audit row (it really decided every
# statement: rows are flushed on a clean shutdown), the audit rows it dropped, and how often connections waited for the audit writer (both from the log
# lines it writes when it stops).
stop_gateway() { # NAME
  kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null || true
  local id dropped held
  id="$("$CLAWPATROL" audit tail -n 1 --json --state-dir "$tmp/state-$1" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["id"])')"
  dropped="$({ grep -o 'dropped=[0-9]*' "$tmp/gw-$1.err" || true; } | tail -1 | cut -d= -f2)"
  held="$({ grep -o 'held_back=[0-9]*' "$tmp/gw-$1.err" || true; } | tail -1 | cut -d= -f2)"
  echo "$id ${dropped:-0} ${held:-0}"
}
start_pgbouncer() { # PROXY_CPUS
  echo "==> pgbouncer (session mode) on 127.0.0.1:$BOUNCER_PORT (CPU $1)"
  rm -f "$tmp/bouncer/pgbouncer.pid"
  taskset -c "$1" runuser -u postgres -- "$PGBOUNCER" -d "$tmp/bouncer/pgbouncer.ini"
  for _ in $(seq 50); do [ -s "$tmp/bouncer/pgbouncer.pid" ] && break; sleep 0.1; done
  sleep 0.3
  BOUNCER_PID="$(cat "$tmp/bouncer/pgbouncer.pid")"; pids+=("$BOUNCER_PID")
}
stop_pgbouncer() {
  kill -TERM "$BOUNCER_PID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$BOUNCER_PID" 2>/dev/null || break; sleep 0.1; done
}

# run NAME PORT USER CLIENTS SECONDS CPUS [log] -> prints "tps"
run() {
  local name="$1" port="$2" user="$3" clients="$4" secs="$5" cpus="$6" log="${7:-}"
  local args=(-n -S -c "$clients" -j "$(( clients < 2 ? 1 : 2 ))" -T "$secs" -h 127.0.0.1 -p "$port" -U "$user")
  if [ -n "$log" ]; then args+=(-l --log-prefix "$tmp/$name"); fi
  local busy0 total0 busy1 total1
  read -r busy0 total0 < <(machine_ticks)
  PGPASSWORD="$PASSWORD" taskset -c "$cpus" pgbench "${args[@]}" appdb > "$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out" >&2; exit 1; }
  read -r busy1 total1 < <(machine_ticks)
  echo "$(( busy1 - busy0 )) $(( total1 - total0 ))" > "$tmp/$name.cpu"
  # Transactions processed (one statement each with -S), for the audit row check.
  sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$tmp/$name.out" > "$tmp/$name.ntx"
  grep -E "^tps = " "$tmp/$name.out" | head -1 | sed -E 's/^tps = ([0-9.]+).*/\1/'
}
# median per-transaction latency (µs) of a run's -l logs (NAME.<pid>[.<thread>]; not NAME.out or NAME.cpu)
median_us() { cat "$tmp/$1".[0-9]* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Busy and total CPU ticks of the whole machine so far, all CPUs (/proc/stat): busy is user,
# nice, system, irq and softirq; total adds idle, iowait and steal.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
# CPU time (user + system, clock ticks) a process has used so far, all threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# System (kernel) CPU time alone, clock ticks.
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }
# CPU ticks the gateway's audit writer thread (`clawpatrol-audit`, 15 characters in comm) has
# used so far; 0 for processes without one.
writer_ticks() {
  local n=0 t
  for t in /proc/"$1"/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in
      clawpatrol-audi*) n=$(( n + $(awk '{print $14 + $15}' "$t/stat") )) ;;
    esac
  done
  echo "$n"
}
# Context switches (voluntary + involuntary) of all of a process's threads so far.
ctx_switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
HZ="$(getconf CLK_TCK)"

# measure_proxy NAME PID PORT USER CPUS: a throughput run through a proxy; writes the run's
# TPS to $tmp/NAME.tps and the proxy's CPU ticks, kernel ticks, context switches and audit
# writer ticks during it to $tmp/NAME.proxy
measure_proxy() {
  local name="$1" pid="$2" port="$3" user="$4" cpus="$5" t0 s0 c0 w0
  t0="$(cpu_ticks "$pid")"; s0="$(sys_ticks "$pid")"; c0="$(ctx_switches "$pid")"; w0="$(writer_ticks "$pid")"
  run "$name" "$port" "$user" "$CLIENTS" "$DURATION" "$cpus" > "$tmp/$name.tps"
  echo "$(( $(cpu_ticks "$pid") - t0 )) $(( $(sys_ticks "$pid") - s0 )) $(( $(ctx_switches "$pid") - c0 )) $(( $(writer_ticks "$pid") - w0 ))" > "$tmp/$name.proxy"
}

# measure_run LAYOUT SERVER_CPUS PROXY_CPUS R: every target once (run R of the layout); appends
# one line per target to $tmp/lines-LAYOUT (run|name|label|tps|p50|proxy figures|machine
# figures|audit rows). Not run in a subshell: the processes it starts must stay in $pids.
measure_run() {
  local layout="$1" server_cpus="$2" proxy_cpus="$3" r="$4" tag="$1-r$4"
  # Targets: name and label; the gateway's audit row count per gateway target.
  local targets=("direct|direct")
  run "direct-$tag" "$PG_PORT" app "$CLIENTS" "$DURATION" "$server_cpus" > "$tmp/direct-$tag.tps"
  echo "0 0 0 0" > "$tmp/direct-$tag.proxy"
  run "lat_direct-$tag" "$PG_PORT" app 1 "$LAT_DURATION" "$server_cpus" log >/dev/null

  local gw_runs=("gateway|clawpatrol gateway|")
  if [ "$BUSY_POLL" -gt 0 ]; then gw_runs+=("gateway_bp|gateway, busy-poll $BUSY_POLL µs|--postgres-busy-poll $BUSY_POLL"); fi
  local entry name label args
  for entry in "${gw_runs[@]}"; do
    IFS='|' read -r name label args <<< "$entry"
    # shellcheck disable=SC2086 # $args and $GATEWAY_ARGS are flags and their values
    start_gateway "$name-$tag" "$proxy_cpus" $args $GATEWAY_ARGS
    if [ -n "${PERF_OUT:-}" ] && [ "$r" -eq 1 ]; then
      # Optional CPU profile of the gateway during its first throughput run (perf record $PERF_ARGS).
      # shellcheck disable=SC2086 # $PERF_ARGS is a list of perf flags
      (sleep 5; perf record -q $PERF_ARGS -p "$GW_PID" -o "$PERF_OUT.$name.$layout" -- sleep 10 >/dev/null 2>&1) &
    fi
    measure_proxy "$name-$tag" "$GW_PID" "$GW_PORT" agent-placeholder "$server_cpus"
    run "lat_$name-$tag" "$GW_PORT" agent-placeholder 1 "$LAT_DURATION" "$server_cpus" log >/dev/null
    stop_gateway "$name-$tag" > "$tmp/$name-$tag.rows"
    targets+=("$name|$label")
  done

  start_pgbouncer "$proxy_cpus"
  measure_proxy "pgbouncer-$tag" "$BOUNCER_PID" "$BOUNCER_PORT" app "$server_cpus"
  run "lat_pgbouncer-$tag" "$BOUNCER_PORT" app 1 "$LAT_DURATION" "$server_cpus" log >/dev/null
  stop_pgbouncer
  targets+=("pgbouncer|pgbouncer (session)")

  local t rows
  for t in "${targets[@]}"; do
    IFS='|' read -r name label <<< "$t"
    rows=""
    [ -f "$tmp/$name-$tag.rows" ] && rows="$(cat "$tmp/$name-$tag.rows")"
    echo "$r|$name|$label|$(cat "$tmp/$name-$tag.tps")|$(median_us "lat_$name-$tag")|$(cat "$tmp/$name-$tag.proxy")|$(cat "$tmp/$name-$tag.cpu")|$rows|$(( $(cat "$tmp/$name-$tag.ntx") + $(cat "$tmp/lat_$name-$tag.ntx") ))" >> "$tmp/lines-$layout"
  done
}

# measure LAYOUT: RUNS interleaved runs of every target in that layout; appends the layout's
# summary to $tmp/summary
measure() {
  local layout="$1" server_cpus proxy_cpus r
  read -r server_cpus proxy_cpus < <(layout_cpus "$layout")
  echo "==> layout $layout: server and pgbench on CPUs $server_cpus, proxies on CPUs $proxy_cpus"
  pin_server "$server_cpus"
  : > "$tmp/lines-$layout"
  for r in $(seq "$RUNS"); do
    echo "==> run $r of $RUNS: pgbench -S -c $CLIENTS -T $DURATION (scale $SCALE) per target, then 1-client latency runs ($LAT_DURATION s)"
    measure_run "$layout" "$server_cpus" "$proxy_cpus" "$r"
  done
  python3 - "$layout" "$CLIENTS" "$DURATION" "$HZ" "$server_cpus" "$proxy_cpus" "$tmp/lines-$layout" >> "$tmp/summary" <<'PY'
import statistics
import sys
layout, clients, secs, hz, server_cpus, proxy_cpus, lines = sys.argv[1:8]
secs, hz = float(secs), int(hz)
runs = {}
for line in open(lines, encoding="utf-8").read().splitlines():
    run, name, label, tps, p50, proxy, machine, audit, statements = line.split("|")
    ticks, sys_ticks, cs, writer = (int(x) for x in proxy.split())
    busy, total = (int(x) for x in machine.split())
    runs.setdefault(int(run), []).append(dict(
        name=name, label=label, tps=float(tps), p50=int(p50), ticks=ticks, sys=sys_ticks,
        cs=cs, writer=writer, busy=busy, total=total, audit=audit, statements=int(statements)))

def per_txn(ticks, tps):
    return 1e6 * ticks / hz / (tps * secs)

print(f"layout {layout} (server and pgbench on CPUs {server_cpus}, proxy on CPUs {proxy_cpus}); "
      f"pgbench -S, {clients} clients, {secs:.0f} s")
# Per gateway target: (share of direct, ratio to pgbouncer, p50 added) of each run.
across = {}
for run, rows in sorted(runs.items()):
    by = {r["name"]: r for r in rows}
    d, b = by["direct"], by["pgbouncer"]
    if len(runs) > 1:
        print(f" run {run} of {len(runs)}")
    print("                                         TPS   vs direct   p50 (1 client)   p50 added   proxy CPU/txn (kernel)   ctx sw/txn")
    for r in rows:
        line = f"  {r['label']:<32} {r['tps']:9.0f}   {100 * r['tps'] / d['tps']:7.1f} %    {r['p50']:7d} µs"
        if r is d:
            line += "          —"
        else:
            line += (f"   {r['p50'] - d['p50']:+7d} µs   {per_txn(r['ticks'], r['tps']):6.0f} µs "
                     f"({per_txn(r['sys'], r['tps']):3.0f} µs)        {r['cs'] / (r['tps'] * secs):.2f}")
        print(line)
    for r in rows:
        if r["audit"]:
            share, ratio = r["tps"] / d["tps"], r["tps"] / b["tps"]
            across.setdefault(r["label"], []).append((share, ratio, r["p50"] - d["p50"]))
            rows_written, dropped, held = (int(x) for x in r["audit"].split())
            print(f"  budget, {r['label']}: ≥ 80 % of direct: {'met' if share >= 0.8 else 'MISSED'} "
                  f"({100 * share:.1f} %); ≥ pgbouncer: {'met' if ratio >= 1 else 'MISSED'} "
                  f"({ratio:.2f}×); audit rows written: {rows_written} for {r['statements']} transactions "
                  f"(plus one connect row per session and pgbench's setup queries), dropped: {dropped}"
                  + (f" (PROBLEM: the figures include statements that were not audited)" if dropped else "")
                  + f"; connections held back for the audit writer: {held} times")
    # Whole-machine CPU per transaction (server, pgbench and proxy together) and how busy the
    # machine was: when the CPUs the run may use are saturated, TPS is their capacity divided
    # by the CPU each transaction costs, so a proxy's share of direct TPS is at most
    # direct CPU/txn ÷ (direct CPU/txn + proxy CPU/txn).
    print("  whole machine, CPU/txn (busy): " + ", ".join(
        f"{r['name']} {per_txn(r['busy'], r['tps']):.0f} µs ({100 * r['busy'] / max(r['total'], 1):.0f} %)" for r in rows))
    print(f"  80 % of direct on saturated CPUs leaves a proxy {per_txn(d['busy'], d['tps']) / 4:.0f} µs of CPU per "
          "transaction (direct CPU/txn ÷ 4); used: " + ", ".join(
              f"{r['name']} {per_txn(r['ticks'], r['tps']):.0f} µs"
              + (f" (audit writer thread {per_txn(r['writer'], r['tps']):.0f} µs)" if r["audit"] else "")
              for r in rows if r is not d))
if len(runs) > 1:
    n = len(runs)
    print(f" over {n} runs (median, and the runs in which the gateway met each budget)")
    for label, figs in across.items():
        shares, ratios, added = zip(*figs)
        print(f"  {label}: {100 * statistics.median(shares):.1f} % of direct "
              f"(met in {sum(s >= 0.8 for s in shares)} of {n}; range {100 * min(shares):.1f}–{100 * max(shares):.1f} %), "
              f"{statistics.median(ratios):.2f}× pgbouncer (met in {sum(x >= 1 for x in ratios)} of {n}; "
              f"range {min(ratios):.2f}–{max(ratios):.2f}×), p50 added {statistics.median(added):+.0f} µs")
    bouncer = [
        next(r["tps"] for r in rows if r["name"] == "pgbouncer") / next(r["tps"] for r in rows if r["name"] == "direct")
        for rows in runs.values()
    ]
    print(f"  pgbouncer: {100 * statistics.median(bouncer):.1f} % of direct "
          f"(range {100 * min(bouncer):.1f}–{100 * max(bouncer):.1f} %)")
print()
PY
}

: > "$tmp/summary"
for layout in $LAYOUTS; do
  if [ "$layout" = pinned ] && [ "$NCPU" -lt 2 ]; then
    echo "==> layout pinned skipped: it needs at least 2 CPUs (this machine has $NCPU)"
    continue
  fi
  measure "$layout"
done
echo
cat "$tmp/summary"
