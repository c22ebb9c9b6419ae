#!/usr/bin/env bash
# What a routed read costs PostgreSQL itself, without any proxy: pgbench select-only by key
# on the old table, on the new table, and in the rewritten forms Switchyard sends for the canary
# cohort (a projection subquery of the new table under the old names and types, or the new table
# with a column alias list), that form's two parts apart (the schema, the alias list), with the
# renamed column aliased where it is used, and half old, half direct (a canary at 50% reads both tables), interleaved, with PostgreSQL's CPU per statement.
# shared_buffers is 1GB, as in canary.sh, so both tables fit.
#
# Usage: loadtests/rewrite-cost.sh [--quick]
# Environment: DURATION (10; 3 with --quick), ROUNDS (5; 1), CLIENTS (8), SCALE (10).
# Writes loadtests/results/rewrite-cost-latest.md (rewrite-cost-db-cpus-latest.md with DB_CPUS).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args rewrite-cost "${BASH_SOURCE[0]}" "$@"
DURATION=${DURATION:-$([[ $quick == 1 ]] && echo 3 || echo 10)}
ROUNDS=${ROUNDS:-$([[ $quick == 1 ]] && echo 1 || echo 5)}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}

lt_init rewrite-cost
lt_start_postgres 100 1GB
lt_pgbench_init postgres
lt_psql_direct -c "CREATE TABLE pgbench_accounts_v2 AS SELECT aid, bid, abalance AS balance, filler FROM pgbench_accounts" \
    -c "ALTER TABLE pgbench_accounts_v2 ADD PRIMARY KEY (aid)" -c "VACUUM ANALYZE"

# The forms of the same read. "direct" is what Switchyard sends for the flag in
# loadtests/canary.sh (the new table has the old row shape, so it is named with the old column
# names); "rewritten" is the projection it sends when the shapes differ (the old column types
# come from the catalog, and the projection keeps only the columns the statement uses).
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT abalance FROM pgbench_accounts WHERE aid = :aid;' >"$lt_tmp/old.sql"
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT balance FROM pgbench_accounts_v2 WHERE aid = :aid;' >"$lt_tmp/new.sql"
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT abalance FROM (SELECT CAST((aid) AS integer) AS aid, CAST((balance) AS integer) AS abalance FROM public.pgbench_accounts_v2) AS pgbench_accounts WHERE aid = :aid;' \
    >"$lt_tmp/rewritten.sql"
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT abalance FROM public.pgbench_accounts_v2 AS pgbench_accounts(aid, bid, abalance, filler) WHERE aid = :aid;' \
    >"$lt_tmp/direct.sql"
# "renamed": the new table named under the old table's name, its renamed column given the old name
# where it is referenced (a form Switchyard does not send: it would rewrite every column reference),
# to see what the direct form's column alias list costs against it.
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT balance AS abalance FROM public.pgbench_accounts_v2 AS pgbench_accounts WHERE aid = :aid;' \
    >"$lt_tmp/renamed.sql"

# "qualified" and "aliased": the direct form's two parts apart, the new table named with its schema
# and nothing else, and under the old name with the column alias list but no schema.
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT balance FROM public.pgbench_accounts_v2 WHERE aid = :aid;' >"$lt_tmp/qualified.sql"
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT abalance FROM pgbench_accounts_v2 AS pgbench_accounts(aid, bid, abalance, filler) WHERE aid = :aid;' \
    >"$lt_tmp/aliased.sql"

# "half": old and direct, one transaction in two each (pgbench picks a script per transaction), as
# the server sees a canary at 50%: the reads spread over both tables.
forms="old new qualified aliased rewritten direct renamed half"
declare -A results pgcpu
for ((round = 1; round <= ROUNDS; round++)); do
    for form in $forms; do
        scripts=(-f "$lt_tmp/$form.sql")
        [[ $form == half ]] && scripts=(-f "$lt_tmp/old.sql@1" -f "$lt_tmp/direct.sql@1")
        before=$(lt_pg_cpu_seconds)
        out=$(timeout $((DURATION + 60)) pgbench -n -M simple -c "$CLIENTS" -j $((CLIENTS < 2 ? CLIENTS : 2)) -T "$DURATION" -s "$SCALE" \
            "${scripts[@]}" -h 127.0.0.1 -p "$lt_pg_port" -U postgres postgres 2>&1) || die "pgbench failed: $out"
        after=$(lt_pg_cpu_seconds)
        tps=$(grep -oE '^tps = [0-9.]+' <<<"$out" | awk '{print $3}')
        n=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' <<<"$out")
        results[$form]+="$tps "
        pgcpu[$form]+="$(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }') "
        say "round $round $form $tps tps"
    done
done

old=$(lt_median "${results[old]}")
new=$(lt_median "${results[new]}")
rewritten=$(lt_median "${results[rewritten]}")
direct=$(lt_median "${results[direct]}")
renamed=$(lt_median "${results[renamed]}")
mkdir -p "$(dirname "${BASH_SOURCE[0]}")/results"
report=$(lt_report_file rewrite-cost)
{
    echo "# What a rewritten read costs PostgreSQL (no proxy)"
    echo
    echo "Command: \`$command_line\`; pgbench -M simple -c $CLIENTS, scale $SCALE, $ROUNDS rounds of ${DURATION} s, forms interleaved."
    echo
    lt_machine_md "(none: PostgreSQL only)"
    echo
    echo "| form | median TPS | TPS of each round | ratio to old | PostgreSQL CPU µs/statement |"
    echo "| --- | ---: | --- | ---: | ---: |"
    for form in $forms; do
        m=$(lt_median "${results[$form]}")
        echo "| $form | $m | ${results[$form]} | $(awk -v a="$m" -v b="$old" 'BEGIN {printf "%.3f", a / b}') | $(lt_median "${pgcpu[$form]}") |"
    done
    echo
    echo "half: old and direct, one transaction in two each. PostgreSQL CPU: all its processes' user + system time during the run over the statements."
} >"$report"
say "old $old, new $new, rewritten $rewritten, direct $direct, renamed $renamed tps; report in $report"
