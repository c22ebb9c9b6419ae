#!/usr/bin/env bash
# What a mirrored write costs PostgreSQL itself, without any proxy: pgbench TPC-B-like on three
# databases of the same scale, interleaved: plain (no dual-write), trigger (an AFTER row trigger in
# PL/pgSQL upserts each changed row into pgbench_accounts_v2) and mirrored (the UPDATE of
# pgbench_accounts replaced by the exact statement Switchyard sends for it at stage dual_write, in
# its tag form and, as a fourth target on the same database, in its marker form).
# The mirrored form's planning and execution times come from EXPLAIN (ANALYZE, SUMMARY) of one
# UPDATE of a row, both forms, repeated.
#
# Usage: loadtests/mirror-cost.sh [--quick]
# Environment: DURATION (10; 3 with --quick), ROUNDS (5; 1), CLIENTS (8), SCALE (10),
#   MODES ("simple prepared").
# Writes loadtests/results/mirror-cost-latest.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args mirror-cost "${BASH_SOURCE[0]}" "$@"
DURATION=${DURATION:-$([[ $quick == 1 ]] && echo 3 || echo 10)}
ROUNDS=${ROUNDS:-$([[ $quick == 1 ]] && echo 1 || echo 5)}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}
MODES=${MODES:-"simple prepared"}
for value in "$DURATION" "$ROUNDS" "$CLIENTS" "$SCALE"; do
    [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || die "DURATION, ROUNDS, CLIENTS and SCALE must be positive integers (got '$value')"
done

lt_init mirror-cost
lt_start_postgres 100
for db in plain trig mirrored; do
    lt_psql_direct -c "CREATE DATABASE $db" >/dev/null
    lt_pgbench_init "$db"
done
for db in trig mirrored; do
    lt_accounts_v2_copy "$db"
done
lt_accounts_mirror_trigger trig

# What Switchyard sends for "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid"
# with the mapping of loadtests/dualwrite.sh (the marker's ':' would be a pgbench variable, so '-'):
# the tag form, and the marker form it sends for the same UPDATE beside other statements in one text.
mirrored_update() {
    echo "WITH switchyard_rows AS (UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2 RETURNING pgbench_accounts.*)" \
        "INSERT INTO public.pgbench_accounts_v2 (aid, bid, balance, filler) SELECT aid, bid, abalance::bigint, filler" \
        "FROM switchyard_rows AS pgbench_accounts ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, balance = EXCLUDED.balance," \
        "filler = EXCLUDED.filler /*switchyard_tag-m-UPDATE*/"
}
marker_update() {
    echo "WITH switchyard_rows AS (UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2 RETURNING pgbench_accounts.*)," \
        "switchyard_mirror AS (INSERT INTO public.pgbench_accounts_v2 (aid, bid, balance, filler) SELECT aid, bid, abalance::bigint, filler" \
        "FROM switchyard_rows AS pgbench_accounts ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, balance = EXCLUDED.balance," \
        "filler = EXCLUDED.filler) SELECT 'm-UPDATE ' || count(*) AS switchyard_mirrored_q FROM switchyard_rows"
}
# pgbench's TPC-B-like script with the UPDATE of pgbench_accounts replaced by $1.
tpcb_with() {
    cat <<SQL
\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
BEGIN;
$1;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
}
tpcb_with "$(mirrored_update :delta :aid)" >"$lt_tmp/mirrored.sql"
tpcb_with "$(marker_update :delta :aid)" >"$lt_tmp/marker.sql"

declare -A tps
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in $MODES; do
        for target in plain trig mirrored marker; do
            db=$target script=()
            # A custom script's :scale is 1 unless -s says otherwise: every transaction would then
            # update branch 1, and the mirrored targets would measure that lock, not the statement.
            [[ $target == mirrored ]] && script=(-s "$SCALE" -f "$lt_tmp/mirrored.sql")
            [[ $target == marker ]] && db=mirrored script=(-s "$SCALE" -f "$lt_tmp/marker.sql")
            out=$(timeout $((DURATION + 60)) pgbench -n -M "$mode" -c "$CLIENTS" -j $((CLIENTS < 2 ? CLIENTS : 2)) -T "$DURATION" \
                "${script[@]}" -h 127.0.0.1 -p "$lt_pg_port" -U postgres "$db" 2>&1) || die "pgbench $db -M $mode failed: $out"
            t=$(awk '/^tps = / { print $3; exit }' <<<"$out")
            tps[$mode,$target]+="$t "
            say "round $round -M $mode $target: $t tps"
        done
    done
done

# Planning and execution of one UPDATE of a row, plain and mirrored, on the mirrored database.
explain_times() {
    local sql=$1 i
    for ((i = 0; i < 20; i++)); do
        lt_psql_db mirrored -A -t -c "EXPLAIN (ANALYZE, SUMMARY) $sql" | awk '/Planning Time/ { p = $3 } /Execution Time/ { e = $3 } END { print p, e }'
    done
}
plain_times=$(explain_times "UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 77")
mirrored_times=$(explain_times "$(mirrored_update 5 77)")
marker_times=$(explain_times "$(marker_update 5 77)")

results_dir=$(dirname "${BASH_SOURCE[0]}")/results
mkdir -p "$results_dir"
report=$results_dir/mirror-cost-latest.md
{
    echo "# What a mirrored write costs PostgreSQL (no proxy)"
    echo
    echo "Command: \`$command_line\`; pgbench TPC-B-like -c $CLIENTS, scale $SCALE, $ROUNDS rounds of $DURATION s, databases interleaved."
    echo
    lt_machine_md "(none: PostgreSQL only)"
    echo
    echo "| -M | plain TPS | trigger TPS | tag form TPS | marker form TPS | trigger / plain | **tag form / trigger** | marker form / trigger |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for mode in $MODES; do
        p=$(lt_median "${tps[$mode,plain]}")
        t=$(lt_median "${tps[$mode,trig]}")
        m=$(lt_median "${tps[$mode,mirrored]}")
        k=$(lt_median "${tps[$mode,marker]}")
        echo "| $mode | $p | $t | $m | $k | $(lt_ratio "$t" "$p") | **$(lt_ratio "$m" "$t")** | $(lt_ratio "$k" "$t") |"
    done
    echo
    echo "One UPDATE of a row, EXPLAIN (ANALYZE, SUMMARY), median of 20 (ms):"
    echo
    echo "| form | planning | execution |"
    echo "| --- | ---: | ---: |"
    echo "| plain UPDATE | $(lt_median "$(awk '{ print $1 }' <<<"$plain_times")") | $(lt_median "$(awk '{ print $2 }' <<<"$plain_times")") |"
    echo "| mirrored, tag form | $(lt_median "$(awk '{ print $1 }' <<<"$mirrored_times")") | $(lt_median "$(awk '{ print $2 }' <<<"$mirrored_times")") |"
    echo "| mirrored, marker form | $(lt_median "$(awk '{ print $1 }' <<<"$marker_times")") | $(lt_median "$(awk '{ print $2 }' <<<"$marker_times")") |"
} >"$report"
cat "$report"
