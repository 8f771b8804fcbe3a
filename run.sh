#!/usr/bin/env bash
# warmserve: set up, serve, test and benchmark.
#
#   ./run.sh                 set up .venv (first use), start the backend, wait until it answers,
#                            start the dashboard and print its URL; Ctrl-C stops both
#   ./run.sh test [ARGS]     same set-up (plus Chromium for the browser tests), then the whole test suite
#   ./run.sh backend [ARGS]  only the backend   (python -m model_backend serve ARGS)
#   ./run.sh dashboard [ARGS] only the dashboard (python -m dashboard serve ARGS)
#   ./run.sh classify IMAGE...   classify with a running backend (top-5 + round-trip time)
#   ./run.sh monolith IMAGE      one request the old way (fresh process), JSON timings
#   ./run.sh bench [ARGS]    the benchmark (python -m tools.bench ARGS; writes results/local/, --update-results: results/)
#   ./run.sh faults [ARGS]   the load-and-fault run (python -m tools.fault_run ARGS)
#
# Options for the default command: --host H, --port P (dashboard), --debug (Flask dev server),
# --model NAME|FILE.keras, --weights FILE, --labels FILE (backend), --workers N (N workers behind a broker),
# --keys-dir KEYS (CURVE on every ZeroMQ hop; `python -m model_backend keys init KEYS`), --insecure.
# Every setting can also come from WARMSERVE_* environment variables (see README.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
STAMP="$VENV/.warmserve-install-stamp"

PIDS=()

say() { printf '[run.sh] %s\n' "$*" >&2; }

ensure_venv() {
    if [[ ! -x "$PY" ]]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local want
    want="$( { cat pyproject.toml; "$PY" -V 2>&1; } | sha256sum | cut -c1-16)"
    if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$want" ]]; then
        say "installing the project and its dependencies into .venv (first run takes a few minutes)"
        local log="$VENV/install.log"
        if ! { "$PY" -m pip install --upgrade pip && "$PY" -m pip install -e '.[test]'; } >"$log" 2>&1; then
            tail -40 "$log" >&2
            say "installation failed; the whole log is in $log"
            exit 1
        fi
        echo "$want" > "$STAMP"
    fi
}

ensure_browser() {
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
        return
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's chromium and chromium-driver for the browser tests"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null
    else
        say "WARNING: chromium/chromedriver missing and cannot be installed here (needs root + apt-get);"
        say "         the browser tests will fail. Install them: apt-get install -y chromium chromium-driver"
    fi
}

ensure_redis() {
    # the Celery job and shared monolith cap tests start their own throwaway redis-server (tests/support/redis_server.py)
    if command -v redis-server >/dev/null 2>&1; then
        return
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's redis-server for the background-job tests"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
    else
        say "WARNING: redis-server missing and cannot be installed here (needs root + apt-get);"
        say "         the Redis tests will fail. Install it: apt-get install -y redis-server"
    fi
}

ensure_postgres() {
    # the history store tests start their own throwaway PostgreSQL cluster (tests/support/postgres.py)
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        return
    fi
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian's postgresql for the history store tests"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    else
        say "WARNING: PostgreSQL missing and cannot be installed here (needs root + apt-get);"
        say "         the PostgreSQL history tests will fail. Install it: apt-get install -y postgresql"
    fi
}

serve_all() {
    local host="" port="" debug="" workers="1"
    local backend_args=() dashboard_args=() model_env=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --host) host="$2"; shift 2 ;;
            --port) port="$2"; shift 2 ;;
            --debug) debug="--debug"; shift ;;
            --workers) workers="$2"; shift 2 ;;
            # CURVE for backend, broker, workers, ping and dashboard alike: through their environment variables
            --keys-dir) export WARMSERVE_KEYS_DIR="$2" WARMSERVE_DASH_KEYS_DIR="$2"; shift 2 ;;
            --insecure) export WARMSERVE_INSECURE=1 WARMSERVE_DASH_INSECURE=1; shift ;;
            --model|--weights|--labels|--preprocess)
                # the dashboard's monolith runs the same model: WARMSERVE_MODEL etc. reach it through the environment
                backend_args+=("$1" "$2"); model_env+=("WARMSERVE_$(tr a-z A-Z <<<"${1#--}")=$2"); shift 2 ;;
            --max-batch|--max-wait-ms) backend_args+=("$1" "$2"); shift 2 ;;
            -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
            *) say "unknown option: $1 (see ./run.sh --help)"; exit 2 ;;
        esac
    done
    local address="${WARMSERVE_ADDRESS:-tcp://127.0.0.1:5576}"
    cleanup() {
        trap - INT TERM EXIT
        say "stopping"
        for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
        for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    }
    trap cleanup INT TERM EXIT

    if [[ "$workers" -gt 1 ]]; then
        local worker_address="${WARMSERVE_BROKER_BACKEND:-tcp://127.0.0.1:5577}"
        "$PY" -m model_backend broker --frontend "$address" --backend "$worker_address" & PIDS+=($!)
        local threads=$(( $(nproc) / workers )); [[ $threads -lt 1 ]] && threads=1
        for ((i = 1; i <= workers; i++)); do
            "$PY" -m model_backend serve --connect "$worker_address" --intra-op-threads "$threads" "${backend_args[@]}" & PIDS+=($!)
        done
    else
        "$PY" -m model_backend serve --bind "$address" "${backend_args[@]}" & PIDS+=($!)
    fi
    say "waiting for the backend at $address (the first start converts the model weights)"
    if ! "$PY" -m model_backend ping --address "$address" --wait 600 >/dev/null; then
        say "the backend did not become ready; see its log above"
        exit 1
    fi
    [[ -n "$host" ]] && dashboard_args+=(--host "$host")
    [[ -n "$port" ]] && dashboard_args+=(--port "$port")
    [[ -n "$debug" ]] && dashboard_args+=("$debug")
    env "${model_env[@]}" "$PY" -m dashboard serve --backend "$address" "${dashboard_args[@]}" & PIDS+=($!)
    local url_host="${host:-${WARMSERVE_DASH_HOST:-127.0.0.1}}"
    [[ "$url_host" == "0.0.0.0" ]] && url_host="$(hostname -f 2>/dev/null || hostname)"
    say "dashboard: http://${url_host}:${port:-${WARMSERVE_DASH_PORT:-8050}}/   (Ctrl-C stops everything)"
    wait -n "${PIDS[@]}" || true
}

command="${1:-serve}"
[[ $# -gt 0 ]] && shift
case "$command" in
    serve|--*)
        [[ "$command" == --* ]] && set -- "$command" "$@"
        ensure_venv
        serve_all "$@"
        ;;
    test)
        ensure_venv
        ensure_browser
        ensure_redis
        ensure_postgres
        mkdir -p test-artifacts
        exec "$PY" -m pytest "$@"
        ;;
    backend)   ensure_venv; exec "$PY" -m model_backend serve "$@" ;;
    dashboard) ensure_venv; exec "$PY" -m dashboard serve "$@" ;;
    classify)  ensure_venv; exec "$PY" -m model_backend classify "$@" ;;
    monolith)  ensure_venv; exec "$PY" -m model_backend.monolith "$@" ;;
    broker)    ensure_venv; exec "$PY" -m model_backend broker "$@" ;;
    bench)     ensure_venv; exec "$PY" -m tools.bench "$@" ;;
    faults)    ensure_venv; exec "$PY" -m tools.fault_run "$@" ;;
    -h|help)   awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0" ;;
    *) say "unknown command: $command (see ./run.sh help)"; exit 2 ;;
esac
