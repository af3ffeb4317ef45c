#!/usr/bin/env bash
# scripts/api-conformance.sh - prove that both services answer what their
# OpenAPI documents say: schemathesis (pinned in
# scripts/api-conformance/requirements.txt, installed into a private venv)
# fuzzes the running ingest-gateway and query-api and checks every answer's
# status code, content type and body against the spec, and that none is a 5xx.
#
# The pipeline runs from `make build`'s binaries under bin/eye-dev on a
# throwaway home: its own Postgres cluster and embedded broker, fresh each
# run, removed afterwards (the fuzzer erases sessions, revokes keys and
# registers schemas: never point it at data you keep). EYE_POSTGRES_DSN and
# EYE_KAFKA_BROKERS are ignored for that reason.
#
# Runs (each a fixed budget, deterministic), against the Swagger 2 document
# (/docs/doc.json) and its OpenAPI 3 conversion (/docs/openapi.json):
#   gateway    with the write key, both documents
#   query-api  with the read key (OpenAPI 3), then the admin key (Swagger 2)
# Exit status: 0 when every check passed in every run, non-zero otherwise.
#
# Environment (all optional):
#   CONFORMANCE_EXAMPLES  test cases per operation and phase   (default 100)
#   CONFORMANCE_SEED      random generation from this seed instead of the
#                         deterministic one (to explore beyond what CI runs)
#   CONFORMANCE_PHASES    schemathesis phases       (default examples,coverage,fuzzing,stateful)
#   CONFORMANCE_VENV      where the venv lives  (default ~/.cache/eye-conformance/<requirements hash>)
#   CONFORMANCE_REPORT    directory for JUnit reports and the pipeline log (default: a temp dir, kept on failure)
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${CONFORMANCE_EXAMPLES:-100}
phases=${CONFORMANCE_PHASES:-examples,coverage,fuzzing,stateful}
generation=(--generation-deterministic)
[ -n "${CONFORMANCE_SEED:-}" ] && generation=(--seed "$CONFORMANCE_SEED")
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

log() { printf '== %s\n' "$*" >&2; }
start=$(date +%s)

# --- schemathesis, pinned --------------------------------------------------
req=scripts/api-conformance/requirements.txt
venv=${CONFORMANCE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/eye-conformance/$(sha256sum "$req" | cut -c1-12)}
if [ ! -x "$venv/bin/schemathesis" ]; then
  log "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
fi
st=$venv/bin/schemathesis
log "$("$st" --version)"

# --- a throwaway pipeline --------------------------------------------------
make -s build
work=$(mktemp -d /tmp/eye-conformance-XXXXXX)
chmod 755 "$work" # Postgres runs as an unprivileged user and must reach its data
report=${CONFORMANCE_REPORT:-$work/report}
mkdir -p "$report"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw_port=$(free_port) q_port=$(free_port) v_port=$(free_port) w_port=$(free_port) pg_port=$(free_port) k_port=$(free_port)
gw=http://127.0.0.1:$gw_port q=http://127.0.0.1:$q_port

dev_pid=
ok=false
cleanup() {
  if [ -n "$dev_pid" ]; then
    kill -TERM "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
  if $ok && [ -z "${CONFORMANCE_REPORT:-}" ]; then
    rm -rf "$work"
  else
    log "pipeline log and reports kept in $work ($report)"
  fi
}
trap cleanup EXIT

log "starting the pipeline on a throwaway home $work/home (gateway $gw, query-api $q)"
env -u EYE_POSTGRES_DSN -u EYE_KAFKA_BROKERS \
  EYE_HOME="$work/home" EYE_DEV_POSTGRES_PORT="$pg_port" EYE_DEV_KAFKA_PORT="$k_port" \
  EYE_GATEWAY_ADDR="127.0.0.1:$gw_port" EYE_QUERY_ADDR="127.0.0.1:$q_port" \
  EYE_VALIDATOR_ADDR="127.0.0.1:$v_port" EYE_WRITER_ADDR="127.0.0.1:$w_port" EYE_LOG_LEVEL=warn \
  bin/eye-dev >"$report/pipeline.log" 2>&1 &
dev_pid=$!
ready() { curl -fs -o /dev/null "$1/readyz" 2>/dev/null; }
for _ in $(seq 600); do
  ready "$gw" && ready "$q" && break
  kill -0 "$dev_pid" 2>/dev/null || { tail -50 "$report/pipeline.log" >&2; log "the pipeline exited"; exit 1; }
  sleep 0.2
done
ready "$gw" && ready "$q" || { tail -50 "$report/pipeline.log" >&2; log "the pipeline did not become ready"; exit 1; }

# shellcheck disable=SC1091
. "$work/home/keys.env"
write_key=$EYE_DEV_WRITE_KEY
read_key=$EYE_DEV_READ_KEY
admin_key=$EYE_DEV_ADMIN_KEY

# --- data to read -------------------------------------------------------------
# A few events and error records of every shape, so that the query-api's
# answers carry real records (null and non-null fields alike), not only
# empty lists.
post() { # path body [content-type]
  curl -s -o /dev/null -w '%{http_code}' -X POST "$gw$1" -H "Authorization: Bearer $write_key" \
    -H "Content-Type: ${3:-application/json}" --data-binary "$2"
}
sid=$(python3 -c 'import uuid; print(uuid.uuid4())')
now=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
pageview='"category":"page interaction","name":"pageview","data":{"host":"www.example.com","path":"/"}'
log "seeding events and error records (session $sid)"
seeded=$(
  post /sessions/ "{\"id\":\"$sid\"}"
  post /events/ "{\"session_id\":\"$sid\",$pageview,\"timestamp\":\"$now\",\"sent_at\":\"$now\"}"
  post /events/ "[{\"session\":{\"id\":\"$sid\"},$pageview,\"timestamp\":\"2021-01-01 09:15:27.243860\"},
    {\"session_id\":\"$sid\",\"category\":\"page interaction\",\"name\":\"cta click\",\"data\":{\"host\":\"h\",\"path\":\"/\",\"element\":\"chat bubble\"},\"timestamp\":\"$now\"},
    {\"session_id\":\"$sid\",\"category\":\"page interaction\",\"name\":\"pageview\",\"data\":{},\"timestamp\":\"$now\"},
    {\"session_id\":\"$sid\",\"category\":\"page interaction\",\"name\":\"pageview\",\"data\":{\"host\":1},\"timestamp\":\"$now\"},
    {\"session_id\":\"$sid\",$pageview,\"timestamp\":\"$now\",\"schema_version\":99}]"
  post /events/ "{\"session_id\":\"not-a-uuid\",$pageview,\"timestamp\":\"$now\"}"
  post /events/ 'not json' text/plain
)
log "seeding answered $seeded"
for _ in $(seq 300); do
  events=$(curl -fs "$q/events/?session=$sid" -H "Authorization: Bearer $read_key" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))' 2>/dev/null || echo 0)
  errors=$(curl -fs "$q/errors/" -H "Authorization: Bearer $read_key" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))' 2>/dev/null || echo 0)
  [ "$events" -ge 3 ] && [ "$errors" -ge 5 ] && break
  sleep 0.2
done
log "stored: $events events, $errors error records"

# --- the runs ----------------------------------------------------------------
failed=()
run() { # name base-url spec key
  local name=$1 base=$2 spec=$3 key=$4
  log "schemathesis: $name ($base$spec, $examples examples per operation and phase, ${generation[*]}, phases $phases)"
  # From the work dir: schemathesis leaves a .schemathesis dir behind.
  if ! (cd "$work" && "$st" run "$base$spec" --url "$base" \
    -H "Authorization: Bearer $key" \
    --checks "$checks" --phases "$phases" \
    --max-examples "$examples" "${generation[@]}" \
    --workers 1 --request-timeout 30 \
    --suppress-health-check all --no-color \
    --report junit --report-junit-path "$report/$name.xml"); then
    failed+=("$name")
  fi
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    wait "$dev_pid" && status=0 || status=$?
    dev_pid=
    tail -30 "$report/pipeline.log" >&2
    log "the pipeline stopped during $name (eye-dev exit status $status)"
    exit 1
  fi
}
# Both documents are checked: the Swagger 2 one swag generates (doc.json)
# and its OpenAPI 3 conversion (openapi.json). The admin run goes last: it
# edits, erases and revokes.
run gateway-swagger2 "$gw" /docs/doc.json "$write_key"
run gateway-openapi3 "$gw" /docs/openapi.json "$write_key"
run query-api-read-openapi3 "$q" /docs/openapi.json "$read_key"
run query-api-admin-swagger2 "$q" /docs/doc.json "$admin_key"

elapsed=$(($(date +%s) - start))
if ((${#failed[@]})); then
  log "API conformance FAILED in ${elapsed}s: ${failed[*]}"
  exit 1
fi
ok=true
log "API conformance passed in ${elapsed}s"
