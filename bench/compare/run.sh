#!/usr/bin/env bash
# Runs quiver's three ingest workloads through every peer engine (and through quiver itself
# when QUIVER_BIN is set), one JSON line per run on stdout, progress on stderr.
#
#   bench/compare/run.sh                                  # peers only
#   QUIVER_BIN=target/release/quiver bench/compare/run.sh # quiver + peers, same run
#
# Tunables (env): ENGINES (default "redb fjall rocksdb sled"), DATA_ROOT (default
# bench/compare/target/data, i.e. the same filesystem as the repository), NOSYNC_EVENTS,
# SYNC_BATCH_EVENTS, SYNC_WRITE_EVENTS, PAYLOAD_BYTES (default 200), DEVICE_CEILING (default 1:
# probe the disk's durable-write ceiling before the fsync-per-write workload), CARGO_FEATURES
# (e.g. "--no-default-features --features sled" when librocksdb-dev is missing), VERIFY (default 1:
# after each peer run, reopen its store and check it holds every event; not timed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
caller="$(pwd)"
# Paths given relative to where run.sh was started from stay valid after the cd below.
if [[ -n "${QUIVER_BIN:-}" && "$QUIVER_BIN" == */* && "$QUIVER_BIN" != /* ]]; then
  QUIVER_BIN="$caller/$QUIVER_BIN"
fi
if [[ -n "${DATA_ROOT:-}" && "$DATA_ROOT" != /* ]]; then DATA_ROOT="$caller/$DATA_ROOT"; fi
cd "$here"

export ROCKSDB_LIB_DIR="${ROCKSDB_LIB_DIR:-/usr/lib/x86_64-linux-gnu}"
unset ROCKSDB_STATIC # link Debian's shared librocksdb; never build RocksDB from source (~50 min)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"

ENGINES="${ENGINES:-redb fjall rocksdb sled}"
DATA_ROOT="${DATA_ROOT:-$CARGO_TARGET_DIR/data}"
NOSYNC_EVENTS="${NOSYNC_EVENTS:-2000000}"
SYNC_BATCH_EVENTS="${SYNC_BATCH_EVENTS:-1000000}"
SYNC_WRITE_EVENTS="${SYNC_WRITE_EVENTS:-10000}"
PAYLOAD_BYTES="${PAYLOAD_BYTES:-200}"
verify=()
[[ "${VERIFY:-1}" == 1 ]] && verify=(--verify)

# shellcheck disable=SC2086
cargo build --release --locked ${CARGO_FEATURES:-} >&2
bin="$CARGO_TARGET_DIR/release/quiver-compare"
mkdir -p "$DATA_ROOT"

echo "# $(date -u +%FT%TZ) nproc=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" >&2

# mode preset writers batch events
workloads=(
  "nosync throughput 2 2000 $NOSYNC_EVENTS"
  "sync-batch balanced 2 2000 $SYNC_BATCH_EVENTS"
  "sync-write durable 8 1 $SYNC_WRITE_EVENTS"
)

for w in "${workloads[@]}"; do
  read -r mode preset writers batch events <<<"$w"
  if [[ "$mode" == sync-write && "${DEVICE_CEILING:-1}" == 1 ]]; then
    # What this disk allows: W writers that each wait for their own durable write (see
    # `quiver-compare --device-ceiling`). One JSON line with "bench":"device".
    "$bin" --device-ceiling --writers "$writers" --data "$DATA_ROOT" || echo "[device] FAILED" >&2
  fi
  if [[ -n "${QUIVER_BIN:-}" ]]; then
    qdir="$DATA_ROOT/quiver-$preset"
    rm -rf "$qdir"
    echo "[quiver] $events events, $writers writers, batch $batch, preset $preset -> $qdir" >&2
    # quiver's line has no engine field; add one so all lines have the same shape.
    if ! "$QUIVER_BIN" bench ingest --preset "$preset" --events "$events" --batch "$batch" \
      --writers "$writers" --payload-bytes "$PAYLOAD_BYTES" --data "$qdir" \
      | sed -u 's/^{"bench":"ingest","preset"/{"bench":"ingest","engine":"quiver","preset"/'; then
      echo "[quiver] FAILED (preset $preset); continuing with the peers" >&2
    fi
    rm -rf "$qdir"
  fi
  for engine in $ENGINES; do
    "$bin" --engine "$engine" --mode "$mode" --events "$events" --batch "$batch" \
      --writers "$writers" --payload-bytes "$PAYLOAD_BYTES" --data "$DATA_ROOT" "${verify[@]}" \
      || echo "[$engine] FAILED ($mode)" >&2
  done
done
echo "# done $(date -u +%FT%TZ) loadavg=$(cut -d' ' -f1-3 /proc/loadavg)" >&2
