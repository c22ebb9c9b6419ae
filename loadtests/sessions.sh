#!/usr/bin/env bash
# Idle-session footprint: N concurrent idle client sessions held through Switchyard.
#
# Starts a throwaway PostgreSQL (max_connections = N + 50) and Switchyard on free 127.0.0.1 ports,
# then runs loadtests/hold_sessions.py, which opens N raw protocol sessions through Switchyard
# (trust startup + select 1 each), holds them idle, and reports Switchyard's RSS, thread and fd
# counts before, while held and after closing, and the idle memory per session in KiB.
# The report goes to stdout and to loadtests/results/sessions-latest.md.
#
# Usage: loadtests/sessions.sh [N]
# Environment:
#   SESSIONS=N        sessions to hold (default 1000; the argument wins)
#   HOLD=SECONDS      how long to hold them idle (default 5)
#   SWITCHYARD_BIN    the switchyard executable (default: $(swift build -c release --show-bin-path)/switchyard)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case ${1:-} in
-h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
command_line="loadtests/sessions.sh${*:+ $*}"
SESSIONS=${1:-${SESSIONS:-1000}}
HOLD=${HOLD:-5}
if ! [[ $SESSIONS =~ ^[1-9][0-9]{0,4}$ ]] || ((SESSIONS > 10000)); then
    echo "sessions: N must be an integer from 1 to 10000 (got '$SESSIONS')" >&2
    exit 2
fi
[[ $HOLD =~ ^[0-9]{1,3}$ ]] || {
    echo "sessions: HOLD must be a whole number of seconds below 1000 (got '$HOLD')" >&2
    exit 2
}

# Switchyard needs two fds per session (client and upstream socket), the Python client one.
want_fds=$((SESSIONS * 2 + 256))
if (($(ulimit -n) < want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

lt_init sessions
results_dir=$lt_dir/results
mkdir -p "$results_dir"
rm -rf "$results_dir/sessions-latest-logs"
switchyard_bin=$(lt_switchyard_bin)

lt_start_postgres $((SESSIONS + 50))
lt_start_switchyard "$switchyard_bin"

say "holding $SESSIONS sessions through switchyard for ${HOLD}s"
out=$lt_tmp/hold.out
# Bounded twice: hold_sessions.py has its own deadline, and timeout ends it if that fails.
set +e
timeout --kill-after=10 $((HOLD + 400)) python3 "$lt_dir/hold_sessions.py" \
    --port "$lt_sy_port" --pid "$lt_sy_pid" --direct-port "$lt_pg_port" \
    --sessions "$SESSIONS" --hold "$HOLD" --deadline $((HOLD + 300)) 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e

alive=yes
lt_alive "$lt_sy_pid" || alive=no
report=$results_dir/sessions-latest.md
{
    echo "# Switchyard idle sessions: $SESSIONS held for ${HOLD}s"
    echo
    echo "Command: \`$command_line\`"
    echo
    echo "PostgreSQL max_connections=$((SESSIONS + 50)); Switchyard:" \
        "\`switchyard serve --listen 127.0.0.1:PORT --upstream postgresql://postgres@127.0.0.1:PGPORT/postgres --admin-listen off\`" \
        "(default workers = one per core). Each session: StartupMessage (user postgres, trust), \`select 1\`, held idle," \
        "\`select 1\` again, Terminate. RSS, threads and fds are Switchyard's, from /proc/PID."
    echo
    lt_machine_md "$switchyard_bin"
    echo
    echo '```'
    cat "$out"
    echo '```'
    echo
    echo "hold_sessions.py exit status: $rc; Switchyard still running afterwards: $alive."
    if grep -Eiq 'warning|error|critical|fatal' "$lt_sy_log" 2>/dev/null; then
        echo
        echo "Switchyard's stderr has warnings or errors (first 20 such lines):"
        echo '```'
        grep -Ei 'warning|error|critical|fatal' "$lt_sy_log" | head -n 20
        echo '```'
    fi
} >"$report"
say "report written to ${report#"$lt_root"/}"

if ((rc != 0)) || [[ $alive != yes ]]; then
    say "FAILED (hold_sessions.py exit $rc, switchyard running: $alive); switchyard's stderr, last 40 lines:"
    tail -n 40 "$lt_sy_log" >&2 || true
    lt_keep_logs_dir=$results_dir/sessions-latest-logs
    exit 1
fi
