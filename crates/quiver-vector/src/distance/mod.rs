//! Distance kernels with runtime dispatch.
//!
//! [`scalar`] holds the reference every SIMD path is tested against. At first use the best
//! kernel set the CPU supports is resolved once ([`Kernels::best`]: AVX-512 > AVX2+FMA on
//! x86-64, NEON on aarch64, else the portable scalar fallback) and every call goes through
//! its function pointers, so a plain `cargo build` (no `-C target-cpu`) runs everywhere.
//! The environment variable `QUIVER_KERNELS=scalar|avx2|avx512|neon` forces a path (when the
//! CPU supports it), for benchmarks.
//!
//! Besides the pairwise kernels each path has a register-tiled many-queries × many-rows
//! kernel ([`Kernels::tile`], see [`tile`]) for batched flat search.
//!
//! Convention: a *distance* is smaller-is-closer: squared L2, or the negated inner product
//! for `dot` and `cosine` (cosine vectors are normalised first, see [`normalize`]).

pub mod scalar;
pub mod tile;

#[cfg(target_arch = "aarch64")]
pub mod neon;
#[cfg(target_arch = "x86_64")]
pub mod x86;
#[cfg(target_arch = "x86_64")]
pub mod x86_tile;

pub use tile::{Candidates, Tile, TileFn, TileKernel};

use crate::{Result, VectorError};
use quiver_core::Metric;
use std::sync::OnceLock;

/// An instruction-set path of the kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Portable scalar code (eight f32 accumulators).
    Scalar,
    /// x86-64 AVX2 with FMA.
    Avx2,
    /// x86-64 AVX-512 (F for f32; BW for the u8 kernels).
    Avx512,
    /// aarch64 NEON.
    Neon,
    /// The `simsimd` crate's kernels (only with the `simsimd` cargo feature; f32 only, the
    /// u8 kernels fall back to the best native path).
    SimSimd,
}

impl Isa {
    /// Short name (`scalar`, `avx2`, `avx512`, `neon`, `simsimd`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
            Isa::SimSimd => "simsimd",
        }
    }
}

/// A resolved set of kernels (plain function pointers).
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// Which path these are.
    pub isa: Isa,
    /// Squared Euclidean distance.
    pub l2: fn(&[f32], &[f32]) -> f32,
    /// Inner product.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// Squared Euclidean distance of u8 codes (exact; wraps past 2^32, i.e. beyond ~66 000
    /// dimensions of maximal differences).
    pub l2_u8: fn(&[u8], &[u8]) -> u32,
    /// Inner product of u8 codes (exact, same range as `l2_u8`).
    pub dot_u8: fn(&[u8], &[u8]) -> u32,
    /// The register-tiled many-queries × few-rows kernel of batched flat search (see
    /// [`tile`]); the portable one where the path has none of its own.
    pub tile: TileKernel,
}

impl Kernels {
    /// The portable scalar kernels.
    pub fn scalar() -> Kernels {
        Kernels {
            isa: Isa::Scalar,
            l2: scalar::l2_unrolled,
            dot: scalar::dot_unrolled,
            l2_u8: scalar::l2_u8,
            dot_u8: scalar::dot_u8,
            tile: tile::portable_kernel(),
        }
    }

    /// The kernels of `isa`, or `None` when this CPU (or build) does not support it.
    pub fn for_isa(isa: Isa) -> Option<Kernels> {
        match isa {
            Isa::Scalar => Some(Kernels::scalar()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    Some(Kernels {
                        isa,
                        l2: x86_dispatch::l2_avx2,
                        dot: x86_dispatch::dot_avx2,
                        l2_u8: x86_dispatch::l2_u8_avx2,
                        dot_u8: x86_dispatch::dot_u8_avx2,
                        tile: TileKernel {
                            lanes: x86_tile::AVX2_LANES,
                            rows: x86_tile::AVX2_ROWS,
                            run: x86_dispatch::tile_avx2,
                        },
                    })
                } else {
                    None
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
                    Some(Kernels {
                        isa,
                        l2: x86_dispatch::l2_avx512,
                        dot: x86_dispatch::dot_avx512,
                        l2_u8: x86_dispatch::l2_u8_avx512,
                        dot_u8: x86_dispatch::dot_u8_avx512,
                        tile: TileKernel {
                            lanes: x86_tile::AVX512_LANES,
                            rows: x86_tile::AVX512_ROWS,
                            run: x86_dispatch::tile_avx512,
                        },
                    })
                } else {
                    None
                }
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => {
                if std::arch::is_aarch64_feature_detected!("neon") {
                    Some(Kernels {
                        isa,
                        l2: neon_dispatch::l2,
                        dot: neon_dispatch::dot,
                        l2_u8: neon_dispatch::l2_u8,
                        dot_u8: neon_dispatch::dot_u8,
                        tile: tile::portable_kernel(),
                    })
                } else {
                    None
                }
            }
            #[cfg(feature = "simsimd")]
            Isa::SimSimd => {
                let native = Kernels::native_best();
                Some(Kernels {
                    isa,
                    l2: simsimd_dispatch::l2,
                    dot: simsimd_dispatch::dot,
                    l2_u8: native.l2_u8,
                    dot_u8: native.dot_u8,
                    tile: native.tile,
                })
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Every path this CPU supports, the reference-compatible scalar one first.
    pub fn available() -> Vec<Kernels> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::SimSimd]
            .into_iter()
            .filter_map(Kernels::for_isa)
            .collect()
    }

    fn native_best() -> Kernels {
        [Isa::Avx512, Isa::Avx2, Isa::Neon]
            .into_iter()
            .find_map(Kernels::for_isa)
            .unwrap_or_else(Kernels::scalar)
    }

    /// The kernels every call of this module uses: resolved once, on first use.
    pub fn best() -> &'static Kernels {
        static BEST: OnceLock<Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            let forced = std::env::var("QUIVER_KERNELS").ok().and_then(|s| {
                [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon, Isa::SimSimd]
                    .into_iter()
                    .find(|i| i.name() == s)
            });
            forced
                .and_then(Kernels::for_isa)
                .unwrap_or_else(Kernels::native_best)
        })
    }

    /// Distance under `metric` with these kernels (see [`distance`]).
    #[inline]
    pub fn distance(&self, metric: Metric, a: &[f32], b: &[f32]) -> f32 {
        match metric {
            Metric::L2 => (self.l2)(a, b),
            Metric::Dot | Metric::Cosine => -(self.dot)(a, b),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_dispatch {
    //! Safe wrappers installed into [`super::Kernels`] only after feature detection.
    use super::{x86, x86_tile, Candidates, Tile};

    macro_rules! wrap {
        ($name:ident, $t:ty, $r:ty) => {
            pub fn $name(a: &[$t], b: &[$t]) -> $r {
                // SAFETY: `Kernels::for_isa` hands this wrapper out only after
                // `is_x86_feature_detected!` confirmed the kernel's target features.
                #[expect(unsafe_code, reason = "calling a #[target_feature] kernel")]
                unsafe {
                    x86::$name(a, b)
                }
            }
        };
    }
    wrap!(l2_avx2, f32, f32);
    wrap!(dot_avx2, f32, f32);
    wrap!(l2_avx512, f32, f32);
    wrap!(dot_avx512, f32, f32);
    wrap!(l2_u8_avx2, u8, u32);
    wrap!(dot_u8_avx2, u8, u32);
    wrap!(l2_u8_avx512, u8, u32);
    wrap!(dot_u8_avx512, u8, u32);

    pub fn tile_avx512(t: &Tile<'_>, out: &mut Candidates) -> usize {
        // SAFETY: handed out only after `is_x86_feature_detected!("avx512f")`.
        #[expect(unsafe_code, reason = "calling a #[target_feature] kernel")]
        unsafe {
            x86_tile::tile_avx512(t, out)
        }
    }

    pub fn tile_avx2(t: &Tile<'_>, out: &mut Candidates) -> usize {
        // SAFETY: handed out only after `is_x86_feature_detected!` confirmed avx2 and fma.
        #[expect(unsafe_code, reason = "calling a #[target_feature] kernel")]
        unsafe {
            x86_tile::tile_avx2(t, out)
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod neon_dispatch {
    //! Safe wrappers installed into [`super::Kernels`] only after feature detection.
    use super::neon;

    macro_rules! wrap {
        ($name:ident, $inner:ident, $t:ty, $r:ty) => {
            pub fn $name(a: &[$t], b: &[$t]) -> $r {
                // SAFETY: handed out only after `is_aarch64_feature_detected!("neon")`.
                #[expect(unsafe_code, reason = "calling a #[target_feature] kernel")]
                unsafe {
                    neon::$inner(a, b)
                }
            }
        };
    }
    wrap!(l2, l2_neon, f32, f32);
    wrap!(dot, dot_neon, f32, f32);
    wrap!(l2_u8, l2_u8_neon, u8, u32);
    wrap!(dot_u8, dot_u8_neon, u8, u32);
}

#[cfg(feature = "simsimd")]
mod simsimd_dispatch {
    //! The `simsimd` crate's f32 kernels (they return f64; `None` only on length mismatch).
    use simsimd::SpatialSimilarity;

    pub fn l2(a: &[f32], b: &[f32]) -> f32 {
        f32::sqeuclidean(a, b).unwrap_or(f64::NAN) as f32
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        <f32 as SpatialSimilarity>::dot(a, b).unwrap_or(f64::NAN) as f32
    }
}

/// Squared Euclidean distance (dispatched).
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().l2)(a, b)
}

/// Inner product (dispatched).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (Kernels::best().dot)(a, b)
}

/// Squared Euclidean distance of two u8 code vectors (dispatched, exact).
#[inline]
pub fn l2_u8(a: &[u8], b: &[u8]) -> u32 {
    (Kernels::best().l2_u8)(a, b)
}

/// Inner product of two u8 code vectors (dispatched, exact).
#[inline]
pub fn dot_u8(a: &[u8], b: &[u8]) -> u32 {
    (Kernels::best().dot_u8)(a, b)
}

/// Distance under `metric`, smaller is closer: squared L2, or the negated inner product for
/// `dot` and `cosine` (cosine inputs must already be unit length).
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    Kernels::best().distance(metric, a, b)
}

/// Hints the CPU to load the cache line holding `p` (no-op where unsupported).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch(p.cast());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hints the CPU to pull the cache line holding `p` into L2 rather than L1 (no-op where
/// unsupported). A row of a few hundred dimensions spans tens of cache lines, and a graph
/// search wants the rows of all unvisited neighbours of a node at once: L1 tracks too few
/// outstanding misses for that, L2 more, so requests into L2 keep several rows in flight
/// (1.5x the HNSW QPS on 384-d rows that do not fit the L3, `docs/benchmarks/vector.md`).
#[inline(always)]
pub fn prefetch_l2<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    x86::prefetch_l2(p.cast());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Checks `v` for the index dimension and finite components.
pub fn validate(v: &[f32], dim: usize) -> Result<()> {
    if v.len() != dim {
        return Err(VectorError::DimensionMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(VectorError::NonFinite { index, value });
    }
    Ok(())
}

/// Scales `v` to unit length in place; a zero vector is [`VectorError::ZeroVector`].
pub fn normalize(v: &mut [f32]) -> Result<()> {
    let n = dot(v, v).sqrt();
    // The f32 sum of squares overflows past ~1e19 per component and loses everything
    // below ~1e-19 (`[1e20; 8]` and `[1e-30; 8]` are fine vectors): redo those in f64.
    if !(1e-18..=1e18).contains(&n) {
        let n = v
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if n == 0.0 || !n.is_finite() {
            return Err(VectorError::ZeroVector);
        }
        v.iter_mut().for_each(|x| *x = (f64::from(*x) / n) as f32);
        return Ok(());
    }
    let inv = 1.0 / n;
    v.iter_mut().for_each(|x| *x *= inv);
    Ok(())
}

/// Validates `v` and returns the form the index stores and queries with: a copy normalised
/// to unit length under `cosine`, unchanged otherwise.
pub fn prepare(metric: Metric, v: &[f32], dim: usize) -> Result<Vec<f32>> {
    validate(v, dim)?;
    let mut out = v.to_vec();
    if metric == Metric::Cosine {
        normalize(&mut out)?;
    }
    Ok(out)
}
