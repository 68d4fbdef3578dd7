//! quiver-segment (under construction)
