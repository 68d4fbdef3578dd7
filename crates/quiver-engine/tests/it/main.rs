//! Integration tests of the embedded database.

mod basic;
mod model;
mod tamper;
