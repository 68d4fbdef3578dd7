#!/bin/bash
# usage: record.sh PRESET OUTDIR [batch] — runs `quiver ingest` under strace on a fresh data
# directory (OUTDIR/data) with small settings, recording every file-system call with its data.
# Needs a quiver built with small-settings.patch applied (see README.md).
set -euo pipefail
P=$1; O=$(realpath -m "$2"); B=${3:-25}
Q=$(realpath "${QUIVER_BIN:-target/release/quiver}")
WORK=$(realpath -m "${POWERLOSS_DIR:-/tmp/quiver-powerloss}")
INPUT=$(realpath "${POWERLOSS_INPUT:-$WORK/input.jsonl}")
rm -rf "$O"; mkdir -p "$O/data"
cd "$WORK"
QUIVER_TEST_MEMTABLE=16384 QUIVER_TEST_WALFILE=20000 QUIVER_TEST_CKPT=50 QUIVER_TEST_COMPACT=3 \
QUIVER_TEST_BLOCK=1024 RUST_BACKTRACE=0 \
strace -f -tt -s 10000000 -xx -e trace=openat,open,creat,write,pwrite64,pwritev,pwritev2,writev,fsync,fdatasync,sync_file_range,sync,syncfs,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,rmdir,ftruncate,truncate,fallocate,close,dup,dup2,dup3,fcntl,lseek,link,linkat,symlink,copy_file_range,sendfile,mmap,msync,clone,clone3,fork,vfork \
  -o "$O/trace.txt" "$Q" ingest --data "$O/data" --preset "$P" --batch "$B" < "$INPUT" > "$O/stdout.txt"
echo rc=$?
