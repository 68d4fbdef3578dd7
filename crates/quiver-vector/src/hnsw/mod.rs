//! (vector engine: owned by the kernels/HNSW work)
