//! Verification of records against the ledger (issue 3), wired once the ledger lands.
