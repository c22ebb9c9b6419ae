#!/usr/bin/env bash
# Throughput and latency of Switchyard against direct PostgreSQL and PgBouncer (session mode).
#
# Starts a throwaway PostgreSQL 15+ cluster, PgBouncer and Switchyard on free 127.0.0.1 ports,
# loads pgbench at scale 10 once, then runs pgbench for every scenario
#   script   select-only (-S) and tpcb-like (the default script)
#   protocol -M simple and -M prepared
#   clients  1, 8, 32 (-j = min(clients, 2))
# against the three targets interleaved (direct, pgbouncer, switchyard, direct, ...) for ROUNDS
# rounds, and reports medians and ratios to direct. The markdown report goes to stdout and to
# loadtests/results/latest.md.
#
# Usage: loadtests/bench.sh [--quick]
#   --quick            smoke run: DURATION=3, ROUNDS=1, clients 1 and 8
# Environment:
#   DURATION=N         seconds per pgbench run (default 10; 3 with --quick)
#   ROUNDS=N           interleaved rounds per scenario (default 3; 1 with --quick)
#   CLIENTS="1 8 32"   client counts (default "1 8 32"; "1 8" with --quick)
#   SCALE=N            pgbench -i scale factor (default 10)
#   SWITCHYARD_BIN     the switchyard executable (default: $(swift build -c release --show-bin-path)/switchyard)
#   PGBOUNCER_BIN      the pgbouncer executable (default: pgbouncer on PATH, or /usr/sbin/pgbouncer)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args bench "${BASH_SOURCE[0]}" "$@"

if ((quick)); then
    DURATION=${DURATION:-3}
    ROUNDS=${ROUNDS:-1}
    CLIENTS=${CLIENTS:-"1 8"}
else
    DURATION=${DURATION:-10}
    ROUNDS=${ROUNDS:-3}
    CLIENTS=${CLIENTS:-"1 8 32"}
fi
SCALE=${SCALE:-10}
for value in "$DURATION" "$ROUNDS" "$SCALE" $CLIENTS; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || {
        echo "bench: DURATION, ROUNDS, SCALE and CLIENTS must be positive integers (got '$value')" >&2
        exit 2
    }
done
for c in $CLIENTS; do
    ((c <= 150)) || {
        echo "bench: at most 150 clients (PostgreSQL runs with max_connections=200)" >&2
        exit 2
    }
done

lt_init bench
results_dir=$lt_dir/results
mkdir -p "$results_dir"
rm -rf "$results_dir/latest-logs"
switchyard_bin=$(lt_switchyard_bin)

lt_start_postgres 200
lt_start_pgbouncer
lt_start_switchyard "$switchyard_bin"

lt_pgbench_init postgres
# One VACUUM here, straight to PostgreSQL; every run below uses -n.
lt_psql_direct -c 'VACUUM ANALYZE'

declare -A target_port=([direct]=$lt_pg_port [pgbouncer]=$lt_bouncer_port [switchyard]=$lt_sy_port)
targets=(direct pgbouncer switchyard)

# Every target must answer before timing anything.
for target in "${targets[@]}"; do
    out=$(timeout 30 psql -X -At -h 127.0.0.1 -p "${target_port[$target]}" -U postgres -d postgres \
        -c 'select count(*) from pgbench_branches' 2>&1) || die "$target does not answer: $out"
    [[ $out == "$SCALE" ]] || die "$target answered '$out' to select count(*) from pgbench_branches"
done
# Warm the caches (a short select-only run, straight to PostgreSQL, not recorded).
timeout 60 pgbench -n -S -T 2 -c 2 -j 2 -h 127.0.0.1 -p "$lt_pg_port" -U postgres postgres >/dev/null 2>&1 || true

runs_dir=$lt_tmp/runs
mkdir -p "$runs_dir"
tsv=$lt_tmp/results.tsv
notes=$lt_tmp/notes.md
: >"$notes"
printf 'script\tmode\tclients\tround\ttarget\tstatus\ttps\tlatency_ms\tfailed_tx\n' >"$tsv"
failures=0
switchyard_restarts=0

# run_one SCRIPT MODE CLIENTS ROUND TARGET: one pgbench run, one line in the TSV.
run_one() {
    local script=$1 mode=$2 clients=$3 round=$4 target=$5
    local jobs=$((clients < 2 ? clients : 2))
    local port=${target_port[$target]}
    local args=(-h 127.0.0.1 -p "$port" -U postgres -n -M "$mode" -c "$clients" -j "$jobs" -T "$DURATION")
    [[ $script == select-only ]] && args+=(-S)
    local log=$runs_dir/$script-$mode-c$clients-r$round-$target.log
    local rc=0
    echo "pgbench ${args[*]} postgres" >"$log"
    timeout --kill-after=10 $((DURATION + 60)) pgbench "${args[@]}" postgres >>"$log" 2>&1 || rc=$?
    local tps latency failed
    tps=$(awk '/^tps = / { print $3; exit }' "$log")
    latency=$(awk '/^latency average = / { print $4; exit }' "$log")
    failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$log")
    local status=ok
    if ((rc != 0)) || [[ -z $tps || -z $latency ]] || [[ -n $failed && $failed != 0 ]]; then
        status="fail(rc=$rc)"
        failures=$((failures + 1))
        say "FAILED: $target $script -M $mode -c $clients round $round (exit $rc); pgbench output:"
        sed 's/^/    /' "$log" >&2
        {
            echo "- **$target, $script, -M $mode, $clients clients, round $round**: pgbench exited $rc" \
                "(tps='${tps:-}', latency='${latency:-}', failed transactions='${failed:-}')."
            echo '  ```'
            sed 's/^/  /' "$log" | tail -n 30
            echo '  ```'
        } >>"$notes"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$script" "$mode" "$clients" "$round" "$target" \
        "$status" "${tps:--}" "${latency:--}" "${failed:--}" >>"$tsv"
    printf '%-11s %-8s c=%-3s r=%s %-10s %8s tps %8s ms %s\n' "$script" "$mode" "$clients" "$round" \
        "$target" "${tps:--}" "${latency:--}" "$status" >&2

    if [[ $target == switchyard ]] && ! lt_alive "$lt_sy_pid"; then
        local code=""
        wait "$lt_sy_pid" 2>/dev/null || code=$?
        say "switchyard (pid $lt_sy_pid) exited during this run (wait status ${code:-0}); its log:"
        tail -n 50 "$lt_sy_log" >&2 || true
        {
            echo "- **Switchyard exited** during $script -M $mode -c $clients round $round" \
                "(pid $lt_sy_pid, wait status ${code:-0}). Last lines of its stderr:"
            echo '  ```'
            tail -n 30 "$lt_sy_log" | sed 's/^/  /'
            echo '  ```'
        } >>"$notes"
        lt_keep_logs_dir=$results_dir/latest-logs
        switchyard_restarts=$((switchyard_restarts + 1))
        ((switchyard_restarts <= 3)) || die "switchyard exited more than 3 times; giving up"
        mv "$lt_sy_log" "$lt_tmp/switchyard-crash-$switchyard_restarts.log"
        lt_sy_pid=""
        lt_start_switchyard "$switchyard_bin"
        target_port[switchyard]=$lt_sy_port
    fi
}

scripts=(select-only tpcb-like)
modes=(simple prepared)
total=$((${#scripts[@]} * ${#modes[@]} * $(wc -w <<<"$CLIENTS") * ROUNDS * ${#targets[@]}))
say "$total pgbench runs of ${DURATION}s each (about $((total * (DURATION + 1) / 60 + 1)) min)"
started=$SECONDS
for script in "${scripts[@]}"; do
    for mode in "${modes[@]}"; do
        for clients in $CLIENTS; do
            for ((round = 1; round <= ROUNDS; round++)); do
                for target in "${targets[@]}"; do
                    run_one "$script" "$mode" "$clients" "$round" "$target"
                done
            done
        done
    done
done
elapsed=$((SECONDS - started))

if ((failures)); then
    lt_keep_logs_dir=$results_dir/latest-logs
fi
# Anything Switchyard logged at warning level or above is worth a look.
if grep -Eiq 'warning|error|critical|fatal' "$lt_sy_log" 2>/dev/null; then
    {
        echo "- Switchyard's stderr has warnings or errors (first 20 such lines):"
        echo '  ```'
        grep -Ei 'warning|error|critical|fatal' "$lt_sy_log" | head -n 20 | sed 's/^/  /'
        echo '  ```'
    } >>"$notes"
fi

meta=$lt_tmp/meta.md
{
    echo "Command: \`$command_line\`"
    echo
    echo "Settings: DURATION=$DURATION s per run, ROUNDS=$ROUNDS, CLIENTS=\"$CLIENTS\", pgbench scale $SCALE;" \
        "$total runs in ${elapsed} s. Each run:" \
        "\`pgbench -h 127.0.0.1 -p PORT -U postgres -n -M {simple|prepared} -c C -j min(C,2) -T $DURATION [-S] postgres\`," \
        "the three targets interleaved (direct, pgbouncer, switchyard) within each round."
    echo
    echo "PostgreSQL: max_connections=200, shared_buffers=256MB, fsync=off, synchronous_commit=off, 127.0.0.1 only." \
        "PgBouncer: pool_mode=session, max_client_conn=200, default_pool_size=100, auth_type=trust." \
        "Switchyard: \`switchyard serve --listen 127.0.0.1:PORT --upstream postgresql://postgres@127.0.0.1:PGPORT/postgres --admin-listen off\` (default workers = one per core)."
    echo
    lt_machine_md "$switchyard_bin"
} >"$meta"

report=$results_dir/latest.md
python3 "$lt_dir/report.py" "$tsv" "$meta" "$notes" >"$report.tmp"
mv "$report.tmp" "$report"
cat "$report"
say "report written to ${report#"$lt_root"/}"
if ((failures)); then
    say "$failures run(s) failed; logs copied to ${results_dir#"$lt_root"/}/latest-logs"
    exit 1
fi
