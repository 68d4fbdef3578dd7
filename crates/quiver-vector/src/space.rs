//! The seam between indexes and vector representations.
//!
//! Graph and list indexes traverse with a [`QueryScorer`], so the same HNSW or IVF code runs
//! over full-precision f32 rows, SQ8 codes or PQ codes. Every scorer returns a *distance*
//! (smaller is closer; see the crate docs). Approximate scorers are followed by an exact
//! re-rank on the f32 rows.

/// Scores stored points against one prepared query.
pub trait QueryScorer {
    /// Distance from the query to stored point `i`.
    fn distance(&self, i: u32) -> f32;
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
}
