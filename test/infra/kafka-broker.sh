#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, single node) from Maven Central jars, for machines without Docker.
# Recipe: ../shared/research/kafka-without-docker.md. Usage:
#   kafka-broker.sh fetch            resolve the jars once into $KAFKA_CACHE_DIR (cached across runs)
#   kafka-broker.sh start            format and start; prints the bootstrap address on stdout
#   kafka-broker.sh stop             SIGTERM (then SIGKILL after 30 s); removes the work dir unless KAFKA_KEEP_WORK_DIR=1
#   kafka-broker.sh status | logs [n]
# Ports and work dir come from KAFKA_PORT / KAFKA_CONTROLLER_PORT / KAFKA_WORK_DIR so several brokers can run at once.
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/grantline/kafka}"
KAFKA_WORK_DIR="${KAFKA_WORK_DIR:-${TMPDIR:-/tmp}/grantline-kafka-$KAFKA_PORT}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
KAFKA_CLUSTER_ID="${KAFKA_CLUSTER_ID:-4L6g3nShT-eMCtK--X86sw}"
LIB_DIR="$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/lib"
PID_FILE="$KAFKA_WORK_DIR/kafka.pid"
OUT_LOG="$KAFKA_WORK_DIR/logs/server.out"

log() { echo "kafka-broker: $*" >&2; }

fetch() {
  [[ -f "$LIB_DIR/.complete" ]] && return 0
  command -v mvn >/dev/null || { log "Maven (mvn) is required to fetch Kafka jars"; exit 1; }
  command -v java >/dev/null || { log "Java 17 is required to run Kafka"; exit 1; }
  local build="$KAFKA_CACHE_DIR/kafka-$KAFKA_VERSION/build"
  mkdir -p "$build" "$LIB_DIR"
  cat >"$build/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>grantline.test</groupId><artifactId>kafka-broker-deps</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>ch.qos.logback</groupId><artifactId>logback-classic</artifactId></exclusion>
        <exclusion><groupId>ch.qos.logback</groupId><artifactId>logback-core</artifactId></exclusion>
        <exclusion><groupId>org.slf4j</groupId><artifactId>slf4j-log4j12</artifactId></exclusion>
        <exclusion><groupId>log4j</groupId><artifactId>log4j</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $LIB_DIR"
  mvn -B -q -f "$build/pom.xml" -Dmaven.repo.local="$KAFKA_CACHE_DIR/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies \
    -DincludeScope=runtime -Dmdep.prependGroupId=true -DoutputDirectory="$LIB_DIR" >&2
  ls "$LIB_DIR"/*kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
  touch "$LIB_DIR/.complete"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() {
  mkdir -p "$KAFKA_WORK_DIR/logs" "$KAFKA_WORK_DIR/data"
  cat >"$KAFKA_WORK_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_WORK_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.cleaner.dedupe.buffer.size=16777216
num.network.threads=2
num.io.threads=4
PROPS
  cat >"$KAFKA_WORK_DIR/log4j.properties" <<'L4J'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
L4J
}

# KAFKA_JIT_OPTS: the client compiler only by default, which starts a broker for tests sooner; the
# benchmarks set it empty, for the JVM's full tiered compilation, as a production broker runs.
java_opts() {
  # shellcheck disable=SC2206 # word-split on purpose: JVM flags
  JAVA_OPTS=($1 -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent ${KAFKA_JIT_OPTS--XX:TieredStopAtLevel=1}
    -Djava.awt.headless=true "-Dkafka.logs.dir=$KAFKA_WORK_DIR/logs"
    "-Dlog4j.configuration=file:$KAFKA_WORK_DIR/log4j.properties")
}

running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid; pid=$(cat "$PID_FILE")
  kill -0 "$pid" 2>/dev/null && grep -q 'kafka.Kafka' "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

start() {
  fetch
  if port_open "$KAFKA_PORT"; then log "port $KAFKA_PORT is busy"; exit 1; fi
  # A restart keeps the data (KAFKA_KEEP_DATA=1), so a broker outage can be simulated without losing the log.
  if [[ "${KAFKA_KEEP_DATA:-0}" != 1 ]]; then rm -rf "$KAFKA_WORK_DIR"; fi
  write_config
  java_opts "-Xmx256m"
  java "${JAVA_OPTS[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool format \
    --cluster-id="$KAFKA_CLUSTER_ID" -c "$KAFKA_WORK_DIR/server.properties" --ignore-formatted \
    >"$KAFKA_WORK_DIR/logs/format.out" 2>&1 || { cat "$KAFKA_WORK_DIR/logs/format.out" >&2; exit 1; }
  java_opts "${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  nohup java "${JAVA_OPTS[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$KAFKA_WORK_DIR/server.properties" \
    >>"$OUT_LOG" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local t0=$SECONDS
  until port_open "$KAFKA_PORT"; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null || (( SECONDS - t0 > KAFKA_START_TIMEOUT )); then
      log "broker did not start; last log lines:"; tail -n 40 "$OUT_LOG" >&2; exit 1
    fi
    sleep 0.3
  done
  echo "127.0.0.1:$KAFKA_PORT"
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
  fi
  if [[ "${KAFKA_KEEP_WORK_DIR:-0}" != 1 ]]; then rm -rf "$KAFKA_WORK_DIR"; fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) if pid=$(running_pid); then echo "running pid $pid on 127.0.0.1:$KAFKA_PORT"; else echo stopped; exit 1; fi ;;
  logs) tail -n "${2:-100}" "$OUT_LOG" ;;
  *) echo "usage: $0 fetch|start|stop|status|logs [n]" >&2; exit 2 ;;
esac
