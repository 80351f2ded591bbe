//! [`EventHistory`]: the last `capacity` events, queryable by topic pattern, time range
//! and correlation id.
//!
//! A ring buffer: pushing into a full history overwrites (drops) the oldest record and
//! counts it in [`EventHistory::overwritten`]. Every record gets the next sequence number
//! (from 0, one per push), so records are always in sequence order and
//! [`EventHistory::get`] finds one by sequence number in O(1).
//!
//! ```
//! use mabeam_shards::history::EventHistory;
//! use mabeam_shards::topic::{Pattern, Topic};
//!
//! let mut history = EventHistory::new(2).expect("capacity > 0");
//! let topic = |t| Topic::parse(t).expect("valid topic");
//! history.push(topic("auction.bid"), 10, Some(7), "bid 1");
//! history.push(topic("auction.closed"), 20, Some(7), "closed");
//! history.push(topic("auction.bid"), 30, None, "bid 2"); // overwrites "bid 1"
//! assert_eq!(history.overwritten(), 1);
//!
//! let bids = Pattern::parse("auction.bid").expect("valid pattern");
//! let found = history.query(Some(&bids), None, None, None, usize::MAX);
//! assert_eq!(found.iter().map(|r| r.payload).collect::<Vec<_>>(), ["bid 2"]);
//! let correlated = history.query(None, Some(0), Some(25), Some(7), usize::MAX);
//! assert_eq!(correlated.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
//! ```

use std::collections::VecDeque;
use std::fmt;

use crate::topic::{Pattern, Topic};

/// Largest capacity [`EventHistory::new`] accepts (records, allocated up front).
pub const MAX_HISTORY_CAPACITY: usize = 1 << 20;

/// Why [`EventHistory::new`] refused a capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// A history holds at least one record.
    ZeroCapacity,
    /// More than [`MAX_HISTORY_CAPACITY`] records.
    CapacityTooLarge {
        /// The refused capacity.
        capacity: usize,
        /// The bound, [`MAX_HISTORY_CAPACITY`].
        max: usize,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => f.write_str("an event history needs a capacity of at least 1"),
            Self::CapacityTooLarge { capacity, max } => {
                write!(f, "history capacity {capacity} exceeds the bound of {max}")
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// One event kept in an [`EventHistory`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<T> {
    /// Sequence number in this history, from 0, one per push.
    pub seq: u64,
    /// The event's topic.
    pub topic: Topic,
    /// When it happened (engine clock, nanoseconds).
    pub timestamp: u64,
    /// The correlation id it carries, if any.
    pub correlation: Option<u64>,
    /// The event itself.
    pub payload: T,
}

/// A bounded, queryable history of events; see the [module documentation](self).
///
/// Invariants: `records.len() <= capacity`; the records' `seq` are consecutive, ending at
/// `next_seq - 1`; `overwritten + records.len() == next_seq`; `inversions` is the number
/// of adjacent record pairs whose timestamps decrease (0 means the records are sorted by
/// timestamp too, which lets time-bounded queries binary-search).
#[derive(Debug, Clone)]
pub struct EventHistory<T> {
    records: VecDeque<Record<T>>,
    capacity: usize,
    next_seq: u64,
    overwritten: u64,
    inversions: usize,
}

impl<T> EventHistory<T> {
    /// An empty history that keeps the last `capacity` records (`1..=`
    /// [`MAX_HISTORY_CAPACITY`]; the buffer is allocated up front).
    pub fn new(capacity: usize) -> Result<Self, HistoryError> {
        if capacity == 0 {
            return Err(HistoryError::ZeroCapacity);
        }
        if capacity > MAX_HISTORY_CAPACITY {
            return Err(HistoryError::CapacityTooLarge {
                capacity,
                max: MAX_HISTORY_CAPACITY,
            });
        }
        Ok(Self {
            records: VecDeque::with_capacity(capacity),
            capacity,
            next_seq: 0,
            overwritten: 0,
            inversions: 0,
        })
    }

    /// Appends an event and returns its sequence number. If the history is full, the
    /// oldest record is dropped first (counted in [`overwritten`](Self::overwritten)).
    /// O(1).
    pub fn push(
        &mut self,
        topic: Topic,
        timestamp: u64,
        correlation: Option<u64>,
        payload: T,
    ) -> u64 {
        if self.records.len() == self.capacity {
            if let Some(oldest) = self.records.pop_front() {
                self.overwritten += 1;
                if self
                    .records
                    .front()
                    .is_some_and(|front| oldest.timestamp > front.timestamp)
                {
                    self.inversions -= 1;
                }
            }
        }
        if self
            .records
            .back()
            .is_some_and(|newest| timestamp < newest.timestamp)
        {
            self.inversions += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.records.push_back(Record {
            seq,
            topic,
            timestamp,
            correlation,
            payload,
        });
        seq
    }

    /// The newest `limit` records (at most) that match every given filter, oldest first:
    /// the topic matches `pattern`, `from <= timestamp < to`, and the correlation id
    /// equals `correlation`. `None` filters nothing; `usize::MAX` as `limit` returns every
    /// match.
    ///
    /// Cost: the scan runs from the newest record backwards and stops after `limit`
    /// matches, so O(capacity) at worst. While timestamps were pushed in non-decreasing
    /// order (the usual case: one clock), the time bounds are found by binary search and
    /// the scan covers only the records inside `[from, to)`: O(log capacity + records in
    /// range).
    pub fn query(
        &self,
        pattern: Option<&Pattern>,
        from: Option<u64>,
        to: Option<u64>,
        correlation: Option<u64>,
        limit: usize,
    ) -> Vec<&Record<T>> {
        let mut found = Vec::new();
        if limit == 0 {
            return found;
        }
        let sorted = self.inversions == 0;
        let end = match (sorted, to) {
            (true, Some(to)) => self.records.partition_point(|r| r.timestamp < to),
            _ => self.records.len(),
        };
        for record in self.records.range(..end).rev() {
            if sorted && from.is_some_and(|from| record.timestamp < from) {
                break;
            }
            let in_time = from.map_or(true, |from| record.timestamp >= from)
                && to.map_or(true, |to| record.timestamp < to);
            if in_time
                && correlation.map_or(true, |c| record.correlation == Some(c))
                && pattern.map_or(true, |p| p.matches_topic(&record.topic))
            {
                found.push(record);
                if found.len() == limit {
                    break;
                }
            }
        }
        found.reverse();
        found
    }

    /// The record with sequence number `seq`, if it is still kept. O(1).
    pub fn get(&self, seq: u64) -> Option<&Record<T>> {
        let oldest = self.records.front()?.seq;
        let index = usize::try_from(seq.checked_sub(oldest)?).ok()?;
        self.records.get(index)
    }

    /// All kept records, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Record<T>> + ExactSizeIterator {
        self.records.iter()
    }

    /// Number of records kept.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Most records kept.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records dropped to make room, since creation.
    pub fn overwritten(&self) -> u64 {
        self.overwritten
    }

    /// The sequence number the next push gets (= records pushed since creation).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(text: &str) -> Topic {
        Topic::parse(text).expect("valid topic")
    }

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).expect("valid pattern")
    }

    fn seqs<T>(records: &[&Record<T>]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn capacity_is_validated() {
        assert_eq!(
            EventHistory::<()>::new(0).err(),
            Some(HistoryError::ZeroCapacity)
        );
        assert_eq!(
            EventHistory::<()>::new(MAX_HISTORY_CAPACITY + 1).err(),
            Some(HistoryError::CapacityTooLarge {
                capacity: MAX_HISTORY_CAPACITY + 1,
                max: MAX_HISTORY_CAPACITY
            })
        );
    }

    #[test]
    fn ring_overwrites_the_oldest_and_counts() {
        let mut history = EventHistory::new(3).expect("valid");
        for i in 0..5u64 {
            assert_eq!(history.push(topic("a"), i * 10, None, i), i);
        }
        assert_eq!(history.len(), 3);
        assert_eq!(history.capacity(), 3);
        assert_eq!(history.overwritten(), 2);
        assert_eq!(history.next_seq(), 5);
        assert_eq!(
            history.iter().map(|r| r.payload).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(history.get(1), None, "overwritten");
        assert_eq!(history.get(3).map(|r| r.payload), Some(3));
        assert_eq!(history.get(5), None, "not pushed yet");

        let mut one = EventHistory::new(1).expect("valid");
        one.push(topic("a"), 5, None, 'x');
        one.push(topic("b"), 1, None, 'y');
        assert_eq!(one.iter().map(|r| r.payload).collect::<Vec<_>>(), ['y']);
        assert_eq!(one.overwritten(), 1);
    }

    #[test]
    fn query_filters_by_pattern_time_and_correlation() {
        let mut history = EventHistory::new(16).expect("valid");
        history.push(topic("auction.bid"), 10, Some(1), ()); // 0
        history.push(topic("auction.closed"), 20, Some(1), ()); // 1
        history.push(topic("market.data.updated"), 30, None, ()); // 2
        history.push(topic("auction.bid"), 40, Some(2), ()); // 3
        history.push(topic("auction.bid"), 50, Some(1), ()); // 4

        let all = history.query(None, None, None, None, usize::MAX);
        assert_eq!(seqs(&all), [0, 1, 2, 3, 4]);
        let auction = pattern("auction.*");
        assert_eq!(
            seqs(&history.query(Some(&auction), None, None, None, usize::MAX)),
            [0, 1, 3, 4]
        );
        assert_eq!(
            seqs(&history.query(Some(&pattern("**")), Some(20), Some(40), None, usize::MAX)),
            [1, 2],
            "from inclusive, to exclusive"
        );
        assert_eq!(
            seqs(&history.query(None, None, None, Some(1), usize::MAX)),
            [0, 1, 4]
        );
        assert_eq!(
            seqs(&history.query(Some(&pattern("auction.bid")), Some(15), None, Some(1), 10)),
            [4]
        );
        assert_eq!(
            seqs(&history.query(None, None, None, None, 2)),
            [3, 4],
            "limit keeps the newest, oldest first"
        );
        assert!(history.query(None, None, None, None, 0).is_empty());
        assert!(history
            .query(None, Some(60), None, None, usize::MAX)
            .is_empty());
        assert!(history
            .query(None, Some(30), Some(30), None, usize::MAX)
            .is_empty());
    }

    #[test]
    fn unsorted_timestamps_fall_back_to_a_full_scan_and_recover() {
        let mut history = EventHistory::new(4).expect("valid");
        for ts in [10, 30, 20, 40] {
            history.push(topic("a"), ts, None, ts);
        }
        assert_eq!(history.inversions, 1);
        let in_range = history.query(None, Some(15), Some(35), None, usize::MAX);
        assert_eq!(
            in_range.iter().map(|r| r.payload).collect::<Vec<_>>(),
            [30, 20],
            "seq order, not time order"
        );
        // Push the inversion out of the window: the history is sorted again.
        history.push(topic("a"), 50, None, 50);
        history.push(topic("a"), 60, None, 60);
        assert_eq!(history.inversions, 0);
        let in_range = history.query(None, Some(40), Some(60), None, usize::MAX);
        assert_eq!(
            in_range.iter().map(|r| r.payload).collect::<Vec<_>>(),
            [40, 50]
        );
    }

    #[test]
    fn sorted_and_brute_force_queries_agree() {
        // Same records, pushed into a history that stays sorted and checked against a
        // plain filter over all records, for many ranges and limits.
        let mut history = EventHistory::new(32).expect("valid");
        for i in 0..50u64 {
            let t = if i % 3 == 0 { "x.a" } else { "x.b" };
            history.push(topic(t), i * 2, Some(i % 4), i);
        }
        assert_eq!(history.inversions, 0);
        let xa = pattern("x.a");
        for from in (0..110).step_by(7) {
            for to in (0..110).step_by(11) {
                for limit in [1, 3, usize::MAX] {
                    let got = history.query(Some(&xa), Some(from), Some(to), Some(0), limit);
                    let mut expected: Vec<u64> = history
                        .iter()
                        .filter(|r| {
                            r.timestamp >= from
                                && r.timestamp < to
                                && r.correlation == Some(0)
                                && r.topic.as_str() == "x.a"
                        })
                        .map(|r| r.seq)
                        .collect();
                    let skip = expected.len().saturating_sub(limit);
                    expected.drain(..skip);
                    assert_eq!(seqs(&got), expected, "from {from} to {to} limit {limit}");
                }
            }
        }
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            HistoryError::CapacityTooLarge {
                capacity: 5,
                max: 4
            }
            .to_string(),
            "history capacity 5 exceeds the bound of 4"
        );
    }
}
