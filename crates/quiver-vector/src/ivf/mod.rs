//! Inverted-file index with product-quantized residuals (IVF-PQ).
