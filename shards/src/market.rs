//! Market data: the CQRS write side of one shard.
//!
//! The shard applies [`MarketUpdate`]s (trades: a key, a price, a volume) to its
//! [`MarketBook`] and publishes the resulting [`MarketState`] as fixed-size words
//! ([`MarketState::to_words`]) for readers on any thread.
//!
//! # Rules
//!
//! - **Volume must be at least 1** ([`MarketError::ZeroVolume`]): an update is a trade,
//!   and a quote without volume would leave the VWAP undefined. A price of 0 is allowed.
//! - **VWAP** is the volume-weighted average price of the updates of the last
//!   `window_nanos` (those stamped `at` with `now - at < window_nanos`), rounded down,
//!   computed exactly in `u128`. The points of the window are kept in a ring of at most
//!   `max_window_points` per key; when the ring is full the oldest point drops even if
//!   it is still inside the window, so the VWAP covers at most the last
//!   `max_window_points` updates. The latest update is always in the window, so the VWAP
//!   is always defined. It is computed as of the latest update (`updated_at`): a key
//!   that receives no update keeps its last VWAP.
//! - **Time per key never goes backwards**: an update whose `now` is before the key's
//!   `updated_at` is recorded at `updated_at`.
//! - **Overflow** of the key's total volume or update count is refused with
//!   [`MarketError::Overflow`] and changes nothing. The window sums are `u128` and
//!   cannot overflow once the total volume fits in a `u64` (they are checked anyway).
//! - **Bounded**: at most `max_keys` keys ([`MarketError::TooManyKeys`] for a new key
//!   beyond) and `max_window_points` points per key, so memory is at most about
//!   `max_keys * (max_window_points * 24 + 100)` bytes.
//!
//! ```
//! use mabeam_shards::market::{MarketBook, MarketLimits, MarketUpdate};
//!
//! let mut book = MarketBook::new(MarketLimits::default())?;
//! book.apply(MarketUpdate { key: 7, price: 100, volume: 1 }, 10)?;
//! let state = book.apply(MarketUpdate { key: 7, price: 200, volume: 3 }, 20)?;
//! assert_eq!((state.last_price, state.vwap, state.total_volume), (200, 175, 4));
//! # Ok::<(), mabeam_shards::market::MarketError>(())
//! ```

use std::collections::VecDeque;
use std::fmt;

use hashbrown::HashMap;

/// One trade to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarketUpdate {
    /// What was traded (an instrument, a category, …).
    pub key: u64,
    /// Price in minor units.
    pub price: u64,
    /// Quantity traded (at least 1).
    pub volume: u64,
}

/// Bounds and window of a [`MarketBook`] (`#[non_exhaustive]`: start from
/// [`MarketLimits::default()`] and use the `with_*` setters or assign fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MarketLimits {
    /// Most keys (at least 1).
    pub max_keys: usize,
    /// Length of the VWAP window in nanoseconds (at least 1).
    pub window_nanos: u64,
    /// Most points kept per key for the VWAP (at least 1).
    pub max_window_points: usize,
}

impl MarketLimits {
    /// Sets [`max_keys`](Self::max_keys).
    #[must_use]
    pub fn with_max_keys(mut self, value: usize) -> Self {
        self.max_keys = value;
        self
    }

    /// Sets [`window_nanos`](Self::window_nanos).
    #[must_use]
    pub fn with_window_nanos(mut self, value: u64) -> Self {
        self.window_nanos = value;
        self
    }

    /// Sets [`max_window_points`](Self::max_window_points).
    #[must_use]
    pub fn with_max_window_points(mut self, value: usize) -> Self {
        self.max_window_points = value;
        self
    }
}

impl Default for MarketLimits {
    /// 16 384 keys, a 60 s window, 64 points per key (about 26 MB at most).
    fn default() -> Self {
        MarketLimits {
            max_keys: 16_384,
            window_nanos: 60_000_000_000,
            max_window_points: 64,
        }
    }
}

/// What a market call refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MarketError {
    /// The update has volume 0.
    ZeroVolume {
        /// The key of the update.
        key: u64,
    },
    /// The update would overflow a counter or a sum of this key.
    Overflow {
        /// The key of the update.
        key: u64,
    },
    /// The update names a new key and the book already holds `limit` keys.
    TooManyKeys {
        /// The bound that was hit.
        limit: usize,
    },
    /// A [`MarketLimits`] field is 0 (named here).
    InvalidLimits(&'static str),
    /// The engine could not carry out the call (shut down, busy, handler failure).
    Engine(crate::Error),
}

impl fmt::Display for MarketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MarketError::Engine(e) => e.fmt(f),
            MarketError::ZeroVolume { key } => {
                write!(f, "market update for key {key} has volume 0")
            }
            MarketError::Overflow { key } => write!(f, "market update for key {key} overflows"),
            MarketError::TooManyKeys { limit } => {
                write!(f, "market book already holds its maximum of {limit} keys")
            }
            MarketError::InvalidLimits(field) => {
                write!(f, "market limit {field} must be at least 1")
            }
        }
    }
}

impl std::error::Error for MarketError {}

/// Number of `u64` words of an encoded [`MarketState`].
pub const MARKET_WORDS: usize = 8;

/// The published state of one key, as of its latest update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MarketState {
    /// The key.
    pub key: u64,
    /// Price of the latest update.
    pub last_price: u64,
    /// Volume-weighted average price over the window, rounded down.
    pub vwap: u64,
    /// Volume inside the window (the VWAP's weight).
    pub window_volume: u64,
    /// Updates inside the window (at most `max_window_points`).
    pub window_points: u64,
    /// Volume of every update ever applied to the key.
    pub total_volume: u64,
    /// Number of updates ever applied to the key (at least 1).
    pub update_count: u64,
    /// Time of the latest update.
    pub updated_at: u64,
}

impl MarketState {
    /// Encodes the state as fixed-size words (for a seqlock slot):
    /// `[key, last_price, vwap, window_volume, window_points, total_volume,
    /// update_count, updated_at]`.
    pub fn to_words(&self) -> [u64; MARKET_WORDS] {
        [
            self.key,
            self.last_price,
            self.vwap,
            self.window_volume,
            self.window_points,
            self.total_volume,
            self.update_count,
            self.updated_at,
        ]
    }

    /// Decodes words written by [`to_words`](Self::to_words); `None` for words no state
    /// encodes (an update count of 0, as in an all-zero record).
    ///
    /// ```
    /// use mabeam_shards::market::{MarketState, MARKET_WORDS};
    ///
    /// assert_eq!(MarketState::from_words(&[0; MARKET_WORDS]), None);
    /// ```
    #[inline]
    pub fn from_words(words: &[u64; MARKET_WORDS]) -> Option<Self> {
        let [key, last_price, vwap, window_volume, window_points, total_volume, update_count, updated_at] =
            *words;
        if update_count == 0 {
            return None;
        }
        Some(MarketState {
            key,
            last_price,
            vwap,
            window_volume,
            window_points,
            total_volume,
            update_count,
            updated_at,
        })
    }
}

/// One update inside a key's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    at: u64,
    price: u64,
    volume: u64,
}

impl Point {
    fn value(&self) -> u128 {
        u128::from(self.price) * u128::from(self.volume)
    }
}

/// A key's state and window. Invariant: `sum_value` and `sum_volume` are the sums of
/// `price * volume` and `volume` over `points`, and `points` is ordered by `at`.
#[derive(Debug, Clone)]
struct Series {
    state: MarketState,
    points: VecDeque<Point>,
    sum_value: u128,
    sum_volume: u128,
}

/// The market data of one shard: per key, the latest state and a bounded VWAP window.
/// See the [module docs](self) for the rules.
#[derive(Debug, Clone)]
pub struct MarketBook {
    limits: MarketLimits,
    series: HashMap<u64, Series>,
}

impl MarketBook {
    /// An empty book; refuses a limit of 0 ([`MarketError::InvalidLimits`]).
    pub fn new(limits: MarketLimits) -> Result<Self, MarketError> {
        if limits.max_keys == 0 {
            return Err(MarketError::InvalidLimits("max_keys"));
        }
        if limits.window_nanos == 0 {
            return Err(MarketError::InvalidLimits("window_nanos"));
        }
        if limits.max_window_points == 0 {
            return Err(MarketError::InvalidLimits("max_window_points"));
        }
        Ok(MarketBook {
            limits,
            series: HashMap::new(),
        })
    }

    /// The bounds of this book.
    pub fn limits(&self) -> MarketLimits {
        self.limits
    }

    /// Applies a trade at `now` and returns the key's new state. A refused update changes
    /// nothing.
    pub fn apply(&mut self, update: MarketUpdate, now: u64) -> Result<MarketState, MarketError> {
        let key = update.key;
        if update.volume == 0 {
            return Err(MarketError::ZeroVolume { key });
        }
        let overflow = MarketError::Overflow { key };
        let existing = self.series.get(&key);
        if existing.is_none() && self.series.len() >= self.limits.max_keys {
            return Err(MarketError::TooManyKeys {
                limit: self.limits.max_keys,
            });
        }
        let point = Point {
            at: existing.map_or(now, |s| now.max(s.state.updated_at)),
            price: update.price,
            volume: update.volume,
        };

        // Validate on the side: which points leave the window, and the new sums.
        let (mut drop, mut value, mut volume, total_volume, update_count) = match existing {
            None => (0, 0u128, 0u128, 0u64, 0u64),
            Some(s) => (
                0,
                s.sum_value,
                s.sum_volume,
                s.state.total_volume,
                s.state.update_count,
            ),
        };
        if let Some(s) = existing {
            for p in &s.points {
                let expired = point.at - p.at >= self.limits.window_nanos;
                let full = s.points.len() - drop >= self.limits.max_window_points;
                if !(expired || full) {
                    break;
                }
                value -= p.value();
                volume -= u128::from(p.volume);
                drop += 1;
            }
        }
        let value = value.checked_add(point.value()).ok_or(overflow)?;
        let volume = volume
            .checked_add(u128::from(point.volume))
            .ok_or(overflow)?;
        let total_volume = total_volume.checked_add(point.volume).ok_or(overflow)?;
        let update_count = update_count.checked_add(1).ok_or(overflow)?;
        let vwap = u64::try_from(value / volume)
            .expect("a volume-weighted average of u64 prices is at most the largest price");
        let window_volume =
            u64::try_from(volume).expect("the window volume is at most the total volume, a u64");

        // Commit.
        let series = self.series.entry(key).or_insert_with(|| Series {
            state: MarketState {
                key,
                last_price: 0,
                vwap: 0,
                window_volume: 0,
                window_points: 0,
                total_volume: 0,
                update_count: 0,
                updated_at: 0,
            },
            points: VecDeque::new(),
            sum_value: 0,
            sum_volume: 0,
        });
        series.points.drain(..drop);
        series.points.push_back(point);
        series.sum_value = value;
        series.sum_volume = volume;
        series.state = MarketState {
            key,
            last_price: point.price,
            vwap,
            window_volume,
            window_points: series.points.len() as u64,
            total_volume,
            update_count,
            updated_at: point.at,
        };
        Ok(series.state)
    }

    /// The state of `key`, if it has had an update.
    pub fn state(&self, key: u64) -> Option<MarketState> {
        self.series.get(&key).map(|s| s.state)
    }

    /// Forgets `key` (frees its slot under `max_keys`) and returns its last state.
    pub fn remove(&mut self, key: u64) -> Option<MarketState> {
        self.series.remove(&key).map(|s| s.state)
    }

    /// States of every key, in no particular order.
    pub fn states(&self) -> impl Iterator<Item = MarketState> + '_ {
        self.series.values().map(|s| s.state)
    }

    /// Every key's state and VWAP window `(at, price, volume)`, oldest first, for
    /// export.
    pub fn windows(&self) -> impl Iterator<Item = (MarketState, Vec<(u64, u64, u64)>)> + '_ {
        self.series.values().map(|s| {
            let points = s.points.iter().map(|p| (p.at, p.price, p.volume)).collect();
            (s.state, points)
        })
    }

    /// Puts an exported key back (see [`windows`](Self::windows)), checking it against
    /// this book's bounds and its own sums; the error says what is wrong. A key present
    /// already is refused.
    pub fn adopt(
        &mut self,
        state: MarketState,
        points: &[(u64, u64, u64)],
    ) -> Result<(), &'static str> {
        if self.series.contains_key(&state.key) {
            return Err("market key twice");
        }
        if self.series.len() >= self.limits.max_keys {
            return Err("more market keys than max_keys");
        }
        if points.is_empty() || points.len() > self.limits.max_window_points {
            return Err("market window empty or above max_window_points");
        }
        let mut value = 0u128;
        let mut volume = 0u128;
        let mut last_at = 0;
        for &(at, price, vol) in points {
            if at < last_at || vol == 0 {
                return Err("market window out of order or with zero volume");
            }
            last_at = at;
            value = value
                .checked_add(u128::from(price) * u128::from(vol))
                .ok_or("market window overflows")?;
            volume += u128::from(vol);
        }
        let last = points[points.len() - 1];
        let consistent = state.window_points == points.len() as u64
            && u128::from(state.window_volume) == volume
            && u128::from(state.vwap) == value / volume
            && state.last_price == last.1
            && state.updated_at == last.0
            && state.total_volume >= state.window_volume
            && state.update_count >= state.window_points;
        if !consistent {
            return Err("market state does not match its window");
        }
        self.series.insert(
            state.key,
            Series {
                state,
                points: points
                    .iter()
                    .map(|&(at, price, volume)| Point { at, price, volume })
                    .collect(),
                sum_value: value,
                sum_volume: volume,
            },
        );
        Ok(())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True if no key has had an update.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl From<crate::Error> for MarketError {
    fn from(e: crate::Error) -> Self {
        MarketError::Engine(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(max_keys: usize, window_nanos: u64, max_window_points: usize) -> MarketBook {
        MarketBook::new(MarketLimits {
            max_keys,
            window_nanos,
            max_window_points,
        })
        .unwrap()
    }

    fn up(key: u64, price: u64, volume: u64) -> MarketUpdate {
        MarketUpdate { key, price, volume }
    }

    #[test]
    fn vwap_is_volume_weighted_and_rounded_down() {
        let mut b = book(10, 1_000, 16);
        let s = b.apply(up(1, 100, 2), 0).unwrap();
        assert_eq!(
            (s.vwap, s.last_price, s.window_volume, s.window_points),
            (100, 100, 2, 1)
        );
        let s = b.apply(up(1, 101, 1), 1).unwrap();
        // (200 + 101) / 3 = 100.33 -> 100
        assert_eq!(
            (s.vwap, s.last_price, s.total_volume, s.update_count),
            (100, 101, 3, 2)
        );
        let s = b.apply(up(1, 103, 1), 2).unwrap();
        // (200 + 101 + 103) / 4 = 101
        assert_eq!(s.vwap, 101);
        assert_eq!(s.updated_at, 2);
        assert_eq!(b.state(1), Some(s));
        assert_eq!(b.state(2), None);
    }

    #[test]
    fn points_leave_the_window_after_window_nanos() {
        let mut b = book(10, 100, 16);
        b.apply(up(1, 1_000, 1), 0).unwrap();
        let s = b.apply(up(1, 2_000, 1), 99).unwrap();
        assert_eq!((s.vwap, s.window_points), (1_500, 2));
        // At 100 the point stamped 0 is out: now - at = 100 >= window.
        let s = b.apply(up(1, 3_000, 1), 100).unwrap();
        assert_eq!((s.vwap, s.window_points, s.window_volume), (2_500, 2, 2));
        let s = b.apply(up(1, 10, 5), 1_000).unwrap();
        assert_eq!((s.vwap, s.window_points, s.window_volume), (10, 1, 5));
        assert_eq!((s.total_volume, s.update_count), (8, 4));
    }

    #[test]
    fn full_ring_drops_the_oldest_point() {
        let mut b = book(10, u64::MAX, 3);
        for (i, price) in [10, 20, 30].into_iter().enumerate() {
            b.apply(up(1, price, 1), i as u64).unwrap();
        }
        let s = b.apply(up(1, 40, 1), 3).unwrap();
        assert_eq!((s.vwap, s.window_points), (30, 3)); // (20 + 30 + 40) / 3
        let s = b.apply(up(1, 50, 1), 4).unwrap();
        assert_eq!((s.vwap, s.window_points, s.update_count), (40, 3, 5));
    }

    #[test]
    fn time_going_backwards_is_clamped_per_key() {
        let mut b = book(10, 100, 16);
        b.apply(up(1, 10, 1), 500).unwrap();
        let s = b.apply(up(1, 20, 1), 400).unwrap();
        assert_eq!((s.updated_at, s.window_points, s.vwap), (500, 2, 15));
        // Another key has its own time.
        assert_eq!(b.apply(up(2, 5, 1), 0).unwrap().updated_at, 0);
    }

    #[test]
    fn zero_volume_overflow_and_key_bound_are_refused_without_change() {
        let mut b = book(2, 1_000, 16);
        assert_eq!(
            b.apply(up(1, 10, 0), 0),
            Err(MarketError::ZeroVolume { key: 1 })
        );
        assert!(b.is_empty());
        b.apply(up(1, 10, u64::MAX - 1), 0).unwrap();
        let before = b.state(1);
        assert_eq!(
            b.apply(up(1, 10, 2), 1),
            Err(MarketError::Overflow { key: 1 })
        );
        assert_eq!(b.state(1), before);
        b.apply(up(1, 10, 1), 1).unwrap();

        b.apply(up(2, u64::MAX, u64::MAX), 0).unwrap();
        assert_eq!(b.state(2).unwrap().vwap, u64::MAX);
        assert_eq!(
            b.apply(up(3, 1, 1), 0),
            Err(MarketError::TooManyKeys { limit: 2 })
        );
        assert_eq!(b.len(), 2);
        assert!(b.remove(1).is_some());
        b.apply(up(3, 1, 1), 0).unwrap();
        assert_eq!(b.states().count(), 2);
    }

    #[test]
    fn extreme_prices_and_volumes_stay_exact() {
        // The window's value sum is at most u64::MAX * u64::MAX < 2^128 because the
        // total volume is a checked u64: extreme trades give an exact VWAP.
        let mut b = book(2, u64::MAX, 16);
        b.apply(up(1, u64::MAX, u64::MAX - 1), 0).unwrap();
        let s = b.apply(up(1, u64::MAX - 1, 1), 1).unwrap();
        assert_eq!(
            (s.vwap, s.total_volume, s.window_volume),
            (u64::MAX - 1, u64::MAX, u64::MAX)
        );
        assert_eq!(
            b.apply(up(1, u64::MAX, 1), 2),
            Err(MarketError::Overflow { key: 1 })
        );
        assert_eq!(b.state(1), Some(s));
    }

    #[test]
    fn window_stays_bounded_under_many_updates() {
        let mut b = book(4, 1_000_000, 8);
        for i in 0..10_000u64 {
            let s = b.apply(up(i % 4, 100 + i % 7, 1 + i % 3), i).unwrap();
            assert!(s.window_points <= 8);
        }
        assert!(b.series.values().all(|s| s.points.len() <= 8));
    }

    #[test]
    fn limits_are_validated() {
        let ok = MarketLimits::default();
        assert!(MarketBook::new(ok).is_ok());
        let cases = [
            (MarketLimits { max_keys: 0, ..ok }, "max_keys"),
            (
                MarketLimits {
                    window_nanos: 0,
                    ..ok
                },
                "window_nanos",
            ),
            (
                MarketLimits {
                    max_window_points: 0,
                    ..ok
                },
                "max_window_points",
            ),
        ];
        for (limits, field) in cases {
            assert_eq!(
                MarketBook::new(limits).err(),
                Some(MarketError::InvalidLimits(field))
            );
        }
        assert_eq!(
            MarketError::InvalidLimits("max_keys").to_string(),
            "market limit max_keys must be at least 1"
        );
    }

    #[test]
    fn words_round_trip() {
        let mut b = book(10, 1_000, 16);
        b.apply(up(u64::MAX, 7, 3), 11).unwrap();
        let s = b.apply(up(u64::MAX, 9, 1), 12).unwrap();
        assert_eq!(MarketState::from_words(&s.to_words()), Some(s));
        assert_eq!(MarketState::from_words(&[0; MARKET_WORDS]), None);
    }
}
