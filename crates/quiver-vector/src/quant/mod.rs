//! Scalar (SQ8) and product (PQ) quantization.
