//! A fixed-size log-linear latency histogram: bounded memory however long a run lasts,
//! under 1 % relative error on every percentile.
//!
//! Values are nanoseconds. Values below 256 have a bucket each (exact). Above, every
//! power-of-two range `[2^e, 2^(e+1))` is cut into 128 equal buckets, so a bucket is at
//! most 1/128 (0.78 %) of the values in it wide. Values at or above 2^40 ns (about 18
//! minutes) share the last bucket; min, max, sum and count are kept exactly.

/// Values below this have one bucket each.
const EXACT: u64 = 256;
/// log2 of the buckets per power-of-two range above [`EXACT`].
const SUB_BITS: u32 = 7;
/// Power-of-two ranges from 2^8 up to (excluding) 2^40.
const MAX_EXPONENT: u32 = 40;
/// Number of buckets: 256 exact + 32 ranges × 128.
const BUCKETS: usize = EXACT as usize + (((MAX_EXPONENT - 8) as usize) << SUB_BITS);

/// Counts of latencies in nanoseconds; see the module docs for the bucket layout.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

/// The bucket of `value`.
fn bucket(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    if exponent >= MAX_EXPONENT {
        return BUCKETS - 1;
    }
    let shift = exponent - SUB_BITS;
    let sub = (value >> shift) - (1 << SUB_BITS);
    EXACT as usize + (((exponent - 8) as usize) << SUB_BITS) + sub as usize
}

/// The smallest value and the width of bucket `index`.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < EXACT as usize {
        return (index as u64, 1);
    }
    let above = index - EXACT as usize;
    let exponent = (above >> SUB_BITS) as u32 + 8;
    let sub = (above & ((1 << SUB_BITS) - 1)) as u64;
    let shift = exponent - SUB_BITS;
    (((1 << SUB_BITS) + sub) << shift, 1 << shift)
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, nanos: u64) {
        self.counts[bucket(nanos)] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest value, `None` if empty.
    pub fn min(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value, `None` if empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Mean (exact), `None` if empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value at quantile `q` (0..=1): the smallest recorded value with at least
    /// `ceil(q × count)` values at or below it, up to its bucket's width (the middle of
    /// the bucket is returned, kept within `min..=max`). `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (index, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket_range(index);
                return Some((low + (width - 1) / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_range_in_order_without_gaps() {
        let mut next = 0u64;
        for index in 0..BUCKETS - 1 {
            let (low, width) = bucket_range(index);
            assert_eq!(low, next, "bucket {index}");
            assert_eq!(bucket(low), index);
            assert_eq!(bucket(low + width - 1), index);
            next = low + width;
        }
        assert_eq!(bucket(next), BUCKETS - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_under_one_percent_wide() {
        for index in EXACT as usize..BUCKETS {
            let (low, width) = bucket_range(index);
            assert!(width as f64 / low as f64 <= 1.0 / 128.0, "bucket {index}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.min(), Some(1));
        assert_eq!(h.max(), Some(100));
        assert_eq!(h.mean(), Some(50.5));
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.95), Some(95));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1));
    }

    #[test]
    fn large_values_are_within_one_percent() {
        let mut h = Histogram::default();
        // 1..=10_000 µs in nanoseconds.
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        for (q, exact) in [(0.5, 5_000_000.0), (0.95, 9_500_000.0), (0.99, 9_900_000.0)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact < 0.01,
                "q {q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max(), Some(10_000_000));
    }

    #[test]
    fn empty_has_no_statistics() {
        let h = Histogram::default();
        assert_eq!(h.count(), 0);
        assert_eq!((h.min(), h.max(), h.mean()), (None, None, None));
        assert_eq!(h.quantile(0.5), None);
    }

    #[test]
    fn merge_adds_counts_and_extremes() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        a.record(20);
        b.record(5);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.min(), Some(5));
        assert_eq!(a.max(), Some(1_000_000));
        assert_eq!(a.quantile(0.5), Some(10));
        assert_eq!(a.quantile(0.75), Some(20));
        let top = a.quantile(1.0).unwrap();
        assert_eq!(top, 1_000_000);
    }

    #[test]
    fn huge_values_clamp_into_the_last_bucket_but_keep_the_exact_max() {
        let mut h = Histogram::default();
        h.record(u64::MAX);
        assert_eq!(h.max(), Some(u64::MAX));
        assert_eq!(h.quantile(0.5), Some(u64::MAX));
    }
}
