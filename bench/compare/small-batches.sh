#!/usr/bin/env bash
# Small-batch ingest, quiver beside the peers in one run (BENCHMARKS.md § Small batches):
# one line per workload with each engine's events/s.
#
#   QUIVER_BIN=target/release/quiver bench/compare/small-batches.sh
#
# Needs the harness built (`bench/compare/run.sh` builds it). Env: QUIVER_BIN (required),
# OLD_QUIVER_BIN (optional: an older build to run first), DATA_ROOT (default
# bench/compare/target/data).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmp="$here/target/release/quiver-compare"
data="${DATA_ROOT:-$here/target/data}"
mkdir -p "$data"
: "${QUIVER_BIN:?set QUIVER_BIN to a quiver binary}"

eps() { grep -o '"events_per_sec":[0-9.]*' | cut -d: -f2; }
run_quiver() { # bin preset writers batch events
  rm -rf "$data/quiver-small"
  "$1" bench ingest --preset "$2" --writers "$3" --batch "$4" --events "$5" \
    --payload-bytes 200 --data "$data/quiver-small" 2>/dev/null | eps
}
run_peer() { # engine mode writers batch events
  "$cmp" --engine "$1" --mode "$2" --writers "$3" --batch "$4" --events "$5" \
    --payload-bytes 200 --data "$data" 2>/dev/null | eps
}

for w in "throughput nosync 1 1 100000" "balanced sync-batch 1 100 200000" \
         "balanced sync-batch 4 100 400000" "throughput nosync 8 1 200000"; do
  set -- $w
  line="$1 (peers: $2) writers=$3 batch=$4 events=$5 |"
  if [[ -n "${OLD_QUIVER_BIN:-}" ]]; then line+=" quiver-old $(run_quiver "$OLD_QUIVER_BIN" "$1" "$3" "$4" "$5")"; fi
  line+=" quiver $(run_quiver "$QUIVER_BIN" "$1" "$3" "$4" "$5")"
  for e in rocksdb fjall redb; do line+=" $e $(run_peer "$e" "$2" "$3" "$4" "$5")"; done
  echo "$line"
done
