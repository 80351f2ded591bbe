//! The engine's clock: monotonic nanoseconds since the engine started, or a manual clock
//! that tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the engine reads time from. Every deadline, timestamp and Dutch price clock in
/// mabeam is a `u64` of nanoseconds read from here.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Monotonic time since the clock was created (`Instant`).
    System(Instant),
    /// Time set by hand; see [`ManualClock`].
    Manual(ManualClock),
}

impl Default for Clock {
    fn default() -> Self {
        Self::System(Instant::now())
    }
}

impl Clock {
    /// Nanoseconds since the clock's origin.
    #[inline]
    pub fn now(&self) -> u64 {
        match self {
            Self::System(origin) => u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Self::Manual(m) => m.now(),
        }
    }

    /// How long a shard may block waiting for mail before a timer at `deadline` is due;
    /// `None` for a manual clock, whose time only moves by hand (tests follow a clock
    /// change with `Engine::flush`, which runs the shards' timers).
    pub(crate) fn until(&self, deadline: u64) -> Option<Duration> {
        match self {
            Self::System(_) => Some(Duration::from_nanos(deadline.saturating_sub(self.now()))),
            Self::Manual(_) => None,
        }
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use mabeam::ManualClock;
/// let clock = ManualClock::new(0);
/// clock.advance(std::time::Duration::from_millis(5));
/// assert_eq!(clock.now(), 5_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `nanos`.
    pub fn new(nanos: u64) -> Self {
        Self(Arc::new(AtomicU64::new(nanos)))
    }

    /// The current reading in nanoseconds.
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Sets the reading; a clock never goes back, so an earlier value is ignored.
    pub fn set(&self, nanos: u64) {
        self.0.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(by))
            });
    }
}
