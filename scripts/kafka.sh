#!/usr/bin/env bash
# scripts/kafka.sh - run a real single-node Apache Kafka 4.x broker (KRaft combined
# mode: broker + controller in one JVM) on this machine, for development and CI.
#
# Nothing but Maven Central is needed: the broker jars are fetched with Maven from
# scripts/kafka/pom.xml (the binary tarball's download sites are not reachable here),
# and the broker is started straight from them with `java -cp 'libs/*' kafka.Kafka`.
#
# Usage: scripts/kafka.sh <command>
#   start      fetch jars if needed, format storage if needed, start the broker in
#              the background and wait until it answers metadata and its group
#              coordinator works; prints EYE_KAFKA_BROKERS=127.0.0.1:<port> on stdout
#              (all progress goes to stderr). Idempotent: a running broker is reused.
#   stop       SIGTERM, wait up to EYE_KAFKA_STOP_TIMEOUT (30 s), then SIGKILL.
#   status     exit 0 and print the brokers line if running and ready, else exit 3.
#   fetch      only download the jars into the cache (e.g. to warm a CI cache).
#   reset      stop, then delete the data dir (topics, offsets, logs, config).
#   logs [N]   print the last N (100) lines of the broker log.
#   run-class CLASS [ARGS...]
#              run a Kafka tool main class on the broker classpath, e.g.
#              scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand \
#                  --bootstrap-server 127.0.0.1:9092 --describe
#
# Environment (all optional):
#   EYE_KAFKA_VERSION          Kafka version from Maven Central   (default 4.4.0)
#   EYE_KAFKA_HOME             jar cache; libs in <home>/<version>/libs
#                                                  (default $HOME/.cache/eye-kafka)
#   EYE_KAFKA_DATA             config, pid, logs and log.dirs  (default /tmp/eye-kafka-data)
#   EYE_KAFKA_PORT             PLAINTEXT listener on 127.0.0.1             (default 9092)
#   EYE_KAFKA_CONTROLLER_PORT  CONTROLLER listener on 127.0.0.1     (default port + 1)
#   EYE_KAFKA_START_TIMEOUT    seconds to wait for readiness                (default 120)
#   EYE_KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM                 (default 30)
#   EYE_KAFKA_HEAP_OPTS        JVM heap flags                (default -Xms256m -Xmx512m)
#
# Requires: bash, Java >= 17 (java; javac's compiler module for the readiness probe,
# which runs in single-file source mode) and Maven (mvn) with access to Maven Central.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
READY_PROBE="$SCRIPT_DIR/kafka/KafkaReady.java"

KAFKA_VERSION="${EYE_KAFKA_VERSION:-4.4.0}"
CACHE_ROOT="${EYE_KAFKA_HOME:-${HOME:-/root}/.cache/eye-kafka}"
LIBS="$CACHE_ROOT/$KAFKA_VERSION/libs"
DATA="${EYE_KAFKA_DATA:-/tmp/eye-kafka-data}"
HOST=127.0.0.1
PORT="${EYE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${EYE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
START_TIMEOUT="${EYE_KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${EYE_KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${EYE_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
BROKERS="$HOST:$PORT"

# Everything the broker writes lives under $DATA.
LOG_DIRS="$DATA/kraft-logs"          # log.dirs: topic data and the metadata log
APP_LOG_DIR="$DATA/logs"             # log4j2 output (server.log)
SERVER_LOG="$APP_LOG_DIR/server.log"
CONSOLE_LOG="$DATA/kafka.out"        # JVM stdout/stderr (crashes before log4j is up)
PID_FILE="$DATA/kafka.pid"
MARKER="$DATA/.eye-kafka"            # what the storage was formatted for

log() { printf '[kafka.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# ---------------------------------------------------------------------------
# prerequisites
# ---------------------------------------------------------------------------
require_java() {
  command -v java >/dev/null 2>&1 || die "java not found (Kafka 4.x needs Java 17+; Debian: apt-get install -y openjdk-17-jdk-headless)"
  local v major
  v="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)"
  major="${v%%.*}"
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot parse java version from: $(java -version 2>&1 | head -n1)"
  ((major >= 17)) || die "Kafka 4.x needs Java 17+, found java $v"
}

# The readiness probe runs KafkaReady.java in source-file mode: needs a full JDK.
require_jdk_compiler() {
  java --list-modules 2>/dev/null | grep -q '^jdk\.compiler@' \
    || die "java has no jdk.compiler module (a JRE?); install a JDK 17+ (Debian: openjdk-17-jdk-headless)"
}

# ---------------------------------------------------------------------------
# fetch: jars from Maven Central into $LIBS (once per version)
# ---------------------------------------------------------------------------
fetch_libs() {
  if [[ -f "$LIBS/.complete" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (Debian: apt-get install -y maven)"
  require_java
  mkdir -p "$CACHE_ROOT/$KAFKA_VERSION"

  # Serialise concurrent fetches of the same version (fd 8 holds the lock; it is
  # closed again below so that the broker JVM does not inherit it).
  if command -v flock >/dev/null 2>&1; then
    exec 8>"$CACHE_ROOT/$KAFKA_VERSION/.lock"
    flock 8
    if [[ -f "$LIBS/.complete" ]]; then
      exec 8>&-
      return 0
    fi
  fi

  log "fetching Apache Kafka $KAFKA_VERSION (kafka_2.13 + runtime deps) from Maven Central into $LIBS"
  local tmp started
  tmp="$(mktemp -d "$CACHE_ROOT/$KAFKA_VERSION/libs.tmp.XXXXXX")"
  started=$SECONDS
  # Maven's own output is kept in a file and only shown if it fails.
  if ! mvn -q -B -Dstyle.color=never -f "$POM" \
      -Dkafka.version="$KAFKA_VERSION" \
      -DincludeScope=runtime \
      -DoutputDirectory="$tmp" \
      dependency:copy-dependencies >"$tmp.mvn.log" 2>&1; then
    cat "$tmp.mvn.log" >&2
    rm -rf "$tmp" "$tmp.mvn.log"
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is it on Maven Central? is the registry reachable?)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after mvn"; }
  rm -f "$tmp.mvn.log"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  touch "$LIBS/.complete"
  exec 8>&-
  log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $((SECONDS - started)) s"
}

# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------
# Prints the broker pid if our broker is alive (pid file + process is kafka.Kafka
# with our server.properties, so a recycled pid is never mistaken for it).
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka $DATA/server.properties" || return 1
  fi
  echo "$pid"
}

port_open() { # port
  (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# java with the broker classpath and a quiet stderr log4j2 config (tools, probe).
java_tools() {
  java -Xmx256m -cp "$LIBS/*" \
    -Dlog4j2.configurationFile="file:$DATA/tools-log4j2.properties" "$@"
}

show_logs() { # reason
  log "$1"
  if [[ -s "$CONSOLE_LOG" ]]; then
    log "---- last 40 lines of $CONSOLE_LOG ----"
    tail -n 40 "$CONSOLE_LOG" >&2 || true
  fi
  if [[ -s "$SERVER_LOG" ]]; then
    log "---- last 80 lines of $SERVER_LOG ----"
    tail -n 80 "$SERVER_LOG" >&2 || true
  fi
}

# ---------------------------------------------------------------------------
# configuration files
# ---------------------------------------------------------------------------
write_configs() {
  mkdir -p "$DATA" "$LOG_DIRS" "$APP_LOG_DIR"

  cat >"$DATA/server.properties" <<EOF
# Generated by scripts/kafka.sh - single-node KRaft (combined broker+controller).
process.roles=broker,controller
node.id=1
# Static quorum of one voter: storage format needs no --standalone; works in all 4.x.
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$LOG_DIRS

# One broker: every internal topic must have replication factor 1.
num.partitions=3
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

auto.create.topics.enable=true
delete.topic.enable=true
# Consumer groups form immediately (the default 3 s delay only slows tests down).
group.initial.rebalance.delay.ms=0
EOF

  # Broker logging: log4j2 (Kafka 4.x) to a file; properties format needs no
  # extra jars (the stock config/log4j2.yaml would need jackson-dataformat-yaml).
  cat >"$DATA/log4j2.properties" <<EOF
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $SERVER_LOG
appender.file.filePattern = $SERVER_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# The same noisy/quiet levels as Kafka's stock log4j2.yaml.
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = kafka.controller
logger.controller.level = INFO
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = INFO
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = INFO
EOF

  write_tools_config
}

# Tools and the readiness probe: errors only, to stderr.
write_tools_config() {
  mkdir -p "$DATA"
  cat >"$DATA/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ERROR
rootLogger.appenderRef.err.ref = STDERR
EOF
}

# Format log.dirs once. If the data dir was formatted for another version or other
# ports it is wiped (it is scratch data), since e.g. a 4.4 metadata.version cannot
# be read by 4.0.
format_storage() {
  local want="version=$KAFKA_VERSION port=$PORT controller_port=$CONTROLLER_PORT"
  if [[ -f "$LOG_DIRS/meta.properties" ]]; then
    if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" ]]; then
      log "storage already formatted ($LOG_DIRS), keeping existing topics and offsets"
      return 0
    fi
    log "storage in $LOG_DIRS was formatted for '$(cat "$MARKER" 2>/dev/null || echo unknown)', not '$want': wiping it"
    rm -rf "$LOG_DIRS"
    mkdir -p "$LOG_DIRS"
  fi

  # kafka-storage.sh runs kafka.tools.StorageTool in every 4.x release; try the
  # Java-package name as a fallback. `random-uuid` both finds the class and makes
  # the cluster id.
  local cls cluster_id="" out
  for cls in kafka.tools.StorageTool org.apache.kafka.tools.StorageTool; do
    if cluster_id="$(java_tools "$cls" random-uuid 2>/dev/null)" && [[ -n "$cluster_id" ]]; then
      break
    fi
    cluster_id=""
  done
  [[ -n "$cluster_id" ]] || die "no StorageTool main class found in $LIBS"
  cluster_id="$(tail -n1 <<<"$cluster_id")"

  log "formatting $LOG_DIRS with $cls (cluster id $cluster_id)"
  if ! out="$(java_tools "$cls" format -t "$cluster_id" -c "$DATA/server.properties" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "storage format failed"
  fi
  echo "$want" >"$MARKER"
}

# ---------------------------------------------------------------------------
# readiness
# ---------------------------------------------------------------------------
wait_ready() { # pid
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT)) probe_out
  log "waiting up to ${START_TIMEOUT}s for the broker on $BROKERS"
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs "broker process $pid exited during startup"
      return 1
    fi
    if port_open "$PORT"; then
      if probe_out="$(java_tools "$READY_PROBE" "$BROKERS" 2>&1)"; then
        log "$probe_out"
        return 0
      fi
      log "${probe_out##*$'\n'}"
    fi
    sleep 1
  done
  show_logs "broker not ready after ${START_TIMEOUT}s"
  return 1
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------
cmd_start() {
  require_java
  require_jdk_compiler
  fetch_libs

  local pid
  if pid="$(broker_pid)"; then
    log "broker already running (pid $pid)"
    wait_ready "$pid" || die "running broker (pid $pid) is not healthy; try: $0 stop"
    echo "EYE_KAFKA_BROKERS=$BROKERS"
    return 0
  fi
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $HOST:$p is already in use by another process (set EYE_KAFKA_PORT / EYE_KAFKA_CONTROLLER_PORT)"
    fi
  done

  write_configs
  format_storage

  # Keep the previous run's logs for post-mortems, start the new ones empty.
  if [[ -f "$SERVER_LOG" ]]; then
    mv -f "$SERVER_LOG" "$SERVER_LOG.prev"
  fi
  : >"$CONSOLE_LOG"

  local started=$SECONDS
  log "starting Kafka $KAFKA_VERSION (KRaft broker+controller), log: $SERVER_LOG"
  # shellcheck disable=SC2086  # HEAP_OPTS is a list of flags
  nohup java $HEAP_OPTS \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.shutdownHookEnabled=false \
    -Dkafka.logs.dir="$APP_LOG_DIR" \
    -Dlog4j2.configurationFile="file:$DATA/log4j2.properties" \
    -cp "$LIBS/*" \
    kafka.Kafka "$DATA/server.properties" \
    >"$CONSOLE_LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"

  if ! wait_ready "$pid"; then
    cmd_stop >/dev/null 2>&1 || true
    die "Kafka $KAFKA_VERSION failed to start (data: $DATA)"
  fi
  log "Kafka $KAFKA_VERSION up in $((SECONDS - started)) s (pid $pid)"
  echo "EYE_KAFKA_BROKERS=$BROKERS"
}

cmd_stop() {
  local pid
  if ! pid="$(broker_pid)"; then
    log "broker not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if ! pid="$(broker_pid)"; then
    log "not running"
    return 3
  fi
  if port_open "$PORT" && java_tools "$READY_PROBE" "$BROKERS"; then
    log "running (pid $pid, Kafka $KAFKA_VERSION, data $DATA)"
    echo "EYE_KAFKA_BROKERS=$BROKERS"
    return 0
  fi
  log "process $pid is alive but the broker is not answering on $BROKERS"
  return 3
}

cmd_reset() {
  cmd_stop
  # Only delete a dir that is ours (or what we create inside it).
  if [[ -d "$DATA" ]]; then
    [[ "$DATA" != "/" && ( -f "$MARKER" || -f "$DATA/server.properties" ) ]] \
      || die "refusing to delete $DATA: it does not look like a scripts/kafka.sh data dir"
    rm -rf "$DATA"
    log "deleted $DATA"
  fi
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    fetch) fetch_libs; log "jars for Kafka $KAFKA_VERSION in $LIBS" ;;
    reset) cmd_reset ;;
    logs) tail -n "${1:-100}" "$SERVER_LOG" ;;
    run-class)
      [[ $# -ge 1 ]] || die "usage: $0 run-class MAIN_CLASS [ARGS...]"
      fetch_libs
      write_tools_config
      java_tools "$@"
      ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
