//! quiver-engine (under construction)
