#!/usr/bin/env bash
# Demo: a throwaway PostgreSQL, Switchyard in front of it, and a pgbench workload run through the proxy.
#
# Everything lives in a temp dir on free loopback ports and is removed on exit (Ctrl-C).
# Environment:
#   DEMO_SECONDS=N    exit by itself N seconds after the workload instead of waiting for Ctrl-C
#   SWITCHYARD_BIN    the switchyard executable (default: $(swift build --show-bin-path)/switchyard)
#   DEMO_DIRECT=1     diagnostic: skip Switchyard and run the workload straight against PostgreSQL
#   DEMO_REPORT_DIR   where the cutover report is written (default: demo-report/ in the repository)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [[ -d /opt/swift/usr/bin ]]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
# The developer's own PG* settings (PGPASSWORD, PGSSLMODE...) must not leak into the demo.
unset "${!PG@}"

say() { echo "demo: $*"; }
die() {
    echo "demo: error: $*" >&2
    exit 1
}

# Newest PostgreSQL server on the machine, as the test harness picks it.
pg_bin=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [[ -x $dir/postgres && -x $dir/initdb ]]; then
        pg_bin=$dir
        break
    fi
done
if [[ -z $pg_bin ]] && command -v postgres >/dev/null 2>&1; then
    pg_bin=$(dirname "$(command -v postgres)")
fi
[[ -n $pg_bin ]] || die "PostgreSQL server binaries not found: run scripts/install-deps.sh (or make deps)"
for tool in pgbench psql python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run scripts/install-deps.sh (or make deps)"
done

direct=${DEMO_DIRECT:-0}
if [[ $direct != 1 ]]; then
    switchyard=${SWITCHYARD_BIN:-$(swift build --show-bin-path)/switchyard}
    [[ -x $switchyard ]] || die "$switchyard not found: run 'make build' (or swift build) first"
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for_port PORT SECONDS PID: until PORT accepts connections; fails early if PID dies.
wait_for_port() {
    local port=$1 seconds=$2 pid=$3
    for _ in $(seq $((seconds * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_pid PID SIGNAL NAME: signal one process by its pid, 10 s to exit, then SIGKILL.
stop_pid() {
    local pid=$1 signal=$2 name=$3
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "-$signal" "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        # A zombie (exited, not yet reaped by a parent other than us) counts as stopped.
        [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.1
    done
    say "$name ($pid) did not stop in 10 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

tmp=$(mktemp -d /tmp/switchyard-demo-XXXXXX)
runuser_pid=""
postmaster_pid=""
switchyard_pid=""
sleeper_pid=""
cleaning=0
cleanup() {
    ((cleaning)) && return
    cleaning=1
    # Best effort from here on: one failed step must not leave the rest undone.
    set +e
    trap - INT TERM EXIT
    say "stopping"
    [[ -n $sleeper_pid ]] && kill "$sleeper_pid" 2>/dev/null
    stop_pid "$switchyard_pid" TERM switchyard
    # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
    stop_pid "$postmaster_pid" INT postgres
    if [[ -n $runuser_pid ]]; then
        stop_pid "$runuser_pid" TERM runuser
    fi
    # Reap our own children only (a bare `wait` would also wait for unrelated background jobs).
    for pid in $sleeper_pid $switchyard_pid $runuser_pid; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf -- "$tmp"
    say "cleaned up $tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Recorded like the test harness's processes, so scripts/kill-test-leftovers.sh can end them if
# this script itself is killed with SIGKILL.
own_start=$(awk '{ s = $0; sub(/.*\) /, "", s); split(s, f, " "); print f[20] }' /proc/$$/stat)
record_pid() {
    echo "$1 $$ $own_start $2" >>/tmp/switchyard-test-pids 2>/dev/null || true
}

# PostgreSQL refuses to run as root: run it as the postgres OS user then.
as_pg=()
if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' OS user to run PostgreSQL as (install the postgresql package)"
    chown postgres: "$tmp"
    as_pg=(runuser -u postgres --)
fi

pg_port=$(free_port)
say "creating a PostgreSQL cluster in $tmp/data ($pg_bin)"
# cd: the postgres user may not be allowed into the caller's directory.
(cd "$tmp" && timeout 120 "${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres -A trust --encoding UTF8 --locale C --no-sync >"$tmp/initdb.log" 2>&1) ||
    { cat "$tmp/initdb.log" >&2; die "initdb failed"; }

(cd "$tmp" && exec "${as_pg[@]}" "$pg_bin/postgres" -D "$tmp/data" -p "$pg_port" -k "$tmp" \
    -c listen_addresses=127.0.0.1 -c max_connections=1200 -c shared_buffers=128MB \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off) >"$tmp/postgres.log" 2>&1 &
server_pid=$!
if ((${#as_pg[@]})); then
    runuser_pid=$server_pid
    record_pid "$runuser_pid" runuser
else
    postmaster_pid=$server_pid
fi

# Ready when postmaster.pid says so (line 8) and a connection succeeds: 30 s at most.
for _ in $(seq 300); do
    if [[ $(sed -n 8p "$tmp/data/postmaster.pid" 2>/dev/null | tr -d ' ') == ready ]] &&
        pg_isready -q -h 127.0.0.1 -p "$pg_port" -t 2; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
postmaster_pid=$(head -n 1 "$tmp/data/postmaster.pid" 2>/dev/null || true)
if ! pg_isready -q -h 127.0.0.1 -p "$pg_port" -t 2; then
    tail -n 20 "$tmp/postgres.log" >&2
    die "PostgreSQL did not start on port $pg_port"
fi
record_pid "$postmaster_pid" postgres
say "PostgreSQL $("$pg_bin/postgres" --version | awk '{ print $3 }') is up on 127.0.0.1:$pg_port (pid $postmaster_pid)"
psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE switchyard LOGIN SUPERUSER" >/dev/null

if [[ $direct == 1 ]]; then
    say "DEMO_DIRECT=1: no Switchyard, the workload goes straight to PostgreSQL"
    port=$pg_port
else
    port=$(free_port)
    admin_port=$(free_port)
    while [[ $admin_port == "$port" ]]; do admin_port=$(free_port); done
    # A migration of pgbench_accounts to pgbench_accounts_v2 (abalance renamed to balance),
    # with its flag off: the demo moves it through every stage once the new table exists.
    # Guardrails watch canary and live; the report judges with the same thresholds.
    cat >"$tmp/switchyard.yaml" <<YAML
listen: 127.0.0.1:$port
upstream: postgresql://switchyard@127.0.0.1:$pg_port/postgres
admin_listen: 127.0.0.1:$admin_port
migrations:
  - name: accounts_v2
    old: public.pgbench_accounts
    new: public.pgbench_accounts_v2
    key: [aid]
    columns: { aid: aid, bid: bid, abalance: balance, filler: filler }
flags:
  - name: accounts_v2
    migration: accounts_v2
    stage: off
    cohort_key: [comment:cohort, setting:switchyard.cohort, application_name]
    shadow_sample: 0.20
    guardrails:
      max_divergence_rate: 0.001
      max_error_rate_increase: 0.01
      min_samples: 200
      step_back_to: shadow
YAML
    say "starting Switchyard on 127.0.0.1:$port (admin/metrics on 127.0.0.1:$admin_port), config $tmp/switchyard.yaml"
    "$switchyard" serve --config "$tmp/switchyard.yaml" >"$tmp/switchyard.log" 2>&1 &
    switchyard_pid=$!
    record_pid "$switchyard_pid" switchyard
    if ! wait_for_port "$port" 30 "$switchyard_pid"; then
        tail -n 30 "$tmp/switchyard.log" >&2
        die "Switchyard did not accept connections on port $port"
    fi
fi

say "pgbench -i -s 1 through port $port"
timeout --foreground 300 pgbench -i -s 1 -q -h 127.0.0.1 -p "$port" -U postgres postgres
say "pgbench -c 4 -T 5 -P 1 through port $port"
timeout --foreground 120 pgbench -c 4 -T 5 -P 1 -h 127.0.0.1 -p "$port" -U postgres postgres

if [[ $direct != 1 ]]; then
    # The story of one migration: the new table starts empty, dual-write keeps it in step from the
    # flip on, the backfill copies the rest, verify proves them equal, shadow reads compare answers,
    # a canary cohort reads the new table, then everyone does, and the report decides.
    say "migration: creating pgbench_accounts_v2 (abalance renamed to balance), empty"
    psql -X -q -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE TABLE pgbench_accounts_v2 (aid int PRIMARY KEY, bid int, balance int, filler char(84))"
    say "switchyard check"
    "$switchyard" check --config "$tmp/switchyard.yaml" || die "switchyard check failed"

    # Each transaction reads an account as some tenant (a sqlcommenter comment, as ORMs emit them)
    # and moves its balance: reads are routed per cohort, writes are mirrored.
    printf '%s\n' '\set aid random(1, 100000 * :scale)' '\set c random(1, 1000)' '\set delta random(-5000, 5000)' \
        "SELECT /*cohort='tenant-:c'*/ abalance FROM pgbench_accounts WHERE aid = :aid;" \
        "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;" >"$tmp/workload.sql"
    # workload SECONDS: the mixed workload through the proxy; any failed or aborted client stops the demo.
    workload() {
        local out
        out=$(timeout --foreground $(($1 + 60)) pgbench -n -c 4 -T "$1" -f "$tmp/workload.sql" -h 127.0.0.1 -p "$port" -U postgres postgres 2>&1) ||
            { echo "$out" >&2; die "the workload failed"; }
        grep -qE 'aborted|^number of failed transactions: [1-9]' <<<"$out" && { echo "$out" >&2; die "the workload had client errors"; }
        say "  $(grep -E '^tps' <<<"$out" | sed 's/ (without initial connection time)//')"
    }
    flag() {
        say "switchyard flag set accounts_v2 $*"
        "$switchyard" flag set accounts_v2 "$@" --why "demo" --config "$tmp/switchyard.yaml" >/dev/null
    }

    flag dual_write
    say "every write to pgbench_accounts is now mirrored into pgbench_accounts_v2, in the same transaction"
    workload 4
    say "switchyard backfill accounts_v2: copying the rows that existed before dual-write"
    timeout --foreground 300 "$switchyard" backfill accounts_v2 --config "$tmp/switchyard.yaml" 2>&1 | tail -n 2
    say "switchyard verify accounts_v2"
    timeout --foreground 300 "$switchyard" verify accounts_v2 --config "$tmp/switchyard.yaml" | tail -n 3 ||
        die "verify found differences after the backfill"

    flag shadow
    say "every fifth read of pgbench_accounts is also answered from pgbench_accounts_v2 and compared"
    workload 6
    flag canary 5
    workload 5
    flag canary 50
    say "half of the tenants now read pgbench_accounts_v2; the others read pgbench_accounts"
    workload 5
    flag live
    workload 5
    say "switchyard verify accounts_v2, after the rollout"
    timeout --foreground 300 "$switchyard" verify accounts_v2 --config "$tmp/switchyard.yaml" | tail -n 3 ||
        die "verify found differences after the rollout"
    # The instances store their evidence every two seconds.
    sleep 3
    psql -X -h 127.0.0.1 -p "$port" -U postgres switchyard -c "SHOW FLAGS" -c "SHOW LATENCY"

    # The report lands outside the throwaway directory, so it outlives the demo.
    report_dir=${DEMO_REPORT_DIR:-$root/demo-report}
    mkdir -p "$report_dir"
    say "switchyard report accounts_v2"
    set +e
    "$switchyard" report accounts_v2 --config "$tmp/switchyard.yaml" >"$report_dir/cutover-report.md"
    verdict_status=$?
    "$switchyard" report accounts_v2 --config "$tmp/switchyard.yaml" --format html >"$report_dir/cutover-report.html"
    "$switchyard" report accounts_v2 --config "$tmp/switchyard.yaml" --format json >"$report_dir/cutover-report.json"
    set -e
    sed -n '1,/^## Traffic/p' "$report_dir/cutover-report.md" | sed '$d'
    ((verdict_status <= 1)) || die "switchyard report failed (exit $verdict_status)"
    say "cutover report ($([[ $verdict_status == 0 ]] && echo GO || echo NO-GO)): $report_dir/cutover-report.html (also .md and .json)"
fi

cat <<EOF

  Switchyard demo is running (logs in $tmp).
  Connect through the proxy:   psql -h 127.0.0.1 -p $port -U postgres postgres
  Admin console:               psql -h 127.0.0.1 -p $port -U postgres switchyard   then  SHOW STATS; SHOW FLAGS; SHOW COHORTS;
  Step the flag back:          $switchyard flag set accounts_v2 shadow --config $tmp/switchyard.yaml
  Metrics:                     curl http://127.0.0.1:${admin_port:-ADMIN_PORT}/metrics
  PostgreSQL itself:           psql -h 127.0.0.1 -p $pg_port -U postgres postgres

EOF

# `sleep & wait` rather than a bare sleep, so that Ctrl-C is handled at once.
if [[ -n ${DEMO_SECONDS:-} ]]; then
    say "exiting in $DEMO_SECONDS s (DEMO_SECONDS)"
    sleep "$DEMO_SECONDS" &
    sleeper_pid=$!
    wait "$sleeper_pid" || true
else
    say "press Ctrl-C to stop"
    while true; do
        sleep 3600 &
        sleeper_pid=$!
        wait "$sleeper_pid" || true
    done
fi
