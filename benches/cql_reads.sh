#!/usr/bin/env bash
# Point reads through CQL against a real node (`tessera --smp 1`), driven by
# `loadgen`: the node on one core, the load generator on the other.
#
#   benches/cql_reads.sh cache        # A: reads of a data set larger than the chunk cache
#   benches/cql_reads.sh compaction   # B: fixed-rate reads behind a major compaction
#
# A (`cache`), step by step:
#  1. Start a node with a chunk cache of CACHE_SMALL_MIB and MEMTABLE_MIB of memtables.
#  2. Load ROWS keys with VALUE_BYTES random (incompressible) values, flush, run a major
#     compaction (one SSTable), print Data.db size, SSTable count and the cache size.
#  3. Closed-loop SELECTs of uniform random keys (CONCURRENCY in flight) for DURATION s
#     after WARMUP s; loadgen prints latency, ops/s and the cache hit ratio.
#  4. Restart the node on the same data and repeat 3: with the IO scheduler bypassed
#     (`--io-scheduler false`), then with CACHE_BIG_MIB of cache (larger than the data).
#
# B (`compaction`), step by step:
#  1. Start a node, load ROWS keys with VALUE_BYTES random values into a table whose
#     background compaction is disabled (the flushes' SSTables stay as they are), flush,
#     stop the node, and keep a snapshot of the data directory (hard links: SSTables are
#     never modified in place) and a copy of the commitlog directory.
#  2. For each scheduler mode in SCHEDULERS (true = IO scheduler on, false = bypassed):
#     a. restore the snapshot, start the node, SELECTs at RATE per second (open loop,
#        latency from the scheduled send time) for IDLE_SECS after WARMUP s: idle;
#     b. start the same reads (warm-up DURING_WARMUP s) and, a second after their
#        measured window began, a major compaction through the REST API; the window ends
#        when the call answers: reads during compaction; the compaction's speed is the bytes it read
#        (`tessera_storage_total{what="compacted_bytes_in"}`) over the call's wall time;
#     c. restore the snapshot again, restart the node, and time the same major
#        compaction with no reads: compaction alone.
#  3. Print one summary line per mode: p50/p99/p99.9 idle and during, p99 ratio,
#     compaction MB/s alone and during, and their ratio.
#  With TESSERAS="bin1 bin2 ..." (default: TESSERA alone), step 2 runs for each binary in
#  turn on the same snapshot (loaded by the first), so builds compare in one run.
#
# Everything goes under DIR, deleted at the end unless KEEP=1. Ports: a free block
# starting at the ones below (override if taken). Needs the release `tessera` binary and
# the `loadgen` bench binary of the same target dir (see benches/README.md).
set -euo pipefail

MODE=${1:?usage: cql_reads.sh cache|compaction}
TARGET=${CARGO_TARGET_DIR:-target}
TESSERA=${TESSERA:-$TARGET/release/tessera}
LOADGEN=${LOADGEN:-$(ls -t "$TARGET"/release/deps/loadgen-* | grep -v '\.d$' | head -1)}
DIR=${DIR:-$TARGET/cqlbench}
CQL_PORT=${CQL_PORT:-9442}
AWARE_PORT=${AWARE_PORT:-19442}
PROM_PORT=${PROM_PORT:-9581}
API_PORT=${API_PORT:-10442}
STORAGE_PORT=${STORAGE_PORT:-7442}
NODE_CORE=${NODE_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
# Everything but the node (this script, curl, loadgen) runs on the client's core: a curl
# started on the node's core at the start of a compaction took 6 ms of its CPU.
if [ -z "${CQL_READS_ON_CLIENT_CORE:-}" ]; then
  export CQL_READS_ON_CLIENT_CORE=1
  exec taskset -c "$CLIENT_CORE" "$0" "$@"
fi
VALUE_BYTES=${VALUE_BYTES:-1000}
WARMUP=${WARMUP:-10}
KEEP=${KEEP:-0}
# Extra flags for every node start, e.g. "--io-properties-file conf/io_properties.yaml".
NODE_FLAGS=${NODE_FLAGS:-}

NODE=
stop_node() {
  if [ -n "$NODE" ]; then
    kill "$NODE" 2>/dev/null || true
    wait "$NODE" 2>/dev/null || true
    NODE=
  fi
}
cleanup() {
  stop_node
  if [ "$KEEP" != 1 ]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT

log() { echo "[$(date +%H:%M:%S)] $*"; }

# start_node FLAG...: the node on NODE_CORE with the bench's ports and directories.
start_node() {
  # A stopped node's listeners can outlive it briefly (apparently io_uring releasing the
  # files of its pending accepts after the process is gone): wait up to 10 s for the ports.
  for port in $CQL_PORT $AWARE_PORT $PROM_PORT $API_PORT $STORAGE_PORT; do
    for attempt in $(seq 100); do
      if ! ss -tlnH "sport = :$port" | grep -q .; then break; fi
      if [ "$attempt" = 100 ]; then
        echo "port $port is taken; set the *_PORT variables" >&2
        ss -tlnpH "sport = :$port" >&2
        exit 1
      fi
      sleep 0.1
    done
  done
  taskset -c "$NODE_CORE" "$TESSERA" --smp 1 --pin-shards false \
    --native-transport-port "$CQL_PORT" --native-shard-aware-transport-port "$AWARE_PORT" \
    --prometheus-port "$PROM_PORT" --api-port "$API_PORT" --storage-port "$STORAGE_PORT" \
    --data-file-directories "$DIR/data" --commitlog-directory "$DIR/cl" \
    $NODE_FLAGS "$@" >>"$DIR/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 600); do
    if curl -sf "http://127.0.0.1:$PROM_PORT/metrics" >/dev/null &&
      ss -tlnH "sport = :$CQL_PORT" | grep -q .; then
      log "node $NODE up: $*"
      return
    fi
    if ! kill -0 "$NODE" 2>/dev/null; then
      echo "the node exited; see $DIR/node.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "the node did not come up in 60 s; see $DIR/node.log" >&2
  exit 1
}

api() { curl -sf -X "$1" "http://127.0.0.1:$API_PORT$2"; }

# metric NAME_WITH_LABELS: its value summed over shards (0 if absent).
metric() {
  curl -sf "http://127.0.0.1:$PROM_PORT/metrics" |
    awk -v want="$1" '
      /^#/ { next }
      { name = $1; sub(/,?shard="[^"]*"/, "", name); sub(/\{\}/, "", name); sub(/\{,/, "{", name)
        if (name == want) sum += $2 }
      END { printf "%.0f\n", sum }'
}

sstables() { api GET /column_family/live_ss_table_count/bench:kv; }
data_bytes() { find "$DIR/data" -path '*bench*' -name '*Data.db' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

loadgen() {
  taskset -c "$CLIENT_CORE" "$LOADGEN" --port "$CQL_PORT" --server-pid "$NODE" \
    --metrics "127.0.0.1:$PROM_PORT" "$@"
}

# describe: what is on disk and in the node now.
describe() {
  log "SSTables $(sstables), bench Data.db $(mib "$(data_bytes)") MiB," \
    "cache held $(mib "$(metric tessera_chunk_cache_bytes)") MiB, node RSS $(ps -o rss= -p "$NODE") KiB"
}

machine() {
  log "machine: $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(df -h --output=avail "$(dirname "$DIR")" | tail -1) free on the disk"
}

run_cache() {
  local rows=${ROWS:-73728} small=${CACHE_SMALL_MIB:-16} big=${CACHE_BIG_MIB:-1024}
  local memtable=${MEMTABLE_MIB:-16} concurrency=${CONCURRENCY:-32} duration=${DURATION:-30}
  rm -rf "$DIR" && mkdir -p "$DIR"
  machine
  start_node --chunk-cache-size-in-mb "$small" --memtable-total-space-in-mb "$memtable"
  loadgen --workload load --rows "$rows" --value-bytes "$VALUE_BYTES" --random-values --concurrency 64
  api POST /storage_service/keyspace_flush/bench >/dev/null
  describe
  # A major compaction leaves out SSTables a background compaction holds: repeat
  # until one SSTable is left.
  for _ in 1 2 3; do
    local started=$(date +%s.%N)
    api POST /storage_service/keyspace_compaction/bench >/dev/null
    log "major compaction took $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
    if [ "$(sstables)" = 1 ]; then break; fi
  done
  describe
  for variant in "$small true" "$small false" "$big true"; do
    local cache=${variant% *} scheduler=${variant#* }
    stop_node
    start_node --chunk-cache-size-in-mb "$cache" --memtable-total-space-in-mb "$memtable" \
      --io-scheduler "$scheduler"
    log "=== SELECT, chunk cache $cache MiB, io_scheduler=$scheduler, data $(mib "$(data_bytes)") MiB"
    loadgen --workload select --no-schema --no-populate --rows "$rows" \
      --concurrency "$concurrency" --warmup "$WARMUP" --duration "$duration"
    describe
  done
}

# restore: the data and commitlog as they were right after loading.
restore() {
  rm -rf "$DIR/data" "$DIR/cl"
  cp -al "$DIR/snap-data" "$DIR/data"
  cp -a "$DIR/snap-cl" "$DIR/cl"
}

# compact_timed: runs a major compaction of bench, prints "seconds bytes_in".
compact_timed() {
  local before started
  before=$(metric 'tessera_storage_total{what="compacted_bytes_in"}')
  started=$(date +%s.%N)
  api POST /storage_service/keyspace_compaction/bench >/dev/null
  local ended=$(date +%s.%N)
  sleep 0.2 # the counters are refreshed every 50 ms
  local after=$(metric 'tessera_storage_total{what="compacted_bytes_in"}')
  # %.0f, not %d: mawk's %d stops at 2^31.
  awk -v s="$started" -v e="$ended" -v b="$((after - before))" 'BEGIN { printf "%.2f %.0f\n", e - s, b }'
}

run_compaction() {
  local rows=${ROWS:-3145728} memtable=${MEMTABLE_MIB:-1024} rate=${RATE:-1000}
  local idle=${IDLE_SECS:-30} max_in_flight=${MAX_IN_FLIGHT:-256} during_warmup=${DURING_WARMUP:-3}
  local schedulers=${SCHEDULERS:-"true false"}
  local reads=(--workload select --no-schema --no-populate --rows "$rows" --rate "$rate"
    --concurrency "$max_in_flight")
  rm -rf "$DIR" && mkdir -p "$DIR"
  machine
  start_node --memtable-total-space-in-mb "$memtable"
  loadgen --workload load --rows "$rows" --value-bytes "$VALUE_BYTES" --random-values --concurrency 64 \
    --table-options "compaction = {'class': 'SizeTieredCompactionStrategy', 'enabled': 'false'}"
  api POST /storage_service/keyspace_flush/bench >/dev/null
  describe
  stop_node
  mv "$DIR/data" "$DIR/snap-data" && mv "$DIR/cl" "$DIR/snap-cl"
  log "snapshot: $(du -sh "$DIR/snap-data" | cut -f1) data, $(du -sh "$DIR/snap-cl" | cut -f1) commitlog"
  local summary=()
  for TESSERA in ${TESSERAS:-$TESSERA}; do
  for scheduler in $schedulers; do
    restore
    start_node --memtable-total-space-in-mb "$memtable" --io-scheduler "$scheduler"
    describe
    log "=== io_scheduler=$scheduler: reads at $rate/s, idle"
    local idle_out during_out
    loadgen "${reads[@]}" --warmup "$WARMUP" --duration "$idle" | tee "$DIR/idle.out"
    idle_out=$(cat "$DIR/idle.out")
    log "=== io_scheduler=$scheduler: reads at $rate/s during a major compaction"
    local bytes_before
    bytes_before=$(metric 'tessera_storage_total{what="compacted_bytes_in"}')
    # The reads start first, warm up for DURING_WARMUP s (a fresh client's first
    # second — connecting, preparing, the driver's first requests — is not charged to
    # the compaction), and the compaction starts a second after the measured reads
    # began (the client connects in well under a second): all of it is measured.
    (sleep "$((during_warmup + 1))"; date +%s.%N >"$DIR/started"
      api POST /storage_service/keyspace_compaction/bench >/dev/null; date +%s.%N >"$DIR/ended") &
    local compaction=$!
    loadgen "${reads[@]}" --warmup "$during_warmup" --duration 86400 --while-pid "$compaction" --timeline | tee "$DIR/during.out"
    during_out=$(cat "$DIR/during.out")
    wait "$compaction"
    sleep 0.2 # the counters are refreshed every 50 ms
    local during_s during_b
    during_s=$(awk -v s="$(cat "$DIR/started")" -v e="$(cat "$DIR/ended")" 'BEGIN { printf "%.2f", e - s }')
    during_b=$(($(metric 'tessera_storage_total{what="compacted_bytes_in"}') - bytes_before))
    describe
    stop_node
    restore
    start_node --memtable-total-space-in-mb "$memtable" --io-scheduler "$scheduler"
    log "=== io_scheduler=$scheduler: major compaction alone"
    local alone_s alone_b
    read -r alone_s alone_b < <(compact_timed)
    describe
    stop_node
    local p_idle p_during
    p_idle=$(grep '^latency_us' <<<"$idle_out")
    p_during=$(grep '^latency_us' <<<"$during_out")
    summary+=("$(awk -v sched="$scheduler" -v pi="$p_idle" -v pd="$p_during" \
      -v as="$alone_s" -v ab="$alone_b" -v ds="$during_s" -v db="$during_b" -v bin="$(basename "$TESSERA")" '
      function q(line, key,   n, i, f, kv) { n = split(line, f, " ")
        for (i = 2; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == key) return kv[2] } }
      BEGIN {
        ma = ab / as / 1e6; md = db / ds / 1e6
        printf "%s io_scheduler=%s idle p50/p99/p99.9 us %s/%s/%s | during %s/%s/%s | p99 during/idle %.2f | compaction alone %.1f MB/s (%.0f s) during %.1f MB/s (%.0f s) ratio %.2f\n",
          bin, sched, q(pi, "p50"), q(pi, "p99"), q(pi, "p99.9"), q(pd, "p50"), q(pd, "p99"), q(pd, "p99.9"),
          q(pd, "p99") / q(pi, "p99"), ma, as, md, ds, md / ma }')")
  done
  done
  log "=== summary (rate $rate/s, $rows rows of $VALUE_BYTES B, $(mib "$(find "$DIR/snap-data" -path '*bench*' -name '*Data.db' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')") MiB of Data.db)"
  printf '%s\n' "${summary[@]}"
  machine
}

case "$MODE" in
  cache) run_cache ;;
  compaction) run_compaction ;;
  *) echo "usage: cql_reads.sh cache|compaction" >&2; exit 2 ;;
esac
