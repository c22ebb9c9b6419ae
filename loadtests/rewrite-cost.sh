#!/usr/bin/env bash
# What a routed read costs PostgreSQL itself, without any proxy: pgbench select-only by key
# on the old table, on the new table, and in the rewritten forms Switchyard sends for the canary
# cohort (a projection subquery of the new table under the old names and types, or the new table
# with a column alias list), that form's two parts apart (the schema, the alias list), with the
# renamed column aliased where it is used, and half old, half direct (a canary at 50% reads both tables), interleaved, with PostgreSQL's CPU per statement.
# shared_buffers is 1GB, as in canary.sh, so both tables fit.
#
# Then the same forms counted in instructions, which the machine's noise does not move: PostgreSQL
# stopped, a single-user backend (postgres --single) under valgrind's callgrind runs each form's
# statement COUNT_LOW and then COUNT_HIGH times (the same keys for every form, both tables loaded
# into shared buffers first with pg_prewarm), and the difference over COUNT_HIGH - COUNT_LOW is one
# statement's cost: in all, and in parsing, analysis, planning and execution. A single-user backend
# reads its input a character at a time, which the total leaves out: it counts from parsing on.
#
# Usage: loadtests/rewrite-cost.sh [--quick]
# Environment: DURATION (10; 3 with --quick), ROUNDS (5; 1; 0 counts instructions only), CLIENTS (8),
# SCALE (10), COUNT_LOW (1000; 200 with --quick), COUNT_HIGH (4000; 800), INSTRUCTIONS (1; 0 skips
# the count, which needs valgrind).
# Writes loadtests/results/rewrite-cost-latest.md (rewrite-cost-db-cpus-latest.md with DB_CPUS).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lt_parse_args rewrite-cost "${BASH_SOURCE[0]}" "$@"
DURATION=${DURATION:-$([[ $quick == 1 ]] && echo 3 || echo 10)}
ROUNDS=${ROUNDS:-$([[ $quick == 1 ]] && echo 1 || echo 5)}
CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}
COUNT_LOW=${COUNT_LOW:-$([[ $quick == 1 ]] && echo 200 || echo 1000)}
COUNT_HIGH=${COUNT_HIGH:-$([[ $quick == 1 ]] && echo 800 || echo 4000)}
INSTRUCTIONS=${INSTRUCTIONS:-1}
[[ $ROUNDS =~ ^[0-9]+$ ]] || die "ROUNDS must be a number (got '$ROUNDS')"
[[ $COUNT_LOW =~ ^[1-9][0-9]{0,5}$ && $COUNT_HIGH =~ ^[1-9][0-9]{0,5}$ ]] && ((COUNT_HIGH > COUNT_LOW)) ||
    die "COUNT_LOW and COUNT_HIGH must be positive integers, COUNT_HIGH the larger (got '$COUNT_LOW', '$COUNT_HIGH')"
[[ $INSTRUCTIONS == [01] ]] || die "INSTRUCTIONS must be 0 or 1 (got '$INSTRUCTIONS')"
if ((INSTRUCTIONS)); then
    for tool in valgrind callgrind_annotate; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install valgrind), or set INSTRUCTIONS=0"
    done
fi
((ROUNDS > 0 || INSTRUCTIONS)) || die "ROUNDS=0 and INSTRUCTIONS=0 leave nothing to measure"

lt_init rewrite-cost
lt_start_postgres 100 1GB
lt_pgbench_init postgres
lt_psql_direct -c "CREATE TABLE pgbench_accounts_v2 AS SELECT aid, bid, abalance AS balance, filler FROM pgbench_accounts" \
    -c "ALTER TABLE pgbench_accounts_v2 ADD PRIMARY KEY (aid)" -c "VACUUM ANALYZE"
((INSTRUCTIONS)) && lt_psql_direct -c "CREATE EXTENSION pg_prewarm"

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
    'SELECT abalance FROM public.pgbench_accounts_v2 AS pgbench_accounts(aid, bid, abalance) WHERE aid = :aid;' \
    >"$lt_tmp/direct.sql"
# "listed": the direct form with every column in the alias list, as Switchyard sent it before the
# list stopped at the last renamed column (filler keeps its name).
printf '%s\n' '\set aid random(1, 100000 * :scale)' \
    'SELECT abalance FROM public.pgbench_accounts_v2 AS pgbench_accounts(aid, bid, abalance, filler) WHERE aid = :aid;' \
    >"$lt_tmp/listed.sql"
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
    'SELECT abalance FROM pgbench_accounts_v2 AS pgbench_accounts(aid, bid, abalance) WHERE aid = :aid;' \
    >"$lt_tmp/aliased.sql"

# "half": old and direct, one transaction in two each (pgbench picks a script per transaction), as
# the server sees a canary at 50%: the reads spread over both tables.
forms="old new qualified aliased rewritten direct listed renamed half"
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

# Instructions per statement in a single-user backend, for each form (see the header).
declare -A phase_ir
phases="pg_parse_query pg_analyze_and_rewrite_fixedparams pg_plan_queries PortalRun"
# phase_total PHASE FILE: the phase's inclusive instructions in FILE, callgrind_annotate's output,
# whose lines read "  144,145,870 (13.42%)  ???:pg_parse_query [/usr/lib/...]".
phase_total() { awk -v f="???:$1 [" 'index($0, f) { gsub(",", "", $1); print $1; exit }' "$2"; }
if ((INSTRUCTIONS)); then
    lt_stop "$lt_pg_pid" INT postgres "$lt_pg_wrapper"
    lt_pg_pid="" lt_pg_wrapper=""
    cg_dir=$lt_tmp/callgrind
    lt_owned_dir "$cg_dir"
    for form in $forms; do
        templates=("$lt_tmp/$form.sql")
        [[ $form == half ]] && templates=("$lt_tmp/old.sql" "$lt_tmp/direct.sql")
        for n in "$COUNT_LOW" "$COUNT_HIGH"; do
            # The same keys in the same order for every form; half alternates old and direct.
            python3 - "$n" "$((100000 * SCALE))" "${templates[@]}" >"$lt_tmp/single-$form-$n.sql" <<'PY'
import random, sys
n, rows, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
templates = [open(f).read().splitlines()[1] for f in files]
for table in ("pgbench_accounts", "pgbench_accounts_pkey", "pgbench_accounts_v2", "pgbench_accounts_v2_pkey"):
    print(f"SELECT pg_prewarm('{table}');")
keys = random.Random(42)
for i in range(n):
    print(templates[i % len(templates)].replace(":aid", str(keys.randint(1, rows))))
PY
            out=$cg_dir/$form-$n.out
            lt_as_server_user timeout 900 valgrind --tool=callgrind --callgrind-out-file="$out" \
                "$lt_pg_bin/postgres" --single -D "$lt_tmp/pgdata" -c shared_buffers=1GB postgres \
                <"$lt_tmp/single-$form-$n.sql" >"$lt_tmp/single-$form-$n.txt" 2>"$lt_tmp/single-$form-$n.err" || {
                tail -20 "$lt_tmp/single-$form-$n.err" >&2
                die "the single-user backend failed on form $form"
            }
            answered=$(grep -c '^[[:space:]]*1: a\{0,1\}balance = ' "$lt_tmp/single-$form-$n.txt" || true)
            ((answered == n)) || die "form $form: $answered answers to $n statements (see $lt_tmp/single-$form-$n.txt)"
            callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null >"$cg_dir/$form-$n.txt"
        done
        for phase in $phases; do
            low=$(phase_total "$phase" "$cg_dir/$form-$COUNT_LOW.txt")
            high=$(phase_total "$phase" "$cg_dir/$form-$COUNT_HIGH.txt")
            [[ -n $low && -n $high ]] || die "no $phase in callgrind's annotation of form $form"
            phase_ir[$form,$phase]=$(((high - low) / (COUNT_HIGH - COUNT_LOW)))
        done
        say "instructions: $form done"
    done
fi

mkdir -p "$(dirname "${BASH_SOURCE[0]}")/results"
report=$(lt_report_file rewrite-cost)
old_tps=0
((ROUNDS > 0)) && old_tps=$(lt_median "${results[old]}")
sum_ir() { local total=0 phase; for phase in $phases; do total=$((total + ${phase_ir[$1,$phase]})); done; echo "$total"; }
{
    echo "# What a rewritten read costs PostgreSQL (no proxy)"
    echo
    echo "Command: \`$command_line\`; scale $SCALE, ROUNDS=$ROUNDS, INSTRUCTIONS=$INSTRUCTIONS."
    echo
    lt_machine_md "(none: PostgreSQL only)"
    echo
    echo "The forms (half: old and direct, one statement in two each):"
    echo
    for form in $forms; do
        [[ $form == half ]] && continue
        echo "- $form: \`$(sed -n 2p "$lt_tmp/$form.sql")\`"
    done
    if ((ROUNDS > 0)); then
        echo
        echo "## Throughput"
        echo
        echo "pgbench -M simple -c $CLIENTS, $ROUNDS rounds of ${DURATION} s, forms interleaved. PostgreSQL CPU: all its processes' user + system time during the run over the statements."
        echo
        echo "| form | median TPS | TPS of each round | ratio to old | PostgreSQL CPU µs/statement |"
        echo "| --- | ---: | --- | ---: | ---: |"
        for form in $forms; do
            m=$(lt_median "${results[$form]}")
            echo "| $form | $m | ${results[$form]} | $(lt_ratio "$m" "$old_tps") | $(lt_median "${pgcpu[$form]}") |"
        done
    fi
    if ((INSTRUCTIONS)); then
        old_ir=$(sum_ir old)
        echo
        echo "## Instructions per statement"
        echo
        echo "A single-user backend under callgrind, $COUNT_LOW and $COUNT_HIGH statements per form; each phase's instructions"
        echo "inclusive of what it calls (pg_parse_query, pg_analyze_and_rewrite_fixedparams, pg_plan_queries, PortalRun),"
        echo "over the $((COUNT_HIGH - COUNT_LOW)) statements between the two runs. Execution includes printing the row."
        echo
        echo "| form | parse | analyze | plan | execute | in all | in all − old | ratio to old |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for form in $forms; do
            total=$(sum_ir "$form")
            row="| $form"
            for phase in $phases; do row+=" | ${phase_ir[$form,$phase]}"; done
            echo "$row | $total | $((total - old_ir)) | $(lt_ratio "$total" "$old_ir") |"
        done
    fi
} >"$report"
cat "$report"
say "report in $report"
