//! Integration tests for quiver-ledger, one module per suite.

mod common;
mod crash;
mod model;
mod persistence;
mod props;
mod signing;
mod tamper;
mod trust;
mod vectors;
