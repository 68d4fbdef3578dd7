//! The seam between indexes and vector representations.
//!
//! Graph and list indexes traverse with a [`QueryScorer`], so the same HNSW or IVF code runs
//! over full-precision f32 rows ([`F32Space`]), SQ8 codes or PQ codes. Every scorer returns a
//! *distance* (smaller is closer; see the crate docs). Approximate scorers are followed by an
//! exact re-rank on the f32 rows.

use crate::distance::{self, Kernels};
use crate::vecfile::{self, ElemType, VecFile, VecFileWriter};
use crate::{Metric, Result, VectorError};
use std::path::Path;

/// Scores stored points against one prepared query.
pub trait QueryScorer {
    /// Distance from the query to stored point `i`.
    fn distance(&self, i: u32) -> f32;
    /// Hint that point `i` will be scored soon (prefetch its data). Default: nothing.
    #[inline]
    fn prefetch(&self, _i: u32) {}
    /// Hint that all of point `i`'s data is needed soon, requested so that the data of many
    /// points can be in flight at once (into L2 for long rows; default:
    /// [`QueryScorer::prefetch`]).
    #[inline]
    fn prefetch_all(&self, i: u32) {
        self.prefetch(i)
    }
}

/// A collection of stored points that can prepare queries.
pub trait VectorSpace: Send + Sync {
    /// The scorer for one query.
    type Scorer<'a>: QueryScorer
    where
        Self: 'a;
    /// Number of stored points.
    fn len(&self) -> usize;
    /// Whether no point is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Dimension of the original vectors.
    fn dim(&self) -> usize;
    /// Prepares a query (already normalised for cosine). `query.len() == self.dim()`.
    fn scorer<'a>(&'a self, query: &'a [f32]) -> Self::Scorer<'a>;
    /// Distance between two stored points (used while building graphs).
    fn pair_distance(&self, i: u32, j: u32) -> f32;
    /// Hint that point `i` will be used soon. Default: nothing.
    #[inline]
    fn prefetch(&self, _i: u32) {}
    /// A scorer whose query is stored point `i` (used while inserting `i` into a graph), if
    /// the space can make one; otherwise builders fall back to [`VectorSpace::pair_distance`].
    fn point_scorer(&self, _i: u32) -> Option<Self::Scorer<'_>> {
        None
    }
    /// Whether stored points `i` and `j` are the same point (equal stored form): graph
    /// builders cap how many copies of a point one neighbour list holds. Default: never.
    fn same_point(&self, _i: u32, _j: u32) -> bool {
        false
    }
}

/// One search result: a point id and its distance to the query (smaller is closer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    /// Point id (row number in the space).
    pub id: u32,
    /// Distance to the query under the space's metric.
    pub distance: f32,
}

impl Neighbor {
    /// Total order: by distance, then by id (ties go to the lower id).
    #[inline]
    pub fn cmp_key(&self, other: &Self) -> std::cmp::Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

impl Eq for Neighbor {}
impl PartialOrd for Neighbor {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Neighbor {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp_key(other)
    }
}

/// The planner's hook: which point ids a search may return. Points outside the set are
/// still traversed by graph indexes (they keep the graph connected) but never returned.
#[derive(Clone, Copy)]
pub enum Filter<'a> {
    /// Only ids in the bitmap.
    Allow(&'a roaring::RoaringBitmap),
    /// Only ids for which the predicate is true.
    Predicate(&'a (dyn Fn(u32) -> bool + Sync)),
}

impl Filter<'_> {
    /// Whether `id` may be returned.
    #[inline]
    pub fn allows(&self, id: u32) -> bool {
        match self {
            Filter::Allow(b) => b.contains(id),
            Filter::Predicate(f) => f(id),
        }
    }
}

impl std::fmt::Debug for Filter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Allow(b) => write!(f, "Filter::Allow({} ids)", b.len()),
            Filter::Predicate(_) => f.write_str("Filter::Predicate(..)"),
        }
    }
}

/// Growable, page-aligned f32 buffer in anonymous memory. On Linux it is advised to use
/// transparent huge pages: graph traversal touches rows at random, and 2 MiB pages take the
/// TLB misses out of that walk.
#[derive(Default)]
struct AnonBuf {
    map: Option<memmap2::MmapMut>,
    len: usize,
}

impl AnonBuf {
    fn capacity(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / 4)
    }

    #[inline]
    fn as_slice(&self) -> &[f32] {
        match &self.map {
            Some(m) => bytemuck::try_cast_slice(&m[..self.len * 4]).unwrap_or(&[]),
            None => &[],
        }
    }

    fn reserve(&mut self, additional: usize) -> std::io::Result<()> {
        let need = self.len + additional;
        if need <= self.capacity() {
            return Ok(());
        }
        let cap = need.max(2 * self.capacity()).max(1024);
        let mut map = memmap2::MmapMut::map_anon(cap * 4)?;
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        if let Some(old) = &self.map {
            map[..self.len * 4].copy_from_slice(&old[..self.len * 4]);
        }
        self.map = Some(map);
        Ok(())
    }

    /// Appends `v` followed by `pad` zeros (anonymous memory starts zeroed).
    fn extend(&mut self, v: &[f32], pad: usize) -> std::io::Result<()> {
        self.reserve(v.len() + pad)?;
        if let Some(m) = &mut self.map {
            let bytes: &[u8] = bytemuck::cast_slice(v);
            m[self.len * 4..self.len * 4 + bytes.len()].copy_from_slice(bytes);
        }
        self.len += v.len() + pad;
        Ok(())
    }
}

enum Backing {
    Owned(AnonBuf),
    Mapped(VecFile),
}

fn anon_err(source: std::io::Error) -> VectorError {
    VectorError::Io {
        path: "<anonymous memory>".into(),
        source,
    }
}

/// Full-precision rows with a 64-byte aligned stride, held in memory or memory-mapped from a
/// vector file (`docs/format/vectors.md`). Row `i` is point id `i`.
pub struct F32Vectors {
    backing: Backing,
    dim: usize,
    stride: usize,
    len: usize,
}

impl F32Vectors {
    /// An empty in-memory collection of `dim`-dimensional rows.
    pub fn new(dim: usize) -> Self {
        F32Vectors {
            backing: Backing::Owned(AnonBuf::default()),
            dim,
            stride: vecfile::row_stride(dim, ElemType::F32) / 4,
            len: 0,
        }
    }

    /// Memory-maps a vector file of f32 rows (validated, see [`VecFile::open`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let f = VecFile::open(path)?;
        f.f32_data()?;
        Ok(F32Vectors {
            dim: f.dim(),
            stride: f.stride_elems(),
            len: f.len(),
            backing: Backing::Mapped(f),
        })
    }

    /// Writes every row to a new vector file at `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = VecFileWriter::create(path, self.dim, ElemType::F32)?;
        for i in 0..self.len {
            w.append_f32(self.row(i as u32))?;
        }
        w.finish()
    }

    /// Appends a row as is (checked for dimension and finite components) and returns its id.
    pub fn push(&mut self, v: &[f32]) -> Result<u32> {
        distance::validate(v, self.dim)?;
        if self.len >= u32::MAX as usize {
            return Err(VectorError::InvalidParameter {
                name: "len",
                reason: "more than 2^32 - 1 points".into(),
            });
        }
        if let Backing::Mapped(_) = self.backing {
            let mut buf = AnonBuf::default();
            let data = self.data();
            buf.extend(&data[..self.len * self.stride], 0)
                .map_err(anon_err)?;
            self.backing = Backing::Owned(buf);
        }
        let buf = match &mut self.backing {
            Backing::Owned(b) => b,
            Backing::Mapped(_) => {
                return Err(VectorError::InvalidParameter {
                    name: "backing",
                    reason: "mapped rows could not be copied".into(),
                })
            }
        };
        buf.extend(v, self.stride - self.dim).map_err(anon_err)?;
        self.len += 1;
        Ok((self.len - 1) as u32)
    }

    /// Reserves room for `additional` more rows.
    pub fn reserve(&mut self, additional: usize) {
        if let Backing::Owned(b) = &mut self.backing {
            // Best effort: a failure here resurfaces as a typed error from `push`.
            let _ = b.reserve(additional * self.stride);
        }
    }

    /// All rows, `stride()` floats apart (padding included).
    #[inline]
    pub fn data(&self) -> &[f32] {
        match &self.backing {
            Backing::Owned(b) => b.as_slice(),
            // `open` checked the cast once; the map does not change afterwards.
            Backing::Mapped(f) => f.f32_data().unwrap_or(&[]),
        }
    }

    /// Row `i`. Panics if `i >= len()` (ids come from this collection).
    #[inline]
    pub fn row(&self, i: u32) -> &[f32] {
        let o = i as usize * self.stride;
        &self.data()[o..o + self.dim]
    }

    /// Row `i`, or `None` past the end.
    #[inline]
    pub fn get(&self, i: u32) -> Option<&[f32]> {
        ((i as usize) < self.len).then(|| self.row(i))
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Components per row.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Floats between row starts (dim rounded up to 16).
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Bytes of row storage (padding included).
    pub fn bytes(&self) -> usize {
        self.len * self.stride * 4
    }
    /// Whether the rows are memory-mapped from a file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.backing, Backing::Mapped(_))
    }
}

/// Full-precision vectors under a metric: the exact [`VectorSpace`].
///
/// Vectors added through [`F32Space::add`] are validated (dimension, finite components) and,
/// under `cosine`, normalised to unit length, so every distance is squared L2 or `-dot`.
pub struct F32Space {
    vectors: F32Vectors,
    metric: Metric,
    kernels: &'static Kernels,
}

impl F32Space {
    /// An empty space of `dim`-dimensional vectors.
    pub fn new(metric: Metric, dim: usize) -> Self {
        Self::from_vectors(metric, F32Vectors::new(dim))
    }

    /// Wraps rows that are already in stored form (normalised for cosine).
    pub fn from_vectors(metric: Metric, vectors: F32Vectors) -> Self {
        F32Space {
            vectors,
            metric,
            kernels: Kernels::best(),
        }
    }

    /// Validates, normalises (cosine) and appends `v`; returns its id.
    pub fn add(&mut self, v: &[f32]) -> Result<u32> {
        let p = distance::prepare(self.metric, v, self.vectors.dim())?;
        self.vectors.push(&p)
    }

    /// Reserves room for `additional` more vectors.
    pub fn reserve(&mut self, additional: usize) {
        self.vectors.reserve(additional);
    }

    /// Validates and normalises (cosine) a query.
    pub fn prepare_query(&self, q: &[f32]) -> Result<Vec<f32>> {
        distance::prepare(self.metric, q, self.vectors.dim())
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }
    /// The stored rows.
    pub fn vectors(&self) -> &F32Vectors {
        &self.vectors
    }
    /// Gives the rows back.
    pub fn into_vectors(self) -> F32Vectors {
        self.vectors
    }
}

/// Scorer of [`F32Space`]: one kernel call per point.
pub struct F32Scorer<'a> {
    data: &'a [f32],
    stride: usize,
    dim: usize,
    query: &'a [f32],
    kernel: fn(&[f32], &[f32]) -> f32,
    negate: bool,
}

impl QueryScorer for F32Scorer<'_> {
    #[inline]
    fn distance(&self, i: u32) -> f32 {
        let o = i as usize * self.stride;
        let d = (self.kernel)(self.query, &self.data[o..o + self.dim]);
        if self.negate {
            -d
        } else {
            d
        }
    }

    #[inline]
    fn prefetch(&self, i: u32) {
        let p = self.data.as_ptr().wrapping_add(i as usize * self.stride);
        distance::prefetch(p);
    }

    #[inline]
    fn prefetch_all(&self, i: u32) {
        let p = self.data.as_ptr().wrapping_add(i as usize * self.stride);
        let mut o = 0;
        while o < self.dim {
            distance::prefetch_l2(p.wrapping_add(o));
            o += 16;
        }
    }
}

impl VectorSpace for F32Space {
    type Scorer<'a> = F32Scorer<'a>;

    fn same_point(&self, i: u32, j: u32) -> bool {
        let (a, b) = (self.vectors.row(i), self.vectors.row(j));
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn len(&self) -> usize {
        self.vectors.len()
    }
    fn dim(&self) -> usize {
        self.vectors.dim()
    }
    fn scorer<'a>(&'a self, query: &'a [f32]) -> F32Scorer<'a> {
        let (kernel, negate) = match self.metric {
            Metric::L2 => (self.kernels.l2, false),
            Metric::Dot | Metric::Cosine => (self.kernels.dot, true),
        };
        F32Scorer {
            data: self.vectors.data(),
            stride: self.vectors.stride(),
            dim: self.vectors.dim(),
            query,
            kernel,
            negate,
        }
    }
    #[inline]
    fn pair_distance(&self, i: u32, j: u32) -> f32 {
        self.kernels
            .distance(self.metric, self.vectors.row(i), self.vectors.row(j))
    }
    #[inline]
    fn prefetch(&self, i: u32) {
        let p = self
            .vectors
            .data()
            .as_ptr()
            .wrapping_add(i as usize * self.vectors.stride());
        let mut o = 0;
        while o < self.vectors.dim() {
            distance::prefetch(p.wrapping_add(o));
            o += 16;
        }
    }
    fn point_scorer(&self, i: u32) -> Option<F32Scorer<'_>> {
        self.vectors.get(i).map(|q| self.scorer(q))
    }
}
