//! Database configuration and the three durability presets (DESIGN.md § Durability presets).
//!
//! | preset       | WAL sync                      | gather, at most (announced writers only) | max group |
//! |--------------|-------------------------------|------------------------------------------|-----------|
//! | `throughput` | written to the OS, no fsync   | 0.5 ms                                   | 2000      |
//! | `balanced`   | one durable write per group   | 10 ms                                    | 2000      |
//! | `durable`    | durable write before each ack | none                                     | 2000      |
//!
//! A durable write is an `O_DIRECT | O_DSYNC` `pwrite` where the file system allows it
//! ([`WalConfig::direct_io`]), otherwise `pwrite` + `fdatasync`.
//!
//! In every preset a writer is acknowledged only after its group has been handed to the OS
//! with `write(2)`: nothing acknowledged ever sits only in a user-space buffer, so a process
//! crash (`kill -9`) never loses an acknowledged write.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr, time::Duration};

/// Durability preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// No fsync; the OS writes back on its own schedule. Survives process crashes.
    Throughput,
    /// One fsync per commit group; survives power loss. The default.
    #[default]
    Balanced,
    /// fsync before every acknowledgement, no gather delay. For audit logs.
    Durable,
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Throughput => "throughput",
            Preset::Balanced => "balanced",
            Preset::Durable => "durable",
        })
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "throughput" => Ok(Preset::Throughput),
            "balanced" => Ok(Preset::Balanced),
            "durable" => Ok(Preset::Durable),
            o => Err(format!(
                "unknown preset {o:?}: expected throughput, balanced or durable"
            )),
        }
    }
}

/// When the WAL calls fdatasync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Never; acknowledged once `write(2)` returned.
    None,
    /// Once per commit group, before any writer of the group is acknowledged.
    PerGroup,
    /// Before every acknowledgement, with no gather delay (concurrent writers still share one).
    PerWrite,
}

/// Write-ahead log knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalConfig {
    /// When to fdatasync. Default: from the preset.
    pub sync: SyncMode,
    /// How long a group leader may wait for writers already on their way (announced with
    /// `Wal::announce`, as `Database::write_batch` does while it encodes) to join its group.
    /// Never spent waiting for writers that have not called yet: a lone writer is not delayed.
    /// Default: from the preset.
    pub gather_delay: Duration,
    /// Maximum entries in one commit group (a larger single batch still commits whole). Default 2000.
    pub max_group_entries: usize,
    /// Rotate to a new WAL file once the current one reaches this size. Default 64 MiB.
    pub file_size: u64,
    /// Preallocate WAL files to `file_size` so appends do not update file metadata. Default true
    /// for `durable`, false otherwise.
    pub preallocate: bool,
    /// When the log syncs (`balanced`, `durable`), append with direct I/O (`O_DIRECT |
    /// O_DSYNC`): each group goes from quiver's buffer straight to the device and is durable
    /// when the write returns, with no page-cache copy, write-back or separate fdatasync.
    /// Falls back to buffered writes where the file system has no direct I/O (older tmpfs,
    /// some FUSE). Without syncs (`throughput`) writes always go through the page cache: a
    /// direct write would wait for the device, which is what that preset avoids. Default true.
    #[serde(default = "default_true")]
    pub direct_io: bool,
}

fn default_true() -> bool {
    true
}

impl WalConfig {
    /// The WAL settings of a preset.
    pub fn for_preset(p: Preset) -> Self {
        let (sync, gather) = match p {
            Preset::Throughput => (SyncMode::None, Duration::from_micros(500)),
            Preset::Balanced => (SyncMode::PerGroup, Duration::from_millis(10)),
            Preset::Durable => (SyncMode::PerWrite, Duration::ZERO),
        };
        WalConfig {
            sync,
            gather_delay: gather,
            max_group_entries: 2000,
            file_size: 64 << 20,
            preallocate: p == Preset::Durable,
            direct_io: true,
        }
    }
}

/// Block compression of segment files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Blocks stored raw. The default.
    #[default]
    None,
    /// LZ4 (fast).
    Lz4,
    /// zstd level 3 (smaller).
    Zstd,
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            o => Err(format!(
                "unknown compression {o:?}: expected none, lz4 or zstd"
            )),
        }
    }
}

/// Hash function of the ledger's Merkle tree, fixed when a database is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerHash {
    /// SHA-256 (Certificate Transparency's; matches RFC 6962 test vectors).
    Sha256,
    /// BLAKE3, the default: hashed sixteen records at a time on AVX-512, it costs ingest about
    /// a third of SHA-NI's SHA-256 here (see BENCHMARKS.md, "Ledger").
    #[default]
    Blake3,
}

impl FromStr for LedgerHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sha256" | "sha-256" => Ok(LedgerHash::Sha256),
            "blake3" => Ok(LedgerHash::Blake3),
            o => Err(format!(
                "unknown ledger hash {o:?}: expected sha256 or blake3"
            )),
        }
    }
}

/// The largest value [`DbConfig::max_payload_bytes`] may be set to: 64 MiB.
pub const MAX_PAYLOAD_LIMIT: usize = 64 << 20;

/// Largest `block_bytes` (a segment block's raw size is a u32 and bounded here; quiver-segment
/// checks its own limit equals this at compile time).
pub const MAX_BLOCK_BYTES: usize = 256 << 20;

/// Largest `wal.file_size`: a WAL file is read whole when the log is opened, replayed or
/// verified, so its size bounds that memory (a single group larger than it still goes whole
/// into a file of its own).
pub const MAX_WAL_FILE_SIZE: u64 = 1 << 30;

/// Largest `bloom_bits_per_key`.
pub const MAX_BLOOM_BITS_PER_KEY: u32 = 64;

/// Longest `wal.gather_delay`: a group leader waits at most this for announced writers.
pub const MAX_GATHER_DELAY: Duration = Duration::from_secs(10);

/// Database configuration. Build with [`DbConfig::new`] and the setters; each setter documents
/// its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbConfig {
    /// Durability preset. Default `balanced`.
    pub preset: Preset,
    /// WAL knobs (derived from the preset unless overridden).
    pub wal: WalConfig,
    /// Flush the memtable once it holds this many bytes. Default 64 MiB.
    pub memtable_bytes: usize,
    /// Flush the memtable at least this often when it is not empty. Default 5 s.
    pub flush_interval: Duration,
    /// Target uncompressed size of a segment block. Default 128 KiB.
    pub block_bytes: usize,
    /// Bloom filter bits per key. Default 10 (≈1 % false positives).
    pub bloom_bits_per_key: u32,
    /// Block compression. Default none.
    pub compression: Compression,
    /// Compact once this many segments are live. Default 8.
    pub compaction_trigger: usize,
    /// Largest accepted payload in bytes. Default 1 MiB, at most [`MAX_PAYLOAD_LIMIT`].
    pub max_payload_bytes: usize,
    /// Whether the Merkle ledger is maintained. Default true.
    pub ledger: bool,
    /// Ledger hash for a new database (an existing one keeps its own). Default BLAKE3.
    #[serde(default)]
    pub ledger_hash: LedgerHash,
    /// Sign a checkpoint once this many records were added since the last one. Default 100 000.
    pub checkpoint_every: u64,
    /// ... or once this much time passed with at least one new record. Default 10 s.
    pub checkpoint_interval: Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self::new(Preset::default())
    }
}

impl DbConfig {
    /// Defaults for a preset.
    pub fn new(preset: Preset) -> Self {
        DbConfig {
            preset,
            wal: WalConfig::for_preset(preset),
            memtable_bytes: 64 << 20,
            flush_interval: Duration::from_secs(5),
            block_bytes: 128 << 10,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            compaction_trigger: 8,
            max_payload_bytes: 1 << 20,
            ledger: true,
            ledger_hash: LedgerHash::default(),
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(10),
        }
    }
    /// Memtable flush threshold in bytes (default 64 MiB).
    pub fn memtable_bytes(mut self, v: usize) -> Self {
        self.memtable_bytes = v;
        self
    }
    /// Flush interval (default 5 s).
    pub fn flush_interval(mut self, v: Duration) -> Self {
        self.flush_interval = v;
        self
    }
    /// Segment block size (default 128 KiB).
    pub fn block_bytes(mut self, v: usize) -> Self {
        self.block_bytes = v;
        self
    }
    /// Bloom bits per key (default 10).
    pub fn bloom_bits_per_key(mut self, v: u32) -> Self {
        self.bloom_bits_per_key = v;
        self
    }
    /// Block compression (default none).
    pub fn compression(mut self, v: Compression) -> Self {
        self.compression = v;
        self
    }
    /// Segments that trigger a compaction (default 8).
    pub fn compaction_trigger(mut self, v: usize) -> Self {
        self.compaction_trigger = v;
        self
    }
    /// WAL file rotation size (default 64 MiB).
    pub fn wal_file_size(mut self, v: u64) -> Self {
        self.wal.file_size = v;
        self
    }
    /// Direct I/O for a syncing WAL (default true; see [`WalConfig::direct_io`]).
    pub fn wal_direct_io(mut self, v: bool) -> Self {
        self.wal.direct_io = v;
        self
    }
    /// Group-commit gather delay (default from the preset).
    pub fn gather_delay(mut self, v: Duration) -> Self {
        self.wal.gather_delay = v;
        self
    }
    /// Maximum payload size (default 1 MiB; at most [`MAX_PAYLOAD_LIMIT`]).
    pub fn max_payload_bytes(mut self, v: usize) -> Self {
        self.max_payload_bytes = v;
        self
    }
    /// Ledger hash for a new database (default BLAKE3).
    pub fn ledger_hash(mut self, v: LedgerHash) -> Self {
        self.ledger_hash = v;
        self
    }
    /// Records between signed checkpoints (default 100 000).
    pub fn checkpoint_every(mut self, v: u64) -> Self {
        self.checkpoint_every = v;
        self
    }
    /// Longest time between signed checkpoints while records arrive (default 10 s).
    pub fn checkpoint_interval(mut self, v: Duration) -> Self {
        self.checkpoint_interval = v;
        self
    }
    /// Maintain the Merkle ledger (default true).
    pub fn ledger(mut self, v: bool) -> Self {
        self.ledger = v;
        self
    }
    /// Checks values are in range.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |key, reason: &str| {
            Err(crate::CoreError::InvalidConfig {
                key,
                reason: reason.into(),
            })
        };
        if !(512..=MAX_BLOCK_BYTES).contains(&self.block_bytes) {
            return bad("block_bytes", "must be between 512 and 256 MiB");
        }
        if self.bloom_bits_per_key > MAX_BLOOM_BITS_PER_KEY {
            return bad("bloom_bits_per_key", "must be at most 64");
        }
        if self.wal.gather_delay > MAX_GATHER_DELAY {
            return bad("wal.gather_delay", "must be at most 10 s");
        }
        if self.flush_interval.is_zero() {
            return bad("flush_interval", "must be longer than zero");
        }
        if !(4096..=MAX_WAL_FILE_SIZE).contains(&self.wal.file_size) {
            return bad("wal.file_size", "must be between 4096 and 1 GiB");
        }
        if self.wal.max_group_entries == 0 {
            return bad("wal.max_group_entries", "must be at least 1");
        }
        if self.memtable_bytes < 4096 {
            return bad("memtable_bytes", "must be at least 4096");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be at least 1");
        }
        if self.compaction_trigger < 2 {
            return bad("compaction_trigger", "must be at least 2");
        }
        if self.max_payload_bytes > MAX_PAYLOAD_LIMIT {
            return bad(
                "max_payload_bytes",
                "must be at most 64 MiB (MAX_PAYLOAD_LIMIT)",
            );
        }
        Ok(())
    }
}
