#!/usr/bin/env bash
# The freeze-first migration of an echo pair with nothing but the criu command line: the
# baseline scripts/bench measures the harness against. It starts nothing itself.
#
#   scripts/bench-raw.sh [--overlap] SERVER_PID CLIENT_PID IMAGES_DIR [CRIU]
#
# SIGSTOP the server, then the client; dump the server, then the client (each into its own
# directory under IMAGES_DIR); wait until both pids are free (whoever is their parent reaps
# them); restore the server and SIGCONT it, then the client. The restored pids are written to
# IMAGES_DIR/{server,client}/restore.pid. Same CRIU options as the harness's cli backend.
#
# --overlap: both dumps at once, then both restores at once (each left stopped, as it was
# dumped), then SIGCONT the server, then the client (the harness's server-first-overlapped).
set -euo pipefail

overlap=false
if [ "${1:-}" = --overlap ]; then
    overlap=true
    shift
fi
if [ $# -lt 3 ]; then
    echo "usage: $0 [--overlap] SERVER_PID CLIENT_PID IMAGES_DIR [CRIU]" >&2
    exit 2
fi
server=$1 client=$2 images=$3 criu=${4:-criu}

gone() {
    # A pid is free once /proc no longer has it (a zombie still holds it).
    local pid=$1 tries=0
    while [ -e "/proc/$pid" ]; do
        tries=$((tries + 1))
        if [ "$tries" -gt 10000 ]; then
            echo "pid $pid still there" >&2
            return 1
        fi
        sleep 0.001
    done
}

stopped() {
    local pid=$1
    until [ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ]; do sleep 0.0005; done
}

kill -STOP "$server"; stopped "$server"
kill -STOP "$client"; stopped "$client"
mkdir -p "$images/server" "$images/client"

dump() {
    "$criu" dump --images-dir "$images/$1" --log-file dump.log -v4 --tree "$2"
}

restore() {
    "$criu" restore --images-dir "$images/$1" --log-file restore.log -v4 \
        --restore-detached --pidfile restore.pid
}

if $overlap; then
    dump server "$server" & s=$!
    dump client "$client" & c=$!
    wait "$s"
    wait "$c"
    gone "$server"
    gone "$client"
    restore server & s=$!
    restore client & c=$!
    wait "$s"
    wait "$c"
    kill -CONT "$(cat "$images/server/restore.pid")"
    kill -CONT "$(cat "$images/client/restore.pid")"
    exit 0
fi

"$criu" dump --images-dir "$images/server" --log-file dump.log -v4 --tree "$server"
"$criu" dump --images-dir "$images/client" --log-file dump.log -v4 --tree "$client"
gone "$server"
gone "$client"
for role in server client; do
    "$criu" restore --images-dir "$images/$role" --log-file restore.log -v4 \
        --restore-detached --pidfile restore.pid
    # Restored stopped, as it was dumped: let it run.
    kill -CONT "$(cat "$images/$role/restore.pid")"
done
