#!/usr/bin/env bash
# Distributed mode on one host, for trying it (docs/distributed.md explains each step).
#
#   scripts/distributed-local.sh              # PostgreSQL + Prefect server + pool + 2 workers + receiver
#   scripts/distributed-local.sh --sandbox    # ... plus the local GitHub sandbox with demo runs
#
# Every component is its own process, talking to the others only through PostgreSQL and
# the Prefect API, exactly as on several hosts. Ctrl-C stops them all (PostgreSQL too).
#
# Settings (environment):
#   WORKERS=2  WORKER_LIMIT=2  POOL=contexten  PREFECT_PORT=4200  WEBHOOK_PORT=8787
#   PG_PORT=5433  SANDBOX_PORT=8900  STATE_DIR=${TMPDIR:-/tmp}/distributed-contexten (data, logs)
#   WORKER_HEALTH_PORT=8080: worker i answers GET /health on WORKER_HEALTH_PORT + i - 1
#   PREFECT_DATABASE_URL + DATABASE_URL: use an existing PostgreSQL (databases must exist)
#     instead of starting one, e.g.
#     PREFECT_DATABASE_URL=postgresql+asyncpg://u:p@db:5432/prefect
#     DATABASE_URL=postgresql+psycopg://u:p@db:5432/contexten
#   GITHUB_TOKEN, GITHUB_WEBHOOK_SECRET, ... as for any contexten process.
set -euo pipefail
cd "$(dirname "$0")/.."

SANDBOX=0
for arg in "$@"; do
  case "$arg" in
    --sandbox) SANDBOX=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "distributed-local.sh: unknown argument '$arg' (expected --sandbox or --help)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
WORKERS="${WORKERS:-2}"
WORKER_LIMIT="${WORKER_LIMIT:-2}"
POOL="${POOL:-contexten}"
PREFECT_PORT="${PREFECT_PORT:-4200}"
WEBHOOK_PORT="${WEBHOOK_PORT:-8787}"
PG_PORT="${PG_PORT:-5433}"
SANDBOX_PORT="${SANDBOX_PORT:-8900}"
WORKER_HEALTH_PORT="${WORKER_HEALTH_PORT:-8080}"
# Not "contexten-…" under /tmp: resource cleanup removes such entries of the temp dir.
STATE_DIR="${STATE_DIR:-${TMPDIR:-/tmp}/distributed-contexten}"
LOGS="$STATE_DIR/logs"
mkdir -p "$LOGS"

for n in "$WORKERS" "$WORKER_LIMIT" "$PREFECT_PORT" "$WEBHOOK_PORT" "$PG_PORT" "$SANDBOX_PORT" "$WORKER_HEALTH_PORT"; do
  case "$n" in ''|*[!0-9]*) echo "distributed-local.sh: '$n' is not a number (WORKERS, *_PORT, WORKER_LIMIT)" >&2; exit 2 ;; esac
done

PIDS=()          # workers, receiver, sandbox: stopped first
SERVER_PID=""    # the Prefect server: stopped after them (workers deregister through it)
LAST_PID=""
PG_CTL=""
PG_DATA="$STATE_DIR/postgres"
AS_PG=()

say() { printf '\n== %s\n' "$*"; }

stop_pids() {  # stop_pids PID...: SIGTERM, up to 30 s to exit, then SIGKILL
  [ "$#" -gt 0 ] || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 1 60); do
    local alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  kill -KILL "$@" 2>/dev/null || true
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

stop_all() {
  trap - INT TERM EXIT
  say "stopping"
  stop_pids "${PIDS[@]}"
  if [ -n "$SERVER_PID" ]; then stop_pids "$SERVER_PID"; fi
  if [ -n "$PG_CTL" ]; then
    "${AS_PG[@]}" "$PG_CTL" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
  echo "stopped; logs and data in $STATE_DIR"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

wait_http() {  # wait_http URL NAME LOG
  for _ in $(seq 1 240); do
    if "$PYTHON" -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "$2 did not answer at $1; its log: $3" >&2
  tail -n 20 "$3" >&2 || true
  exit 1
}

with_sigint() {  # exec COMMAND with SIGINT at its default disposition
  # Background commands of a script start with SIGINT ignored, and a Prefect worker stops
  # on SIGTERM by sending itself SIGINT: it would never stop.
  exec "$PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

start() {  # start NAME COMMAND...: a background component with its log
  local name="$1"; shift
  with_sigint "$@" >"$LOGS/$name.log" 2>&1 &
  LAST_PID="$!"
  echo "$name: pid $LAST_PID (log $LOGS/$name.log)"
}

# ---------------------------------------------------------------- 1. PostgreSQL
if [ -n "${PREFECT_DATABASE_URL:-}" ] && [ -n "${DATABASE_URL:-}" ]; then
  say "using the existing PostgreSQL from PREFECT_DATABASE_URL and DATABASE_URL"
else
  say "PostgreSQL on 127.0.0.1:$PG_PORT (data in $PG_DATA)"
  BIN=""
  if command -v pg_ctl >/dev/null 2>&1; then BIN="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"; fi
  if [ -z "$BIN" ]; then
    BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    echo "no PostgreSQL server found: install it (Debian: apt-get install postgresql) or set PREFECT_DATABASE_URL and DATABASE_URL" >&2
    exit 1
  fi
  PG_CTL="$BIN/pg_ctl"
  if [ "$(id -u)" = 0 ]; then  # initdb refuses root: run the server as the postgres user
    AS_PG=(runuser -u postgres --)
    mkdir -p "$PG_DATA"
    chown postgres "$PG_DATA" && chmod 700 "$PG_DATA"
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    "${AS_PG[@]}" "$BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$LOGS/initdb.log"
  fi
  "${AS_PG[@]}" "$PG_CTL" -D "$PG_DATA" -l "$PG_DATA/server.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DATA -c max_connections=200" start >/dev/null
  for db in prefect contexten; do
    "${AS_PG[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
      "${AS_PG[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db"
  done
  PREFECT_DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:$PG_PORT/prefect"
  DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/contexten"
fi

# What every contexten process gets (a real deployment puts these in its env file).
export DATABASE_URL
export PREFECT_API_URL="http://127.0.0.1:$PREFECT_PORT/api"
export PREFECT_HOME="$STATE_DIR/prefect-home"
export CONTEXTEN_HOME="$STATE_DIR/contexten-home"
export PREFECT_WORK_POOL="$POOL"
export PREFECT_WORKER_QUERY_SECONDS="${PREFECT_WORKER_QUERY_SECONDS:-1}"
export PREFECT_WORKER_PREFETCH_SECONDS="${PREFECT_WORKER_PREFETCH_SECONDS:-2}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# Flow runs send heartbeats; the automation `initialize` creates crashes a run without one
# for 2 minutes (its worker died), and its delivery then starts a new run.
export PREFECT_FLOWS_HEARTBEAT_FREQUENCY="${PREFECT_FLOWS_HEARTBEAT_FREQUENCY:-30}"
if [ "$SANDBOX" = 1 ]; then
  # The sandbox's GitHub on SANDBOX_PORT, with the credentials it accepts (not secrets).
  eval "$("$PYTHON" - "$SANDBOX_PORT" <<'EOF'
import shlex, sys
from contexten.sandbox.state import SANDBOX_GITHUB_TOKEN, SANDBOX_GITHUB_WEBHOOK_SECRET
values = {
    "GITHUB_API_URL": f"http://127.0.0.1:{sys.argv[1]}",
    "GITHUB_TOKEN": SANDBOX_GITHUB_TOKEN,
    "GITHUB_WEBHOOK_SECRET": SANDBOX_GITHUB_WEBHOOK_SECRET,
}
for name, value in values.items():
    print(f"export {name}={shlex.quote(value)}")
EOF
)"
fi

# ---------------------------------------------------------------- 2. Prefect server
say "Prefect server on PostgreSQL: schema upgrade (once per Prefect version), then the API"
PREFECT_SERVER_DATABASE_CONNECTION_URL="$PREFECT_DATABASE_URL" \
  "$PYTHON" -m prefect server database upgrade -y >"$LOGS/prefect-upgrade.log" 2>&1
PREFECT_SERVER_DATABASE_CONNECTION_URL="$PREFECT_DATABASE_URL" \
PREFECT_SERVER_DATABASE_MIGRATE_ON_START=false \
  start prefect-server env -u PREFECT_API_URL "$PYTHON" -m prefect server start --host 127.0.0.1 --port "$PREFECT_PORT"
SERVER_PID="$LAST_PID"
wait_http "$PREFECT_API_URL/health" "the Prefect server" "$LOGS/prefect-server.log"

# ---------------------------------------------------------------- 3. pool and deployments
say "contexten initialize --work-pool $POOL (store migrated, pool, limit, secret blocks, 13 deployments)"
"$PYTHON" -m contexten.cli initialize --work-pool "$POOL"

# ---------------------------------------------------------------- 4. workers
say "$WORKERS workers (prefect worker start --pool $POOL --type process --limit $WORKER_LIMIT --with-healthcheck)"
for i in $(seq 1 "$WORKERS"); do
  # Each its own health port: on one host they would all want the default :8080.
  PREFECT_WORKER_WEBSERVER_PORT=$((WORKER_HEALTH_PORT + i - 1)) \
    start "worker-$i" "$PYTHON" -m prefect worker start --pool "$POOL" --type process \
    --limit "$WORKER_LIMIT" --name "worker-$i" --with-healthcheck
  echo "worker-$i: health on http://127.0.0.1:$((WORKER_HEALTH_PORT + i - 1))/health"
  PIDS+=("$LAST_PID")
done

# ---------------------------------------------------------------- 5. webhook receiver
say "webhook receiver with its dispatcher on 127.0.0.1:$WEBHOOK_PORT"
RECEIVER_ARGS=(--host 127.0.0.1 --port "$WEBHOOK_PORT")
if [ -z "${GITHUB_WEBHOOK_SECRET:-}" ]; then
  echo "GITHUB_WEBHOOK_SECRET is not set: the receiver accepts unsigned deliveries (loopback only)"
  RECEIVER_ARGS+=(--insecure)
fi
start receiver "$PYTHON" -m contexten.cli webhook serve "${RECEIVER_ARGS[@]}"
PIDS+=("$LAST_PID")
wait_http "http://127.0.0.1:$WEBHOOK_PORT/readyz" "the receiver" "$LOGS/receiver.log"

if [ "$SANDBOX" = 1 ]; then
  say "GitHub sandbox on 127.0.0.1:$SANDBOX_PORT: demo runs, their webhooks to the receiver"
  start sandbox "$PYTHON" -m contexten.cli sandbox --port-base "$SANDBOX_PORT" --service github \
    --seed-demo --webhook-url "http://127.0.0.1:$WEBHOOK_PORT/webhook"
  PIDS+=("$LAST_PID")
fi

say "running"
cat <<EOF
Prefect UI and API : http://127.0.0.1:$PREFECT_PORT  (flow runs, workers of pool '$POOL')
webhook receiver   : http://127.0.0.1:$WEBHOOK_PORT/webhook  (/healthz, /readyz)
logs               : $LOGS
status             : PREFECT_API_URL=$PREFECT_API_URL DATABASE_URL=$DATABASE_URL $PYTHON -m contexten.cli status
Ctrl-C stops everything.
EOF
wait -n "${PIDS[@]}" "$SERVER_PID" || true
echo "a component exited; see $LOGS" >&2
exit 1
