//! # quiver-ledger
//!
//! quiver's tamper-evident log: every committed record is a leaf of an append-only Merkle tree
//! with the RFC 9162 §2.1 shape and domain separation (`leaf = H(0x00 || body)`,
//! `node = H(0x01 || left || right)`), `H` being SHA-256 or BLAKE3 per ledger. The crate knows
//! nothing of the WAL or of payloads: a leaf is just bytes (or a precomputed leaf hash).
//!
//! ## Concepts
//! - **Leaves** are numbered by sequence number: leaf index = `seq - 1`.
//! - **Node files**: one append-only file per tree level holding the roots of complete perfect
//!   subtrees (level 0 = leaf hashes), so any proof is a handful of 32-byte reads.
//! - **Frontier**: the last perfect subtree root of each level whose bit is set in the size;
//!   appending is O(log n) time and memory, and the current root needs no I/O.
//! - **Checkpoints**: signed tree heads in the C2SP signed-note checkpoint format, signed with
//!   the node's Ed25519 key (`<keys>/node.ed25519`, mode 0600).
//! - **Receipts**: one signature over a batch's sequence range and the tree head covering it.
//! - **Proofs**: RFC 9162 inclusion and consistency proofs; [`verify`] checks them trusting only
//!   the public key, [`TrustStore`] adds rollback and fork protection across runs.
//!
//! ## Write flow
//! 1. The engine commits a WAL group, then calls [`Ledger::append`] (or
//!    [`Ledger::append_hashes`]) with the group's records, in sequence order.
//! 2. Once the group is durable it calls [`Ledger::sync`]; when [`Ledger::checkpoint_due`] it
//!    calls [`Ledger::checkpoint`] (and at clean shutdown).
//! 3. A batch that asked for one gets [`Ledger::receipt`].
//!
//! ## Read flow
//! [`Ledger::inclusion_bundle`] / [`Ledger::consistency_bundle`] produce JSON-serialisable proofs
//! against stored checkpoints; [`Ledger::verify_tree`] audits every stored node, checkpoint and
//! receipt. File formats: `docs/format/ledger.md` and `docs/format/checkpoint.md`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod audit;
mod blake3x16;
mod bundle;
mod error;
mod framed;
mod hash;
mod keys;
mod ledger;
mod meta;
mod mmap;
mod note;
mod proof;
mod receipt;
mod signing;
mod store;
mod tree;
mod trust;
pub mod verify;

pub use audit::{TreeReport, VerifyFailure};
pub use bundle::{ConsistencyBundle, InclusionBundle, ProofBundle};
pub use ed25519_dalek::VerifyingKey;
pub use error::{LedgerError, Result};
pub use framed::{intact_frame_in, zero_filled_torn, zeros_to_sector_end};
pub use hash::{leaf_hash, leaf_hashes, node_hash, Hash, HashAlg};
pub use keys::{key_path, KEY_FILE};
pub use ledger::{LeafHashes, Ledger, LedgerConfig};
pub use note::{
    key_id, open_note, parse_public_key, sign_note, vkey, Checkpoint, SignedCheckpoint,
};
pub use proof::{ConsistencyProof, InclusionProof};
pub use receipt::Receipt;
pub use signing::verify_record;
pub use store::{create_dir_durable, stored_leaf_count};
pub use trust::{key_fingerprint, KeyInfo, TrustOutcome, TrustStore};

/// Compile-time check that [`Ledger`] can be shared between threads.
#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Ledger>();
}
