//! Latency histograms: an [`hdrhistogram`] of nanoseconds with two significant digits
//! (every percentile within 1/128, under 0.8 %, of a recorded value), plus the exact
//! count, sum, min and max.
//!
//! Bounded: values from 1 ns to [`HIGHEST`] (an hour) are tracked, about 37 KB per
//! histogram whatever the run's length; a value above is counted as [`HIGHEST`] in the
//! percentiles (`saturating_record`) and kept exactly in `max` and the mean.

use hdrhistogram::Histogram as Hdr;

/// Highest value the percentiles resolve: one hour in nanoseconds.
pub const HIGHEST: u64 = 3_600_000_000_000;
/// Significant digits of the percentiles.
const SIGFIG: u8 = 2;

/// Counts of latencies in nanoseconds; see the module docs for the bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    hdr: Hdr<u64>,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            hdr: Hdr::new_with_bounds(1, HIGHEST, SIGFIG)
                .expect("1 ns .. 1 h with 2 significant digits are valid hdrhistogram bounds"),
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, nanos: u64) {
        self.hdr.saturating_record(nanos);
        self.sum = self.sum.saturating_add(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.hdr
            .add(&other.hdr)
            .expect("histograms of the same bounds always add");
        self.sum = self.sum.saturating_add(other.sum);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.hdr.len()
    }

    /// Smallest value, `None` if empty.
    pub fn min(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.min)
    }

    /// Largest value, `None` if empty.
    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then_some(self.max)
    }

    /// Mean (exact), `None` if empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.sum as f64 / self.count() as f64)
    }

    /// The value at quantile `q` (0..=1), within the histogram's precision, kept within
    /// the exact `min..=max`. `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count() == 0 {
            return None;
        }
        let v = self.hdr.value_at_quantile(q.clamp(0.0, 1.0));
        Some(v.clamp(self.min, self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(a.quantile(1.0), Some(1_000_000));
    }

    #[test]
    fn values_above_the_range_saturate_but_keep_the_exact_max() {
        let mut h = Histogram::default();
        h.record(u64::MAX);
        assert_eq!(h.count(), 1);
        assert_eq!(h.max(), Some(u64::MAX));
        // The percentile is the highest tracked value, raised to the exact min.
        assert_eq!(h.quantile(0.5), Some(u64::MAX));
        h.record(1);
        assert!(h.quantile(1.0).unwrap() >= HIGHEST);
    }
}
