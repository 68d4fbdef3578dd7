//! quiver-core's integration tests, one module per suite.

mod json_syntax;
