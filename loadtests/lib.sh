# Shared helpers for the load tests: sourced by bench.sh, sessions.sh and canary.sh, not run on its own.
#
# Each script calls lt_init NAME first. The helpers start a throwaway PostgreSQL cluster, PgBouncer
# and Switchyard on free 127.0.0.1 ports under one temp dir, remember every pid they start, and
# lt_cleanup (installed as the EXIT trap by lt_init) stops each of them by its own pid and removes
# the temp dir. Nothing listens anywhere but 127.0.0.1.
#
# When run as root, PostgreSQL and PgBouncer run as the `postgres` OS user through
# `runuser -u postgres --`. runuser stays as the parent of the real server (it keeps the PAM session
# open), so the helpers track both pids: the server's own pid is signalled, and the runuser pid is
# reaped afterwards.

lt_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
lt_dir=$lt_root/loadtests

# The Swift toolchain lives in /opt/swift on these machines and is not always on PATH.
if [[ -d /opt/swift/usr/bin ]]; then
    export PATH=/opt/swift/usr/bin:$PATH
fi
# The caller's own PG* settings (PGPASSWORD, PGSSLMODE, PGHOST...) must not leak into the runs.
unset "${!PG@}"

lt_name=loadtest
lt_tmp=""
lt_pg_bin=""
lt_pg_port=""
lt_pg_pid=""       # the postmaster
lt_pg_wrapper=""   # runuser (or the postmaster itself when not root)
lt_bouncer_port=""
lt_bouncer_pid=""
lt_bouncer_wrapper=""
lt_sy_port=""
lt_sy_pid=""
lt_sy_log=""
lt_keep_logs_dir=""  # if set, lt_cleanup copies the logs here before removing the temp dir
lt_db_cpus=""       # with DB_CPUS=N: the CPUs PostgreSQL runs on alone (a cpu list for taskset)
lt_client_cpus=""   # and the CPUs everything else runs on

say() { echo "$lt_name: $*" >&2; }
die() {
    echo "$lt_name: error: $*" >&2
    exit 1
}

# lt_parse_args NAME ARGS...: the options every script takes: --quick, --help. Sets quick and command_line.
lt_parse_args() {
    local name=$1 script=$2
    shift 2
    command_line="${DB_CPUS:+DB_CPUS=$DB_CPUS }${SHARED_BUFFERS:+SHARED_BUFFERS=$SHARED_BUFFERS }loadtests/$name.sh${*:+ $*}"
    quick=0
    local arg
    for arg in "$@"; do
        case $arg in
        --quick) quick=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$script" | sed '$d' | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "$name: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
        esac
    done
}

# lt_init NAME: checks the tools, makes the temp dir, installs the EXIT trap.
lt_init() {
    lt_name=$1
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -V -r); do
        if [[ -x $dir/postgres && -x $dir/initdb ]]; then
            lt_pg_bin=$dir
            break
        fi
    done
    [[ -n $lt_pg_bin ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql (run make deps)"
    local tool
    for tool in pgbench psql python3 timeout; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run make deps)"
    done
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' OS user to run PostgreSQL and PgBouncer"
    fi

    lt_split_cpus

    lt_tmp=$(mktemp -d "/tmp/switchyard-$lt_name-XXXXXX")
    chmod 755 "$lt_tmp"
    trap lt_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# lt_split_cpus: with DB_CPUS=N in the environment, the last N of the CPUs this script may use go
# to PostgreSQL alone and the others to everything else (pgbench, the proxies, psql), the way a
# database has a host of its own in production: then a ratio measures what each target costs the
# database rather than who wins the shared CPUs. Unset (the default), every process shares every CPU.
lt_split_cpus() {
    [[ -n ${DB_CPUS:-} ]] || return 0
    command -v taskset >/dev/null 2>&1 || die "DB_CPUS needs taskset (util-linux)"
    local list cpus=() part
    list=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
    for part in ${list//,/ }; do
        if [[ $part == *-* ]]; then
            cpus+=($(seq "${part%-*}" "${part#*-}"))
        else
            cpus+=("$part")
        fi
    done
    [[ $DB_CPUS =~ ^[1-9][0-9]*$ ]] && ((DB_CPUS < ${#cpus[@]})) ||
        die "DB_CPUS must be from 1 to $((${#cpus[@]} - 1)), leaving a CPU for the clients (got '$DB_CPUS'; CPUs here: $list)"
    local split=$((${#cpus[@]} - DB_CPUS))
    lt_client_cpus=$(IFS=,; echo "${cpus[*]:0:split}")
    lt_db_cpus=$(IFS=,; echo "${cpus[*]:split}")
    # This shell, and so everything it starts from now on, stays off the database's CPUs.
    taskset -p -c "$lt_client_cpus" $$ >/dev/null || die "taskset could not move this script to CPUs $lt_client_cpus"
}

# lt_report_file NAME: results/NAME-latest.md, or results/NAME-db-cpus-latest.md with DB_CPUS, so
# that a run with the database on CPUs of its own keeps the shared layout's report.
lt_report_file() {
    echo "$lt_dir/results/$1${DB_CPUS:+-db-cpus}-latest.md"
}

# lt_cpu_layout: one line saying where the processes run.
lt_cpu_layout() {
    if [[ -n $lt_db_cpus ]]; then
        echo "PostgreSQL alone on CPU $lt_db_cpus; pgbench, proxies and psql on CPU $lt_client_cpus (DB_CPUS=$DB_CPUS)"
    else
        echo "shared: every process on every CPU"
    fi
}

# lt_as_server_user CMD...: runs CMD as postgres when root, else as ourselves.
lt_as_server_user() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# lt_owned_dir PATH: makes a directory the server user can write.
lt_owned_dir() {
    mkdir -p "$1"
    if [[ $(id -u) == 0 ]]; then
        chown postgres:postgres "$1"
    fi
}

lt_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

lt_alive() {
    local pid=$1
    [[ -n $pid ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # A zombie has exited already.
    [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# lt_wait_port PORT SECONDS PID: until 127.0.0.1:PORT accepts a TCP connection; fails if PID dies.
lt_wait_port() {
    local port=$1 seconds=$2 pid=$3 i
    for ((i = 0; i < seconds * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        lt_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# lt_spawn_as_server_user CMD...: for `lt_spawn_as_server_user CMD... &` only: the background
# subshell becomes runuser (or CMD itself when not root), so $! is runuser's pid and the server is its child.
lt_spawn_as_server_user() {
    if [[ $(id -u) == 0 ]]; then
        exec runuser -u postgres -- "$@"
    else
        exec "$@"
    fi
}

# lt_server_pid PID NAME: PID itself if its command name is NAME, else its child of that name
# (the server runuser started); waits up to 5 s for it to appear.
lt_server_pid() {
    local pid=$1 name=$2 i child
    for ((i = 0; i < 50; i++)); do
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; then
            echo "$pid"
            return 0
        fi
        for child in $(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true); do
            if [[ $(cat "/proc/$child/comm" 2>/dev/null) == "$name" ]]; then
                echo "$child"
                return 0
            fi
        done
        lt_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# lt_stop PID SIGNAL NAME [WRAPPER]: signals PID, gives it 15 s, then SIGKILL; then reaps WRAPPER.
lt_stop() {
    local pid=$1 signal=$2 name=$3 wrapper=${4:-} i
    [[ -n $pid || -n $wrapper ]] || return 0
    if lt_alive "$pid"; then
        kill "-$signal" "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            lt_alive "$pid" || break
            sleep 0.1
        done
        if lt_alive "$pid"; then
            say "$name (pid $pid) did not stop in 15 s after SIG$signal, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [[ -n $wrapper && $wrapper != "$pid" ]]; then
        for ((i = 0; i < 50; i++)); do
            lt_alive "$wrapper" || break
            sleep 0.1
        done
        if lt_alive "$wrapper"; then
            kill -TERM "$wrapper" 2>/dev/null || true
        fi
    fi
    # Reap what we started (a process started by another shell is not ours to wait for).
    if [[ -n $wrapper ]]; then
        wait "$wrapper" 2>/dev/null || true
    elif [[ -n $pid ]]; then
        wait "$pid" 2>/dev/null || true
    fi
    return 0
}

lt_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    lt_stop "$lt_sy_pid" TERM switchyard
    lt_stop "$lt_bouncer_pid" INT pgbouncer "$lt_bouncer_wrapper"
    lt_stop "$lt_pg_pid" INT postgres "$lt_pg_wrapper"
    if [[ -n $lt_keep_logs_dir && -n $lt_tmp ]]; then
        mkdir -p "$lt_keep_logs_dir"
        cp -f "$lt_tmp"/*.log "$lt_keep_logs_dir"/ 2>/dev/null || true
    fi
    if [[ -n $lt_tmp && -d $lt_tmp ]]; then
        rm -rf "$lt_tmp"
    fi
    exit "$status"
}

# lt_start_postgres MAX_CONNECTIONS [SHARED_BUFFERS]: initdb + postgres on a free port; sets
# lt_pg_port, lt_pg_pid and lt_pg_shared_buffers (SHARED_BUFFERS, default 256MB; the environment's
# SHARED_BUFFERS overrides both).
lt_pg_shared_buffers=""
lt_start_postgres() {
    local max_connections=$1
    lt_pg_shared_buffers=${SHARED_BUFFERS:-${2:-256MB}}
    [[ $lt_pg_shared_buffers =~ ^[1-9][0-9]*(kB|MB|GB)$ ]] || die "SHARED_BUFFERS must be a size like 512MB or 2GB (got '$lt_pg_shared_buffers')"
    local data=$lt_tmp/pgdata log=$lt_tmp/postgres.log
    lt_owned_dir "$data"
    touch "$log"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$log"
    say "initdb ($lt_pg_bin)"
    lt_as_server_user "$lt_pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
        >"$lt_tmp/initdb.log" 2>&1 || {
        cat "$lt_tmp/initdb.log" >&2
        die "initdb failed"
    }
    lt_pg_port=$(lt_free_port)
    # No Unix socket: everything goes through 127.0.0.1.
    local pin=()
    [[ -n $lt_db_cpus ]] && pin=(taskset -c "$lt_db_cpus")
    lt_spawn_as_server_user "${pin[@]}" "$lt_pg_bin/postgres" -D "$data" \
        -c listen_addresses=127.0.0.1 -c port="$lt_pg_port" -c unix_socket_directories= \
        -c max_connections="$max_connections" -c shared_buffers="$lt_pg_shared_buffers" \
        -c fsync=off -c synchronous_commit=off \
        -c logging_collector=off -c log_min_messages=warning \
        >>"$log" 2>&1 &
    lt_pg_wrapper=$!
    lt_pg_pid=$(lt_server_pid "$lt_pg_wrapper" postgres) || {
        cat "$log" >&2
        die "postgres did not start"
    }
    lt_wait_port "$lt_pg_port" 60 "$lt_pg_pid" || {
        cat "$log" >&2
        die "postgres is not accepting connections on 127.0.0.1:$lt_pg_port"
    }
    # The port accepts before recovery ends: wait for a real query to work.
    local i
    for ((i = 0; i < 100; i++)); do
        lt_psql_direct -c 'select 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
    lt_psql_direct -c 'select 1' >/dev/null || die "postgres does not answer queries"
    say "postgres pid $lt_pg_pid on 127.0.0.1:$lt_pg_port (max_connections=$max_connections, shared_buffers=$lt_pg_shared_buffers)"
}

# lt_psql_direct ARGS...: psql straight to PostgreSQL as postgres, stop on error, no psqlrc.
lt_psql_direct() {
    timeout 120 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$lt_pg_port" -U postgres -d postgres "$@"
}

# lt_start_pgbouncer: PgBouncer in session mode in front of PostgreSQL; sets lt_bouncer_port, lt_bouncer_pid.
lt_start_pgbouncer() {
    local bouncer=${PGBOUNCER_BIN:-}
    if [[ -z $bouncer ]]; then
        bouncer=$(command -v pgbouncer 2>/dev/null || true)
        [[ -z $bouncer && -x /usr/sbin/pgbouncer ]] && bouncer=/usr/sbin/pgbouncer
    fi
    [[ -n $bouncer && -x $bouncer ]] || die "pgbouncer not found (run make deps)"
    local ini=$lt_tmp/pgbouncer.ini log=$lt_tmp/pgbouncer.log
    lt_bouncer_port=$(lt_free_port)
    cat >"$ini" <<EOF
; Generated by loadtests/lib.sh for one load-test run.
[databases]
* = host=127.0.0.1 port=$lt_pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $lt_bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $lt_tmp/pgbouncer-users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 100
logfile =
pidfile =
admin_users = postgres
log_connections = 0
log_disconnections = 0
EOF
    echo '"postgres" ""' >"$lt_tmp/pgbouncer-users.txt"
    touch "$log"
    if [[ $(id -u) == 0 ]]; then
        chown postgres:postgres "$ini" "$lt_tmp/pgbouncer-users.txt" "$log"
    fi
    lt_spawn_as_server_user "$bouncer" "$ini" >>"$log" 2>&1 &
    lt_bouncer_wrapper=$!
    lt_bouncer_pid=$(lt_server_pid "$lt_bouncer_wrapper" pgbouncer) || {
        cat "$log" >&2
        die "pgbouncer did not start"
    }
    lt_wait_port "$lt_bouncer_port" 30 "$lt_bouncer_pid" || {
        cat "$log" >&2
        die "pgbouncer is not accepting connections on 127.0.0.1:$lt_bouncer_port"
    }
    say "pgbouncer pid $lt_bouncer_pid on 127.0.0.1:$lt_bouncer_port (session mode)"
}

# lt_switchyard_bin: the binary to run, from SWITCHYARD_BIN or the release build of this checkout.
lt_switchyard_bin() {
    local bin=${SWITCHYARD_BIN:-}
    if [[ -z $bin ]]; then
        bin=$(cd "$lt_root" && swift build -c release --show-bin-path)/switchyard
    fi
    [[ -x $bin ]] || die "$bin not found: build it with 'swift build -c release' (or set SWITCHYARD_BIN)"
    echo "$bin"
}

# lt_start_switchyard BIN: Switchyard in front of PostgreSQL; sets lt_sy_port, lt_sy_pid, lt_sy_log.
lt_start_switchyard() {
    local bin=$1
    lt_sy_log=$lt_tmp/switchyard.log
    lt_sy_port=$(lt_free_port)
    "$bin" serve --listen "127.0.0.1:$lt_sy_port" \
        --upstream "postgresql://postgres@127.0.0.1:$lt_pg_port/postgres" \
        --admin-listen off >>"$lt_sy_log" 2>&1 &
    lt_sy_pid=$!
    lt_wait_port "$lt_sy_port" 30 "$lt_sy_pid" || {
        cat "$lt_sy_log" >&2
        die "switchyard is not accepting connections on 127.0.0.1:$lt_sy_port"
    }
    say "switchyard pid $lt_sy_pid on 127.0.0.1:$lt_sy_port ($bin)"
}

# lt_machine_md: a markdown description of this machine and the software under test.
lt_machine_md() {
    local bin=$1 commit dirty=""
    commit=$(git -C "$lt_root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$lt_root" status --porcelain -- Sources Package.swift 2>/dev/null || true) ]]; then
        dirty=" (Sources/ or Package.swift modified in the working tree)"
    fi
    local model mem
    model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
    local bouncer_version
    bouncer_version=$( (pgbouncer --version 2>/dev/null || /usr/sbin/pgbouncer --version 2>/dev/null) | head -1 || true)
    echo "| | |"
    echo "| --- | --- |"
    echo "| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |"
    echo "| CPUs online | $(getconf _NPROCESSORS_ONLN) |"
    echo "| CPU layout | $(lt_cpu_layout) |"
    echo "| CPU model | ${model:-unknown} |"
    echo "| memory | ${mem:-unknown} |"
    echo "| kernel | $(uname -sr) |"
    echo "| PostgreSQL | $("$lt_pg_bin/postgres" --version) |"
    [[ -n $lt_pg_shared_buffers ]] && echo "| PostgreSQL shared_buffers | $lt_pg_shared_buffers |"
    echo "| pgbench | $(pgbench --version) |"
    echo "| PgBouncer | ${bouncer_version:-unknown} |"
    echo "| load average (1/5/15 min, when written) | $(cut -d' ' -f1-3 /proc/loadavg) |"
    echo "| Switchyard checkout commit | $commit$dirty |"
    echo "| Switchyard binary | \`$bin\` |"
}

# --- The migration the write scripts share (dualwrite.sh, backfill.sh, soak.sh) ---

# The new table: pgbench_accounts with abalance renamed to balance and widened to bigint, empty.
lt_accounts_v2_ddl="CREATE TABLE pgbench_accounts_v2 (aid integer PRIMARY KEY, bid integer, balance bigint, filler character(84))"

# lt_accounts_migration: the config's migrations: section for that table (a rename and a cast); a
# script adds keys of its own under the entry (backfill:, ...) on the lines after it.
lt_accounts_migration() {
    cat <<'YAML'
migrations:
  - name: accounts_v2
    old: public.pgbench_accounts
    new: public.pgbench_accounts_v2
    key: [aid]
    columns:
      aid: aid
      bid: bid
      abalance: { new: balance, forward: "abalance::bigint", inverse: "balance::integer" }
      filler: filler
YAML
}

# lt_accounts_v2_copy DB: pgbench_accounts_v2 in DB as a copy of pgbench_accounts through that
# mapping, with its key, analysed (the new table of a dual-write that starts already backfilled).
lt_accounts_v2_copy() {
    lt_psql_db "$1" -c "CREATE TABLE pgbench_accounts_v2 AS SELECT aid, bid, abalance::bigint AS balance, filler FROM pgbench_accounts" \
        -c "ALTER TABLE pgbench_accounts_v2 ADD PRIMARY KEY (aid)" -c "VACUUM ANALYZE" >/dev/null
}

# lt_canary_table: pgbench_accounts_v2 in database postgres, a copy of pgbench_accounts with abalance
# renamed to balance and the same row shape otherwise (so routed reads take the direct form).
lt_canary_table() {
    lt_psql_direct >/dev/null <<'SQL'
CREATE TABLE pgbench_accounts_v2 AS SELECT aid, bid, abalance AS balance, filler FROM pgbench_accounts;
ALTER TABLE pgbench_accounts_v2 ADD PRIMARY KEY (aid);
VACUUM ANALYZE;
SQL
}

# lt_canary_config PORT SCHEMA: the configuration of a Switchyard on 127.0.0.1:PORT with a flag at
# canary 50% on pgbench_accounts (routed to lt_canary_table's copy), its control schema SCHEMA.
lt_canary_config() {
    cat <<EOF
listen: 127.0.0.1:$1
upstream: postgresql://postgres@127.0.0.1:$lt_pg_port/postgres
admin_listen: off
migrations:
  - name: accounts_v2
    old: public.pgbench_accounts
    new: public.pgbench_accounts_v2
    key: [aid]
    columns: { aid: aid, bid: bid, abalance: balance, filler: filler }
flags:
  - name: accounts_v2
    migration: accounts_v2
    stage: canary
    percent: 50
    cohort_key: [comment:cohort, setting:switchyard.cohort, application_name]
    # Routing alone: shadow reads (sampled at 1% by default from the shadow stage on) cost the
    # server their own queries and are measured apart.
    shadow_sample: 0
control:
  schema: $2
EOF
}

# lt_accounts_mirror_trigger DB: the same dual-write done the way pg-osc and pgroll do it, an AFTER
# row trigger in PL/pgSQL on pgbench_accounts that upserts (or deletes) the row in pgbench_accounts_v2.
lt_accounts_mirror_trigger() {
    lt_psql_db "$1" >/dev/null <<'SQL'
CREATE FUNCTION pgbench_accounts_mirror() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR NEW.aid <> OLD.aid) THEN
        DELETE FROM pgbench_accounts_v2 WHERE aid = OLD.aid;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    INSERT INTO pgbench_accounts_v2 (aid, bid, balance, filler) VALUES (NEW.aid, NEW.bid, NEW.abalance::bigint, NEW.filler)
    ON CONFLICT (aid) DO UPDATE SET bid = EXCLUDED.bid, balance = EXCLUDED.balance, filler = EXCLUDED.filler;
    RETURN NEW;
END
$$;
CREATE TRIGGER pgbench_accounts_mirror AFTER INSERT OR UPDATE OR DELETE ON pgbench_accounts
    FOR EACH ROW EXECUTE FUNCTION pgbench_accounts_mirror();
SQL
}

# --- Small helpers for the scripts that write reports ---

# lt_pgbench_init DB: pgbench's tables at scale $SCALE in database DB (which must exist); its
# output is shown only if it fails.
lt_pgbench_init() {
    say "pgbench -i -s $SCALE $1"
    timeout 1800 pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$lt_pg_port" -U postgres "$1" >"$lt_tmp/init.log" 2>&1 || {
        cat "$lt_tmp/init.log" >&2
        die "pgbench -i failed"
    }
}

# lt_psql_db DB ARGS...: psql on database DB of lt_start_postgres's server, stopping at the first error.
lt_psql_db() {
    local db=$1
    shift
    timeout 120 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$lt_pg_port" -U postgres -d "$db" "$@"
}

# lt_median "V1 V2 ...": the median of space-separated numbers (0 for none).
lt_median() {
    tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

# lt_ratio NUM DEN: NUM / DEN with three decimals (0 when DEN is not positive).
lt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }'; }

# lt_pg_settle: waits (at most 3 s) until the postmaster's children stay the same for 0.1 s with no
# zombie among them. Backends end together when a run's clients disconnect; one reaped between the
# reads of the postmaster and of its own stat would be in neither, and a run's figure came out near 0.
lt_pg_settle() {
    local i now previous=""
    for ((i = 0; i < 30; i++)); do
        now=$(ps --ppid "$lt_pg_pid" -o pid=,stat= 2>/dev/null | sort)
        [[ $now == "$previous" && ! $now =~ [[:space:]]Z ]] && return 0
        previous=$now
        sleep 0.1
    done
}

# lt_pg_cpu_seconds: user + system CPU time used so far by PostgreSQL: the postmaster, its living
# processes (backends, background workers) and the ended ones it has reaped. The difference across a
# run is what the server spent on it, whether or not its backends have exited yet.
lt_pg_cpu_seconds() {
    lt_pg_settle
    local files=("/proc/$lt_pg_pid/stat") child
    for child in $(ps --ppid "$lt_pg_pid" -o pid= 2>/dev/null); do
        files+=("/proc/$child/stat")
    done
    # After the command name: utime and stime are the 12th and 13th fields, cutime and cstime (the
    # reaped children's) the 14th and 15th; a child that ended meanwhile is in its parent's cutime.
    { cat "${files[@]}" 2>/dev/null || true; } | awk -v ticks="$(getconf CLK_TCK)" '
        { sub(/^.*\) /, ""); total += $12 + $13; if (NR == 1) total += $14 + $15 }
        END { printf "%.2f\n", total / ticks }'
}

# --- Helpers for a second Switchyard and its admin console (used by canary.sh) ---

lt_spawned_pid=""

# lt_spawn_switchyard BIN PORT LOG ARGS...: runs `BIN serve ARGS...` in the background (stdout and
# stderr appended to LOG) and waits until 127.0.0.1:PORT accepts; sets lt_spawned_pid. Unlike
# lt_start_switchyard it leaves lt_sy_* alone, so lt_cleanup does not know this process: the caller
# stops it by its pid (lt_stop PID TERM NAME). Call it directly, not in $(...), so the pid stays ours.
lt_spawn_switchyard() {
    local bin=$1 port=$2 log=$3
    shift 3
    "$bin" serve "$@" >>"$log" 2>&1 &
    lt_spawned_pid=$!
    lt_wait_port "$port" 30 "$lt_spawned_pid" || {
        cat "$log" >&2
        die "switchyard (serve $*) is not accepting connections on 127.0.0.1:$port"
    }
    say "switchyard pid $lt_spawned_pid on 127.0.0.1:$port (serve $*)"
}

# lt_admin_query PORT COMMAND: runs COMMAND (SHOW FLAGS...) on the admin console of the Switchyard
# listening on 127.0.0.1:PORT (database switchyard, user postgres); unaligned, tab-separated, with the header.
lt_admin_query() {
    timeout 30 psql -X -A -F $'\t' -h 127.0.0.1 -p "$1" -U postgres -d switchyard -c "$2"
}

# lt_cpu_seconds PID: user + system CPU time used so far by PID (all its threads), in seconds.
lt_cpu_seconds() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo ""
        return 0
    }
    # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    awk -v ticks="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / ticks }' <<<"$stat"
}
