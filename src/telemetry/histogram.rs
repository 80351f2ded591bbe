//! Histograms: `hdrhistogram` where one thread owns the histogram and readers ask it for
//! a copy (a shard's), and [`AtomicHistogram`] where readers cannot ask (host threads,
//! task workers): fixed log-linear buckets of atomic counters that the owner adds to and
//! any reader sums. Both are merged into one `hdrhistogram` when read, and summarised as
//! a [`HistogramSnapshot`].
//!
//! Memory is fixed: an `hdrhistogram` is created with bounds and never resizes (a value
//! above the top is recorded as the top); an [`AtomicHistogram`] has [`BUCKETS`] counters
//! (values above 2^40 ns, about 18 minutes, go into the last one).

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;

/// The histogram type of the read side and of shard-owned recorders.
pub(crate) type Hdr = Histogram<u64>;

/// Largest duration a histogram tells apart, in nanoseconds (100 s); longer ones are
/// recorded as this.
pub(crate) const MAX_NANOS: u64 = 100_000_000_000;

/// Largest batch size told apart.
pub(crate) const MAX_BATCH: u64 = 1 << 20;

/// A histogram of values from 0 to `max` with two significant figures (buckets 1 % wide).
pub(crate) fn hdr(max: u64) -> Hdr {
    Histogram::new_with_bounds(1, max.max(2), 2)
        .expect("bounds 1..max (max >= 2) with 2 significant figures are valid")
}

/// Records `value` (clamped to the histogram's top).
#[inline]
pub(crate) fn record(h: &mut Hdr, value: u64) {
    h.saturating_record(value.min(h.high()));
}

/// Bucket upper bounds of the Prometheus duration histograms, in nanoseconds.
pub(crate) const DURATION_BOUNDS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Bucket upper bounds of the batch-size histograms, in commands.
pub(crate) const BATCH_BOUNDS: [u64; 14] = [
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 16384,
];

/// A histogram as read: plain data.
///
/// Percentiles are the upper edge of the bucket they fall in (1 % wide for shard-side
/// figures, 6.25 % for round trips and task durations, which go through fixed atomic
/// buckets); `max` likewise.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    /// Values recorded.
    pub count: u64,
    /// Their sum (each value taken at its bucket's middle).
    pub sum: u64,
    /// Smallest value.
    pub min: u64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
    /// `(upper bound, values at or below it)`, cumulative, for the Prometheus buckets.
    pub buckets: Vec<(u64, u64)>,
}

impl HistogramSnapshot {
    /// The summary of `h` with cumulative counts at `bounds`.
    pub(crate) fn of(h: &Hdr, bounds: &[u64]) -> Self {
        if h.is_empty() {
            return Self {
                buckets: bounds.iter().map(|&b| (b, 0)).collect(),
                ..Self::default()
            };
        }
        let sum = h
            .iter_recorded()
            .map(|v| h.median_equivalent(v.value_iterated_to()) * v.count_at_value())
            .fold(0u64, u64::saturating_add);
        let mut buckets = Vec::with_capacity(bounds.len());
        let mut below = 0u64;
        let mut values = h.iter_recorded().peekable();
        for &bound in bounds {
            while let Some(v) = values.peek() {
                if h.median_equivalent(v.value_iterated_to()) > bound {
                    break;
                }
                below += v.count_at_value();
                values.next();
            }
            buckets.push((bound, below));
        }
        Self {
            count: h.len(),
            sum,
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            buckets,
        }
    }
}

/// Sub-buckets per power of two (and the values below `LINEAR` recorded exactly).
const SUB: usize = 16;
/// Values below this get a bucket each.
const LINEAR: u64 = SUB as u64;
/// Largest exponent told apart: values at or above 2^(TOP+1) share the last bucket.
const TOP: u32 = 40;
/// Buckets of an [`AtomicHistogram`]: 16 exact values, then 16 per power of two from 2^4
/// to 2^40.
pub(crate) const BUCKETS: usize = SUB + (TOP as usize - 3) * SUB;

/// The bucket of `v`.
#[inline]
fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = (63 - v.leading_zeros()).min(TOP);
    let v = if e == TOP && v >= 1 << (TOP + 1) {
        (1 << (TOP + 1)) - 1
    } else {
        v
    };
    let sub = ((v >> (e - 4)) & (SUB as u64 - 1)) as usize;
    SUB + (e as usize - 4) * SUB + sub
}

/// The middle value of bucket `i`.
fn bucket_value(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let e = ((i - SUB) / SUB + 4) as u32;
    let sub = ((i - SUB) % SUB) as u64;
    let width = 1u64 << (e - 4);
    ((SUB as u64 + sub) << (e - 4)) + width / 2
}

/// Fixed log-linear buckets of atomic counters (6.25 % wide), for histograms that a
/// reader cannot ask their owner to copy: recorded with one `Relaxed` add on a counter
/// of the recording thread's own histogram, read by summing.
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl AtomicHistogram {
    /// Records `v`.
    #[inline]
    pub(crate) fn record(&self, v: u64) {
        self.buckets[bucket_of(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds every bucket into `into` (each at its middle value).
    pub(crate) fn add_to(&self, into: &mut Hdr) {
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            if n > 0 {
                into.saturating_record_n(bucket_value(i).min(into.high()), n);
            }
        }
    }

    /// Adds every bucket of `self` into `other`.
    #[cfg(test)]
    pub(crate) fn fold_into(&self, other: &AtomicHistogram) {
        for (a, b) in self.buckets.iter().zip(other.buckets.iter()) {
            let n = a.load(Ordering::Relaxed);
            if n > 0 {
                b.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u64 = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        f.debug_struct("AtomicHistogram")
            .field("count", &n)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut h = hdr(MAX_NANOS);
        for v in 1..=10_000u64 {
            record(&mut h, v);
        }
        let s = HistogramSnapshot::of(&h, &[100, 1_000, 20_000]);
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, 1);
        // Two significant figures: each percentile within 1 % of the exact one.
        for (got, want) in [
            (s.p50, 5_000),
            (s.p90, 9_000),
            (s.p99, 9_900),
            (s.p999, 9_990),
        ] {
            assert!(got.abs_diff(want) * 100 <= want, "{got} vs {want}");
        }
        assert!(s.max.abs_diff(10_000) <= 100);
        assert_eq!(s.buckets[0], (100, 100));
        assert!(s.buckets[1].1.abs_diff(1_000) <= 10);
        assert_eq!(s.buckets[2], (20_000, 10_000));
        let exact: u64 = (1..=10_000u64).sum();
        assert!(s.sum.abs_diff(exact) * 100 <= exact);
    }

    #[test]
    fn a_skewed_distribution_has_its_tail() {
        let mut h = hdr(MAX_NANOS);
        for _ in 0..990 {
            record(&mut h, 1_000);
        }
        for _ in 0..10 {
            record(&mut h, 1_000_000);
        }
        let s = HistogramSnapshot::of(&h, &DURATION_BOUNDS);
        assert!(s.p50.abs_diff(1_000) <= 10);
        assert!(s.p90.abs_diff(1_000) <= 10);
        assert!(s.p999.abs_diff(1_000_000) <= 10_000);
        assert!(s.max.abs_diff(1_000_000) <= 10_000);
    }

    #[test]
    fn values_above_the_top_are_clamped_not_lost() {
        let mut h = hdr(1_000);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 1);
        assert!(h.max() >= 1_000);
    }

    #[test]
    fn empty_summary_is_zero() {
        let s = HistogramSnapshot::of(&hdr(MAX_NANOS), &[1, 2]);
        assert_eq!(s.count, 0);
        assert_eq!(s.p99, 0);
        assert_eq!(s.buckets, vec![(1, 0), (2, 0)]);
    }

    #[test]
    fn atomic_buckets_are_within_their_width() {
        for v in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            1_000,
            123_456,
            1 << 39,
            (1 << 41) - 1,
        ] {
            let mid = bucket_value(bucket_of(v));
            assert!(
                mid.abs_diff(v) * 16 <= v.max(16),
                "value {v} went to a bucket whose middle is {mid}"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in (0..1u64 << 20).step_by(7) {
            let b = bucket_of(v);
            assert!(b >= last, "buckets grow with the value");
            last = b;
        }
    }

    #[test]
    fn atomic_histogram_merges_into_percentiles() {
        let a = AtomicHistogram::default();
        let b = AtomicHistogram::default();
        for v in 1..=5_000u64 {
            a.record(v * 1_000);
        }
        for v in 5_001..=10_000u64 {
            b.record(v * 1_000);
        }
        let mut h = hdr(MAX_NANOS);
        a.add_to(&mut h);
        b.add_to(&mut h);
        let s = HistogramSnapshot::of(&h, &DURATION_BOUNDS);
        assert_eq!(s.count, 10_000);
        // 6.25 % buckets, read through 1 % ones.
        for (got, want) in [(s.p50, 5_000_000u64), (s.p99, 9_900_000)] {
            assert!(got.abs_diff(want) * 100 <= want * 8, "{got} vs {want}");
        }
        let folded = AtomicHistogram::default();
        a.fold_into(&folded);
        b.fold_into(&folded);
        let mut g = hdr(MAX_NANOS);
        folded.add_to(&mut g);
        assert_eq!(g, h);
    }
}
