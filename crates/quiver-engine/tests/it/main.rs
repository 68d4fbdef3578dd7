//! Integration tests of the embedded database.

mod basic;
mod ledger;
mod limits;
mod model;
mod read_only;
mod stress_ledger;
mod tamper;
