//! Integration tests of quiver-segment: one binary, one module per suite.

mod common;
mod corruption;
mod get;
mod memtable;
mod roundtrip;
mod scan;
