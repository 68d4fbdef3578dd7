//! quiver-ledger (under construction)
