//! quiver-wal (under construction)
