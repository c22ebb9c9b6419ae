#!/usr/bin/env bash
# Soak under faults: a bounded run of mixed reads and writes through a Switchyard whose flag is at
# stage shadow (every write to pgbench_accounts mirrored into pgbench_accounts_v2, a sample of the
# reads answered on both paths and compared), while faults are injected on a fixed schedule:
#
#   upstream_restart     pg_ctl restart -m fast of the upstream PostgreSQL
#   terminate_backends   pg_terminate_backend of every backend of the load
#   client_killed_in_tx  a psql client runs BEGIN; UPDATE ... and is killed (SIGKILL) inside the transaction
#   client_killed_in_copy a psql client streams COPY pgbench_accounts FROM STDIN and is killed mid-COPY
#   switchyard_sigkill   Switchyard killed with SIGKILL and started again on the same port
#   control_unreachable  the control database (a second PostgreSQL cluster) is stopped for CONTROL_DOWN s
#
# The load is pgbench in slices of SLICE seconds (a fault that kills its connections ends a slice;
# the next one starts fresh), every error line timestamped. Each error must be explained by a fault
# that ends connections (upstream_restart, terminate_backends, switchyard_sigkill), injected from 1 s
# before the error to GRACE s after the fault ended, and read as a lost connection; anything else is
# unaccounted and fails the run. Switchyard's RSS is sampled every 2 s.
#
# Checks: verify EQUAL before the load and after it; no unaccounted client error; the load ran
# transactions again after every fault; no Switchyard exit but the injected SIGKILLs and no fatal line
# in its logs; a killed client's backend gone within 10 s and its writes rolled back in both tables; no
# backend left idle in transaction; the control fault reported by SHOW FLAGS and recovered; RSS flat
# (per Switchyard process living at least 90 s: median of its last 30 s at most 1.5 x its first 30 s,
# or within 16 MiB of it).
#
# Usage: loadtests/soak.sh [--quick]
#   --quick              about 1.5 min of load (DURATION=90 FIRST_FAULT=5 FAULT_EVERY=10 SLICE=6 SCALE=1)
# Environment:
#   DURATION=N           seconds of load (360; 90 with --quick)
#   FAULT_EVERY=N        seconds between fault starts (30; 10), the first after FIRST_FAULT (20; 5)
#   CONTROL_DOWN=N       seconds the control database stays unreachable (15)
#   SLICE=N              seconds per pgbench slice (10; 6)
#   GRACE=N              seconds after a fault ends within which its errors may still show (5)
#   CLIENTS=N            pgbench clients (8), SCALE=N (5; 1), SHADOW_SAMPLE (0.05)
#   SWITCHYARD_BIN       the switchyard executable (default: the release build)
# Writes loadtests/results/soak-latest.md; on a failed check the logs go to results/soak-latest-logs/.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args soak "${BASH_SOURCE[0]}" "$@"
DURATION=${DURATION:-$([[ $quick == 1 ]] && echo 90 || echo 360)}
FAULT_EVERY=${FAULT_EVERY:-$([[ $quick == 1 ]] && echo 10 || echo 30)}
FIRST_FAULT=${FIRST_FAULT:-$([[ $quick == 1 ]] && echo 5 || echo 20)}
CONTROL_DOWN=${CONTROL_DOWN:-15}
SLICE=${SLICE:-$([[ $quick == 1 ]] && echo 6 || echo 10)}
GRACE=${GRACE:-5}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-$([[ $quick == 1 ]] && echo 1 || echo 5)}
SHADOW_SAMPLE=${SHADOW_SAMPLE:-0.05}
for value in "$DURATION" "$FAULT_EVERY" "$FIRST_FAULT" "$CONTROL_DOWN" "$SLICE" "$GRACE" "$CLIENTS" "$SCALE"; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || die "DURATION, FAULT_EVERY, FIRST_FAULT, CONTROL_DOWN, SLICE, GRACE, CLIENTS and SCALE must be positive integers (got '$value')"
done
((CLIENTS <= 64)) || die "at most 64 clients"
((DURATION <= 7200)) || die "DURATION is at most 7200 s"
[[ $SHADOW_SAMPLE =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "SHADOW_SAMPLE must be between 0 and 1 (got '$SHADOW_SAMPLE')"
FAULT_KINDS=(upstream_restart terminate_backends client_killed_in_tx client_killed_in_copy switchyard_sigkill control_unreachable)
# The faults that end the load's connections, and what a lost connection reads like to pgbench.
DISRUPTIVE=" upstream_restart terminate_backends switchyard_sigkill "
CONNECTION_LOST='terminating connection due to administrator command|server closed the connection unexpectedly|connection to server at .* failed|Connection refused|Connection reset by peer|the database system is (shutting down|starting up|not yet accepting connections|in recovery mode)|could not receive data from server|could not send data to server|no connection to the server|perhaps the backend died|terminating connection because of crash|upstream'

lt_init soak
switchyard_bin=$(lt_switchyard_bin)
results_dir=$lt_dir/results
mkdir -p "$results_dir"
rm -rf "$results_dir/soak-latest-logs"

ctl_pid=""
ctl_wrapper=""
sy_pid=""
load_pid=""
rss_pid=""
fault_client_pid=""
fault_fd=""
soak_cleanup() {
    local status=$?
    set +e
    [[ -n $fault_fd ]] && exec {fault_fd}>&-
    [[ -n $fault_client_pid ]] && lt_stop "$fault_client_pid" KILL "fault client"
    touch "$lt_tmp/stop"
    [[ -n $load_pid ]] && lt_stop "$load_pid" TERM "load loop"
    local p
    p=$(cat "$lt_tmp/pgbench.pid" 2>/dev/null)
    [[ -n $p ]] && lt_alive "$p" && kill -TERM "$p" 2>/dev/null
    [[ -n $rss_pid ]] && lt_stop "$rss_pid" TERM "rss sampler"
    lt_stop "$sy_pid" TERM switchyard
    lt_stop "$ctl_pid" INT "control postgres" "$ctl_wrapper"
    (exit "$status")
    lt_cleanup
}
trap soak_cleanup EXIT

now() { echo "$EPOCHREALTIME"; }
rel() { awk -v t="$1" -v t0="$t0" 'BEGIN { printf "%.1f", t - t0 }'; }

# --- The upstream and the control database, two clusters ---
lt_start_postgres 100
pgdata=$lt_tmp/pgdata

ctl_data=$lt_tmp/ctldata
ctl_log=$lt_tmp/control-postgres.log
lt_owned_dir "$ctl_data"
touch "$ctl_log"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$ctl_log"
lt_as_server_user "$lt_pg_bin/initdb" -D "$ctl_data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$lt_tmp/initdb-control.log" 2>&1 || die "initdb of the control cluster failed"
ctl_port=$(lt_free_port)
psql_ctl() { timeout 30 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$ctl_port" -U postgres -d postgres "$@"; }
# start_control: the control cluster on ctl_port; sets ctl_pid and ctl_wrapper.
start_control() {
    lt_spawn_as_server_user "$lt_pg_bin/postgres" -D "$ctl_data" \
        -c listen_addresses=127.0.0.1 -c port="$ctl_port" -c unix_socket_directories= \
        -c max_connections=50 -c fsync=off -c synchronous_commit=off \
        -c logging_collector=off -c log_min_messages=warning >>"$ctl_log" 2>&1 &
    ctl_wrapper=$!
    ctl_pid=$(lt_server_pid "$ctl_wrapper" postgres) || die "the control postgres did not start"
    lt_wait_port "$ctl_port" 60 "$ctl_pid" || die "the control postgres is not accepting connections"
    local i
    for ((i = 0; i < 100; i++)); do
        psql_ctl -c 'select 1' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "the control postgres does not answer queries"
}
start_control
say "control postgres pid $ctl_pid on 127.0.0.1:$ctl_port"

lt_pgbench_init postgres
naccounts=$((SCALE * 100000))
# The load leaves the last 10 accounts alone: the killed clients write there, so their rollback can be checked.
load_accounts=$((naccounts - 10))
tx_aid=$naccounts
lt_psql_direct -c "$lt_accounts_v2_ddl" >/dev/null

# --- Switchyard at stage shadow, its control schema in the second cluster ---
sy_port=$(lt_free_port)
config=$lt_tmp/soak.yaml
cat >"$config" <<YAML
# Generated by loadtests/soak.sh.
listen: 127.0.0.1:$sy_port
upstream: postgresql://postgres@127.0.0.1:$lt_pg_port/postgres
admin_listen: off
$(lt_accounts_migration)
flags:
  - name: accounts_v2
    migration: accounts_v2
    stage: shadow
    cohort_key: [comment:cohort, application_name]
    shadow_sample: $SHADOW_SAMPLE
control:
  schema: switchyard_soak
  database: postgresql://postgres@127.0.0.1:$ctl_port/postgres
YAML
instance=0
start_switchyard() {
    instance=$((instance + 1))
    lt_spawn_switchyard "$switchyard_bin" "$sy_port" "$lt_tmp/switchyard-$instance.log" --config "$config"
    sy_pid=$lt_spawned_pid
    echo "$sy_pid" >"$lt_tmp/sy.pid"
    echo "$instance $sy_pid $(now)" >>"$lt_tmp/instances.txt"
}
start_switchyard

say "switchyard backfill accounts_v2, then verify"
timeout 1800 "$switchyard_bin" backfill accounts_v2 --config "$config" >"$lt_tmp/backfill.out" 2>"$lt_tmp/backfill.log" || {
    tail -n 20 "$lt_tmp/backfill.log" >&2
    die "switchyard backfill failed"
}
backfill_summary=$(grep -E "^backfill accounts_v2:" "$lt_tmp/backfill.out" | tail -n 1 || true)
verify_before_status=0
timeout 1800 "$switchyard_bin" verify accounts_v2 --config "$config" >"$lt_tmp/verify-before.out" 2>"$lt_tmp/verify-before.log" || verify_before_status=$?
verify_before=$(grep -E "^verify accounts_v2:" "$lt_tmp/verify-before.out" | tail -n 1 || true)
say "$verify_before"
((verify_before_status == 0)) || die "verify before the load did not find the tables equal (exit $verify_before_status)"

# --- The load: mixed reads and writes in slices ---
cat >"$lt_tmp/mixed.sql" <<SQL
\set aid random(1, $load_accounts)
\set bid random(1, $SCALE)
\set tid random(1, $((10 * SCALE)))
\set delta random(-5000, 5000)
\set c random(1, 10000)
BEGIN;
SELECT /*cohort='tenant-:c'*/ abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
cat >"$lt_tmp/read.sql" <<SQL
\set aid random(1, $((load_accounts - 10)))
\set c random(1, 10000)
SELECT /*cohort='tenant-:c'*/ aid, abalance, filler FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + 9;
SQL
stamp() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "$EPOCHREALTIME" "$line"
    done
}
# load_loop END: pgbench slices until END (epoch seconds); one line per slice in slices.tsv:
# n start end exit transactions failed.
load_loop() {
    local end=$1 n=0 start left pid status tx failed
    while [[ ! -e $lt_tmp/stop ]]; do
        left=$(awk -v e="$end" -v t="$(now)" 'BEGIN { printf "%d", e - t }')
        ((left >= 1)) || break
        ((left > SLICE)) && left=$SLICE
        n=$((n + 1))
        start=$(now)
        timeout -k 5 $((left + 60)) pgbench -n -M simple -c "$CLIENTS" -j 2 -T "$left" \
            -f "$lt_tmp/mixed.sql@3" -f "$lt_tmp/read.sql@1" \
            -h 127.0.0.1 -p "$sy_port" -U postgres postgres \
            >"$lt_tmp/slice-$n.out" 2> >(stamp >"$lt_tmp/slice-$n.err") &
        pid=$!
        echo "$pid" >"$lt_tmp/pgbench.pid"
        status=0
        wait "$pid" || status=$?
        tx=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$lt_tmp/slice-$n.out")
        failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$lt_tmp/slice-$n.out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$start" "$(now)" "$status" "${tx:-0}" "${failed:-0}" >>"$lt_tmp/slices.tsv"
        # A slice that could not start (nothing listening yet) waits a moment before the next.
        [[ ${tx:-0} == 0 ]] && sleep 1
    done
}
# rss_loop END: Switchyard's VmRSS every 2 s into rss.tsv: time pid kB.
rss_loop() {
    local end=$1 pid rss
    while [[ ! -e $lt_tmp/stop ]] && awk -v e="$end" -v t="$(now)" 'BEGIN { exit !(t < e) }'; do
        pid=$(cat "$lt_tmp/sy.pid" 2>/dev/null || true)
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $rss ]] && printf '%s\t%s\t%s\n' "$(now)" "$pid" "$rss" >>"$lt_tmp/rss.tsv"
        sleep 2
    done
}

# --- Faults ---
faults_tsv=$lt_tmp/faults.tsv
fault_notes=""
problems=()
problem() {
    problems+=("$*")
    say "PROBLEM: $*"
}
backend_count() { # APPLICATION_NAME: backends of that client on the upstream
    lt_psql_direct -A -t -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1'" 2>/dev/null || echo "?"
}
# wait_backend_gone NAME: up to 10 s for the backends of NAME to go; prints the seconds it took or "never".
wait_backend_gone() {
    local i start c
    start=$(now)
    for ((i = 0; i < 100; i++)); do
        c=$(backend_count "$1")
        if [[ $c == 0 ]]; then
            awk -v s="$start" -v t="$(now)" 'BEGIN { printf "%.1f", t - s }'
            return 0
        fi
        sleep 0.1
    done
    echo never
}
# start_fault_client NAME: psql through Switchyard reading its input from a fifo we hold open (fault_fd).
start_fault_client() {
    local fifo=$lt_tmp/$1.fifo
    rm -f "$fifo"
    mkfifo "$fifo"
    PGAPPNAME=$1 psql -X -q -h 127.0.0.1 -p "$sy_port" -U postgres -d postgres <"$fifo" >>"$lt_tmp/$1.log" 2>&1 &
    fault_client_pid=$!
    exec {fault_fd}>"$fifo"
}
kill_fault_client() {
    kill -KILL "$fault_client_pid" 2>/dev/null || true
    wait "$fault_client_pid" 2>/dev/null || true
    fault_client_pid=""
    exec {fault_fd}>&-
    fault_fd=""
}
# wait_backend_state NAME STATE_REGEX: up to 15 s for a backend of NAME in that state.
wait_backend_state() {
    local i
    for ((i = 0; i < 150; i++)); do
        [[ $(lt_psql_direct -A -t -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND state ~ '$2'" 2>/dev/null) -ge 1 ]] && return 0
        sleep 0.1
    done
    return 1
}
both_balances() { # AID: old and new balance of one row
    lt_psql_direct -A -t -F ' ' -c "SELECT (SELECT abalance FROM pgbench_accounts WHERE aid = $1), (SELECT balance FROM pgbench_accounts_v2 WHERE aid = $1)"
}

fault_upstream_restart() {
    lt_as_server_user "$lt_pg_bin/pg_ctl" restart -D "$pgdata" -m fast -w -t 60 -l "$lt_tmp/postgres.log" \
        >>"$lt_tmp/pg_ctl.log" 2>&1 || problem "pg_ctl restart of the upstream failed (see pg_ctl.log)"
    # The first postmaster was ours (through runuser); pg_ctl started the new one on its own.
    if [[ -n $lt_pg_wrapper ]]; then
        wait "$lt_pg_wrapper" 2>/dev/null || true
        lt_pg_wrapper=""
    fi
    lt_pg_pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null || true)
    lt_psql_direct -c 'select 1' >/dev/null 2>&1 || sleep 1
    fault_notes="new postmaster pid $lt_pg_pid"
}
fault_terminate_backends() {
    local n
    n=$(lt_psql_direct -A -t -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'pgbench' AND pid <> pg_backend_pid()" 2>&1) || n="error: $n"
    fault_notes="$n load backends terminated"
}
fault_client_killed_in_tx() {
    local name=soak-in-tx before after gone
    before=$(both_balances "$tx_aid")
    start_fault_client "$name"
    printf 'BEGIN;\nUPDATE pgbench_accounts SET abalance = abalance + 1000000 WHERE aid = %s;\nSELECT 1;\n' "$tx_aid" >&"$fault_fd"
    if ! wait_backend_state "$name" '^idle in transaction'; then
        problem "client_killed_in_tx: the client's backend never showed 'idle in transaction'"
    fi
    kill_fault_client
    gone=$(wait_backend_gone "$name")
    after=$(both_balances "$tx_aid")
    fault_notes="psql killed inside BEGIN; UPDATE (aid $tx_aid); backend gone after ${gone} s; balances old/new before: $before, after: $after"
    [[ $gone != never ]] || problem "client_killed_in_tx: its backend was still there 10 s after the client was killed"
    [[ $before == "$after" ]] || problem "client_killed_in_tx: aid $tx_aid balances changed from '$before' to '$after' (not rolled back)"
}
fault_client_killed_in_copy() {
    local name=soak-in-copy gone rows i
    start_fault_client "$name"
    {
        echo "COPY pgbench_accounts (aid, bid, abalance, filler) FROM STDIN;"
        for ((i = 1; i <= 2000; i++)); do
            printf '%s\t1\t0\tcopied by a client killed mid-COPY\n' $((naccounts + 1000 + i))
        done
    } >&"$fault_fd"
    if ! wait_backend_state "$name" '^active'; then
        problem "client_killed_in_copy: the client's COPY never showed as active"
    fi
    sleep 0.5
    kill_fault_client
    gone=$(wait_backend_gone "$name")
    rows=$(lt_psql_direct -A -t -c "SELECT (SELECT count(*) FROM pgbench_accounts WHERE aid > $naccounts) + (SELECT count(*) FROM pgbench_accounts_v2 WHERE aid > $naccounts)")
    fault_notes="psql killed while streaming COPY FROM STDIN (2000 rows sent, no end marker); backend gone after ${gone} s; copied rows left in either table: $rows"
    [[ $gone != never ]] || problem "client_killed_in_copy: its backend was still there 10 s after the client was killed"
    [[ $rows == 0 ]] || problem "client_killed_in_copy: $rows rows of the aborted COPY remain"
}
fault_control_unreachable() {
    local flags recovered="" i
    lt_stop "$ctl_pid" INT "control postgres" "$ctl_wrapper"
    sleep 3
    flags=$(lt_admin_query "$sy_port" "SHOW FLAGS" 2>&1 | grep -o 'last known state; control schema unreachable[^	]*' | head -n 1 || true)
    sleep $((CONTROL_DOWN > 3 ? CONTROL_DOWN - 3 : 0))
    start_control
    for ((i = 0; i < 30; i++)); do
        if lt_admin_query "$sy_port" "SHOW FLAGS" 2>/dev/null | grep -q 'shared (control schema)'; then
            recovered=$i
            break
        fi
        sleep 1
    done
    fault_notes="control cluster stopped ${CONTROL_DOWN} s (new pid $ctl_pid); SHOW FLAGS meanwhile: '${flags:-nothing reported}'; shared again after ${recovered:-more than 30} s"
    [[ -n $flags ]] || problem "control_unreachable: SHOW FLAGS did not report the control schema unreachable"
    [[ -n $recovered ]] || problem "control_unreachable: SHOW FLAGS did not say 'shared (control schema)' within 30 s of the control database's return"
}
fault_switchyard_sigkill() {
    local old=$sy_pid status=0
    kill -KILL "$sy_pid"
    { wait "$sy_pid"; } 2>/dev/null || status=$?
    sy_pid=""
    start_switchyard
    fault_notes="pid $old killed (exit status $status), restarted as pid $sy_pid"
}

check_switchyard_alive() {
    if ! lt_alive "$sy_pid"; then
        local status=0
        wait "$sy_pid" 2>/dev/null || status=$?
        problem "Switchyard (pid $sy_pid, instance $instance) exited on its own (status $status); restarted"
        echo "$instance $sy_pid $(now) exited-on-its-own" >>"$lt_tmp/crashes.txt"
        start_switchyard
    fi
}

# --- The run ---
touch "$lt_tmp/crashes.txt" "$lt_tmp/slices.tsv" "$lt_tmp/rss.tsv"
t0=$(now)
end=$(awk -v t="$t0" -v d="$DURATION" 'BEGIN { printf "%.3f", t + d }')
load_loop "$end" &
load_pid=$!
rss_loop "$(awk -v e="$end" 'BEGIN { printf "%.3f", e + 5 }')" &
rss_pid=$!
say "load for $DURATION s: pgbench -c $CLIENTS in $SLICE s slices; a fault every $FAULT_EVERY s from $FIRST_FAULT s"

next=$(awk -v t="$t0" -v f="$FIRST_FAULT" 'BEGIN { printf "%.3f", t + f }')
k=0
while :; do
    # Leave at least one slice after the last fault to show the load recovered.
    awk -v n="$next" -v e="$end" -v s="$SLICE" -v c="$CONTROL_DOWN" 'BEGIN { exit !(n + c + s + 5 < e) }' || break
    wait_s=$(awk -v n="$next" -v t="$(now)" 'BEGIN { d = n - t; printf "%.2f", (d > 0 ? d : 0) }')
    sleep "$wait_s"
    check_switchyard_alive
    kind=${FAULT_KINDS[k % ${#FAULT_KINDS[@]}]}
    k=$((k + 1))
    fault_notes=""
    fstart=$(now)
    say "fault $k at $(rel "$fstart") s: $kind"
    "fault_$kind" || problem "fault $k ($kind): a step of the injection failed"
    fend=$(now)
    printf '%s\t%s\t%s\t%s\t%s\n' "$k" "$kind" "$fstart" "$fend" "$fault_notes" >>"$faults_tsv"
    say "  $fault_notes"
    next=$(awk -v n="$next" -v f="$FAULT_EVERY" -v e="$fend" 'BEGIN { n += f; if (n < e + 3) n = e + 3; printf "%.3f", n }')
done
say "last fault done; load runs to the end"
while lt_alive "$load_pid"; do
    check_switchyard_alive
    sleep 1
    awk -v e="$end" -v t="$(now)" 'BEGIN { exit !(t < e + 120) }' || break
done
touch "$lt_tmp/stop"
lt_stop "$load_pid" TERM "load loop"
load_pid=""
lt_stop "$rss_pid" TERM "rss sampler"
rss_pid=""
check_switchyard_alive

# --- After the load ---
sleep 2
idle_in_tx=$(lt_psql_direct -A -t -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%'")
[[ $idle_in_tx == 0 ]] || problem "$idle_in_tx backends idle in transaction after the load"
divergences=$(lt_admin_query "$sy_port" "SHOW DIVERGENCES" 2>&1 || true)
flags_end=$(lt_admin_query "$sy_port" "SHOW FLAGS" 2>&1 || true)
say "switchyard verify accounts_v2"
verify_status=0
timeout 1800 "$switchyard_bin" verify accounts_v2 --config "$config" >"$lt_tmp/verify.out" 2>"$lt_tmp/verify.log" || verify_status=$?
verify_after=$(grep -E "^verify accounts_v2:" "$lt_tmp/verify.out" | tail -n 1 || true)
say "${verify_after:-verify printed no summary}"
((verify_status == 0)) || problem "verify after the load exited $verify_status: ${verify_after:-$(tail -n 5 "$lt_tmp/verify.log")}"
# Shadow reads and divergences as every instance stored them in the control schema.
shadow_evidence=$(psql_ctl -A -t -F ' ' -c "SELECT instance, data::text FROM switchyard_soak.evidence WHERE kind = 'shadow' ORDER BY updated_at" 2>&1 || true)
read_divergences=$(psql_ctl -A -t -c "SELECT count(*) FROM switchyard_soak.evidence WHERE kind = 'read_divergence'" 2>&1 || echo "?")
write_divergences=$(psql_ctl -A -t -c "SELECT coalesce(sum(count), 0) FROM switchyard_soak.write_divergences" 2>&1 || echo "?")
[[ $read_divergences == 0 ]] || problem "read divergences recorded in the control schema: $read_divergences"
[[ $write_divergences == 0 ]] || problem "write divergences recorded in the control schema: $write_divergences"
rows_old=$(lt_psql_direct -A -t -c "SELECT count(*) FROM pgbench_accounts")
rows_new=$(lt_psql_direct -A -t -c "SELECT count(*) FROM pgbench_accounts_v2")

# Switchyard stops gracefully at the end: SIGTERM, exit 0.
final_pid=$sy_pid
kill -TERM "$sy_pid" 2>/dev/null || true
final_status=0
for ((i = 0; i < 300; i++)); do
    lt_alive "$sy_pid" || break
    sleep 0.1
done
if lt_alive "$sy_pid"; then
    problem "Switchyard (pid $sy_pid) did not stop within 30 s of SIGTERM"
    kill -KILL "$sy_pid" 2>/dev/null || true
fi
wait "$sy_pid" || final_status=$?
sy_pid=""
((final_status == 0)) || problem "Switchyard (pid $final_pid) exited $final_status after SIGTERM"
# Switchyard's own fatal lines: a critical log line or the Swift runtime's crash report. (The info line
# "server reported a fatal error" is PostgreSQL's FATAL passed on to a client, the faults' doing.)
fatal_lines=$(grep -hE 'level=critical|Fatal error:|Program crashed|Segmentation fault|Illegal instruction|Current stack trace' \
    "$lt_tmp"/switchyard-*.log 2>/dev/null | head -n 20 || true)
warning_lines=$(grep -hE 'level=(warning|error)' "$lt_tmp"/switchyard-*.log 2>/dev/null |
    sed -E 's/^ts=[^ ]+ //; s/ (error|reason)=.*//' | sort | uniq -c | sort -rn || true)
fatal_count=0
if [[ -n $fatal_lines ]]; then
    fatal_count=$(wc -l <<<"$fatal_lines")
    problem "fatal lines in Switchyard's logs"
fi

# --- Attribution: every error line to a fault ---
# errors.tsv: slice time text; attributed.tsv: slice time fault-id kind text (fault-id "-" when unaccounted).
for f in "$lt_tmp"/slice-*.err; do
    [[ -e $f ]] || continue
    n=${f##*/slice-}
    n=${n%.err}
    awk -v n="$n" '
        { t = $1; sub(/^[^ ]+ /, "") }
        /^pgbench: error: Run was aborted/ { next }
        /^pgbench: error: could not create connection for setup/ { next }
        /^pgbench: error:/ { if (text != "") print n "\t" tt "\t" text; tt = t; text = $0; next }
        /^pgbench: (warning|hint|detail):/ { next }
        text != "" { text = text " " $0 }
        END { if (text != "") print n "\t" tt "\t" text }' "$f"
done | sort -t$'\t' -k2,2g >"$lt_tmp/errors.tsv"
# Failed transactions and slices that exited badly without an error line are errors too.
awk -F'\t' '$6 != "" && $6 != 0 { print $1 "\t" $3 "\t" $6 " failed transactions (serialization or deadlock)" }' "$lt_tmp/slices.tsv" >>"$lt_tmp/errors.tsv"
while IFS=$'\t' read -r n s e status tx failed; do
    if [[ $status != 0 ]] && ! grep -q "^$n"$'\t' "$lt_tmp/errors.tsv"; then
        printf '%s\t%s\tpgbench exited %s without an error line\n' "$n" "$e" "$status" >>"$lt_tmp/errors.tsv"
    fi
done <"$lt_tmp/slices.tsv"
touch "$faults_tsv"
while IFS=$'\t' read -r n t text; do
    who="-"
    whokind="-"
    while IFS=$'\t' read -r id kind fs fe notes; do
        [[ $DISRUPTIVE == *" $kind "* ]] || continue
        if awk -v t="$t" -v s="$fs" -v e="$fe" -v g="$GRACE" 'BEGIN { exit !(t >= s - 1 && t <= e + g) }' &&
            grep -qE "$CONNECTION_LOST" <<<"$text"; then
            who=$id
            whokind=$kind
            break
        fi
    done <"$faults_tsv"
    printf '%s\t%s\t%s\t%s\t%s\n' "$n" "$t" "$who" "$whokind" "$text"
done <"$lt_tmp/errors.tsv" >"$lt_tmp/attributed.tsv"
errors_total=$(wc -l <"$lt_tmp/attributed.tsv")
unaccounted=$(awk -F'\t' '$3 == "-"' "$lt_tmp/attributed.tsv" | wc -l)
((unaccounted == 0)) || problem "$unaccounted client errors not explained by an injected fault"

# The load recovered after every fault: some slice starting after the fault ended ran transactions.
while IFS=$'\t' read -r id kind fs fe notes; do
    if ! awk -F'\t' -v e="$fe" '$2 >= e && $5 > 0 { found = 1 } END { exit !found }' "$lt_tmp/slices.tsv"; then
        problem "no transactions after fault $id ($kind)"
    fi
done <"$faults_tsv"
faults_injected=$(wc -l <"$faults_tsv")
((faults_injected >= ${#FAULT_KINDS[@]})) || problem "only $faults_injected faults injected: the run was too short for one of each kind"
sigkills=$(awk -F'\t' '$2 == "switchyard_sigkill"' "$faults_tsv" | wc -l)
crashes=$(wc -l <"$lt_tmp/crashes.txt")

# --- RSS: per minute of the run, and per Switchyard process ---
rss_minutes=$(awk -F'\t' -v t0="$t0" '
    { m = int(($1 - t0) / 60); v[m] = v[m] " " $3; if (m > last) last = m }
    END {
        for (m = 0; m <= last; m++) {
            n = split(v[m], a, " "); if (n == 0) continue
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
            med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            printf "| %d | %d | %.1f | %.1f | %.1f |\n", m + 1, n, a[1] / 1024, med / 1024, a[n] / 1024
        }
    }' "$lt_tmp/rss.tsv")
rss_processes=$(awk -F'\t' '
    function median(s,   n, a, i, j, x) {
        n = split(s, a, " "); if (n == 0) return 0
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { x = a[i]; a[i] = a[j]; a[j] = x }
        return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { if (!($2 in first)) { first[$2] = $1; order[++np] = $2 } lastt[$2] = $1; t[$2, ++cnt[$2]] = $1; r[$2, cnt[$2]] = $3 }
    END {
        for (p = 1; p <= np; p++) {
            pid = order[p]; life = lastt[pid] - first[pid]; head = ""; tail = ""; mx = 0
            for (i = 1; i <= cnt[pid]; i++) {
                if (t[pid, i] - first[pid] < 30) head = head " " r[pid, i]
                if (lastt[pid] - t[pid, i] < 30) tail = tail " " r[pid, i]
                if (r[pid, i] + 0 > mx) mx = r[pid, i]
            }
            h = median(head) / 1024; l = median(tail) / 1024
            verdict = (life < 90) ? "too short to judge" : ((l <= 1.5 * h || l - h <= 16) ? "flat" : "GROWING")
            printf "| %s | %.0f | %d | %.1f | %.1f | %.1f | %s |\n", pid, life, cnt[pid], h, l, mx / 1024, verdict
        }
    }' "$lt_tmp/rss.tsv")
grep -q GROWING <<<"$rss_processes" && problem "Switchyard's RSS grew (see the RSS table)"
rss_first=$(awk -F'|' 'NR == 1 { gsub(/ /, "", $5); print $5 }' <<<"$rss_minutes")
rss_last=$(awk -F'|' 'END { gsub(/ /, "", $5); print $5 }' <<<"$rss_minutes")

# --- Report ---
total_tx=$(awk -F'\t' '{ s += $5 } END { print s + 0 }' "$lt_tmp/slices.tsv")
nslices=$(wc -l <"$lt_tmp/slices.tsv")
report=$results_dir/soak-latest.md
{
    echo "# Soak under faults: dual-write and shadow reads through restarts, kills and a lost control database"
    echo
    echo "Command: \`$command_line\`; $DURATION s of pgbench \`-M simple -c $CLIENTS -j 2\` through Switchyard in slices of $SLICE s,"
    echo "scale $SCALE; flag \`accounts_v2\` at stage shadow (pgbench_accounts mirrored into pgbench_accounts_v2, abalance renamed"
    echo "to balance and cast to bigint; shadow_sample $SHADOW_SAMPLE); control schema in a second PostgreSQL cluster."
    echo "A fault every $FAULT_EVERY s from $FIRST_FAULT s, in the order ${FAULT_KINDS[*]}; control database down $CONTROL_DOWN s;"
    echo "an error is explained by a connection-ending fault injected from 1 s before it to $GRACE s after the fault ended."
    echo
    lt_machine_md "$switchyard_bin"
    echo
    echo "## Outcome"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| faults injected | $faults_injected ($(cut -f2 "$faults_tsv" | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')) |"
    echo "| load | $total_tx transactions in $nslices slices |"
    echo "| client errors seen | $errors_total |"
    echo "| **unaccounted client errors** | **$unaccounted** |"
    echo "| Switchyard exits other than the injected SIGKILLs | $crashes |"
    echo "| fatal lines in Switchyard's logs | $fatal_count |"
    echo "| backends idle in transaction after the load | $idle_in_tx |"
    echo "| verify before the load | ${verify_before#verify accounts_v2: } (exit $verify_before_status) |"
    echo "| **verify after the load** | **${verify_after#verify accounts_v2: } (exit $verify_status)** |"
    echo "| divergences recorded (control schema) | read $read_divergences, write $write_divergences |"
    echo "| rows at the end | pgbench_accounts $rows_old, pgbench_accounts_v2 $rows_new |"
    echo "| RSS median, first minute → last minute | ${rss_first:-?} MiB → ${rss_last:-?} MiB |"
    echo "| final SIGTERM | exit $final_status |"
    echo
    echo "Backfill before the load: ${backfill_summary#backfill accounts_v2: }"
    echo
    echo "## Faults"
    echo
    echo "| # | fault | start s | end s | what happened |"
    echo "| ---: | --- | ---: | ---: | --- |"
    while IFS=$'\t' read -r id kind fs fe notes; do
        echo "| $id | $kind | $(rel "$fs") | $(rel "$fe") | $notes |"
    done <"$faults_tsv"
    echo
    echo "## Client errors and the fault each is attributed to"
    echo
    if ((errors_total == 0)); then
        echo "None."
    else
        echo "| at s | slice | fault | error (pgbench's line) |"
        echo "| ---: | ---: | --- | --- |"
        while IFS=$'\t' read -r n t id kind text; do
            if [[ $id == - ]]; then
                f="**unaccounted**"
            else
                f="$id $kind"
            fi
            echo "| $(rel "$t") | $n | $f | \`$(cut -c1-220 <<<"${text//|/\\|}")\` |"
        done <"$lt_tmp/attributed.tsv"
        echo
        echo "By fault kind:"
        echo
        awk -F'\t' '{ k = ($3 == "-") ? "unaccounted" : $4; c[k]++ } END { for (k in c) printf "- %s: %d\n", k, c[k] }' "$lt_tmp/attributed.tsv" | sort
    fi
    echo
    echo "## Slices"
    echo
    echo "| slice | start s | end s | pgbench exit | transactions | failed |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
    while IFS=$'\t' read -r n s e status tx failed; do
        echo "| $n | $(rel "$s") | $(rel "$e") | $status | $tx | $failed |"
    done <"$lt_tmp/slices.tsv"
    echo
    echo "## Switchyard's RSS (sampled every 2 s)"
    echo
    echo "Per minute of the run (all processes; a SIGKILL restart starts a new one):"
    echo
    echo "| minute | samples | min MiB | median MiB | max MiB |"
    echo "| ---: | ---: | ---: | ---: | ---: |"
    echo "$rss_minutes"
    echo
    echo "Per process (first and last 30 s of its life):"
    echo
    echo "| pid | lived s | samples | median first 30 s MiB | median last 30 s MiB | max MiB | memory |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    echo "$rss_processes"
    echo
    echo "## Switchyard at the end"
    echo
    echo "Shadow-read tallies each instance stored in the control schema (instance, figures):"
    echo
    echo '```'
    echo "${shadow_evidence:-none}"
    echo '```'
    echo
    echo "The last instance's console, \`SHOW FLAGS\` and \`SHOW DIVERGENCES\`:"
    echo
    echo '```'
    echo "$flags_end"
    echo "$divergences"
    echo '```'
    echo
    echo "Warnings and errors in Switchyard's logs (count, level and message):"
    echo
    echo '```'
    echo "${warning_lines:-none}"
    echo '```'
    if [[ -n $fatal_lines ]]; then
        echo
        echo "Fatal lines in Switchyard's logs:"
        echo
        echo '```'
        echo "$fatal_lines"
        echo '```'
    fi
    echo
    echo "## Checks"
    echo
    if ((${#problems[@]} == 0)); then
        echo "All passed: verify equal before and after, every client error explained by an injected fault, the load"
        echo "recovered after each fault, no Switchyard exit but the $sigkills injected SIGKILLs, killed clients' backends"
        echo "gone and their writes rolled back, nothing idle in transaction, the control fault reported and recovered, RSS flat."
    else
        for p in "${problems[@]}"; do
            echo "- FAILED: $p"
        done
    fi
} >"$report"
cat "$report"
if ((${#problems[@]} > 0)); then
    mkdir -p "$results_dir/soak-latest-logs"
    cp -f "$lt_tmp"/*.{log,out,err,tsv,txt,yaml} "$results_dir/soak-latest-logs"/ 2>/dev/null || true
    die "${#problems[@]} check(s) failed; logs copied to ${results_dir#"$lt_root"/}/soak-latest-logs"
fi
