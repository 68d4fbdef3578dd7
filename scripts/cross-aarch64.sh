#!/usr/bin/env bash
# Builds for aarch64 and runs the SIMD-kernel and ledger-hash tests under qemu-user, so the
# NEON kernels (crates/quiver-vector/src/distance/neon.rs) and the portable BLAKE3 path are
# exercised on a machine without an ARM CPU. Not part of .ci/run (qemu makes it slow, ~5 min).
#
#   scripts/cross-aarch64.sh            # installs the cross toolchain on Debian/Ubuntu if missing
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
fi
rustup target add aarch64-unknown-linux-gnu

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/aarch64}"

# Kernel tests print the paths they ran: expect "[Scalar, Neon]; dispatched: Neon".
cargo test --target aarch64-unknown-linux-gnu -p quiver-vector --test it -- kernels flat --nocapture
cargo test --target aarch64-unknown-linux-gnu -p quiver-vector --lib flat
cargo test --target aarch64-unknown-linux-gnu -p quiver-ledger --lib
