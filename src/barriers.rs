//! Barriers: reusable counting barriers with atomic arrivals and park/unpark wakeups.
//!
//! A barrier is an atomic counter with a generation ([`mabeam_shards::barrier`]): an
//! arrival is one atomic operation; the last arrival of a generation resets the count,
//! bumps the generation and unparks the parked waiters, which spin briefly
//! (`Config::barrier_spin`, only with no more parties than cores) and yield the core a
//! few times (`Config::barrier_yields`) before they park. A waiter that times out before its generation completes takes its arrival
//! back. Shutting the engine down wakes every waiter with `ShutDown`. The leader of
//! each generation publishes `coordination.barrier.reached`.
//!
//! Barriers are kept by id in an engine-wide map (a lock taken on create and on
//! wait-by-id lookups, never on the waiting itself); at most
//! `Config::max_barriers` exist at once, and [`Barriers::remove`] frees an id.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashMap;
pub use mabeam_shards::barrier::{Arrival, MAX_PARTIES};
use mabeam_shards::barrier::{Backoff, BarrierCell, BarrierCellError, BarrierWaitError};
use parking_lot::RwLock;

use crate::engine::Inner;
use crate::events::{Events, Payload};
use crate::Error;

/// Why a barrier call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BarrierError {
    /// A barrier needs at least one party.
    ZeroParties,
    /// More parties than [`MAX_PARTIES`].
    TooManyParties {
        /// The refused count.
        parties: usize,
    },
    /// A barrier with this id exists.
    AlreadyExists {
        /// The id.
        id: u64,
    },
    /// No barrier with this id.
    NotFound {
        /// The id.
        id: u64,
    },
    /// `Config::max_barriers` barriers exist.
    TooManyBarriers {
        /// The bound.
        limit: usize,
    },
    /// The wait timed out before the generation completed; the arrival was taken back.
    Timeout,
    /// The engine shut down while waiting (or before).
    ShutDown,
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroParties => f.write_str("a barrier needs at least one party"),
            Self::TooManyParties { parties } => {
                write!(f, "{parties} parties, at most {MAX_PARTIES}")
            }
            Self::AlreadyExists { id } => write!(f, "barrier {id} already exists"),
            Self::NotFound { id } => write!(f, "no barrier {id}"),
            Self::TooManyBarriers { limit } => write!(f, "at most {limit} barriers"),
            Self::Timeout => f.write_str("timed out at the barrier (arrival taken back)"),
            Self::ShutDown => f.write_str("the engine has shut down"),
        }
    }
}

impl std::error::Error for BarrierError {}

impl From<Error> for BarrierError {
    fn from(_: Error) -> Self {
        Self::ShutDown
    }
}

impl From<BarrierWaitError> for BarrierError {
    fn from(e: BarrierWaitError) -> Self {
        match e {
            BarrierWaitError::Timeout => Self::Timeout,
            BarrierWaitError::ShutDown => Self::ShutDown,
        }
    }
}

/// The engine-wide map of barriers.
#[derive(Default)]
pub(crate) struct BarrierMap {
    map: RwLock<HashMap<u64, Arc<BarrierCell>>>,
    /// `coordination.barrier.reached` events the engine refused (see [`Barrier::wait`]).
    refused_events: std::sync::atomic::AtomicU64,
}

impl BarrierMap {
    /// Barriers in the map (for [`Testing::barriers`](crate::testing::Testing::barriers)).
    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Wakes every waiter of every barrier with `ShutDown`.
    /// Every barrier's parties and generation, by id (for an export).
    pub(crate) fn export(&self) -> Vec<crate::state::BarrierRecord> {
        let mut out: Vec<_> = self
            .map
            .read()
            .iter()
            .map(|(&id, cell)| crate::state::BarrierRecord {
                id,
                parties: u32::try_from(cell.parties()).unwrap_or(u32::MAX),
                generation: cell.generation(),
            })
            .collect();
        out.sort_by_key(|b| b.id);
        out
    }

    /// Adds restored barriers (before the engine runs); refuses bad parties or an id twice.
    pub(crate) fn restore(
        &self,
        records: &[crate::state::BarrierRecord],
    ) -> Result<(), crate::state::RestoreError> {
        let bad = |reason| crate::state::RestoreError::Invalid {
            part: "barriers",
            reason,
        };
        let mut map = self.map.write();
        for r in records {
            let cell = BarrierCell::with_generation(r.parties as usize, r.generation)
                .map_err(|_| bad("parties outside 1..=MAX_PARTIES"))?;
            if map.insert(r.id, Arc::new(cell)).is_some() {
                return Err(bad("an id twice"));
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(&self) {
        for cell in self.map.read().values() {
            cell.shutdown();
        }
    }
}

/// A handle to one barrier; cheap to clone and send to the threads that meet there.
#[derive(Clone)]
pub struct Barrier {
    id: u64,
    cell: Arc<BarrierCell>,
    inner: Arc<Inner>,
    backoff: Backoff,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("id", &self.id)
            .field("parties", &self.cell.parties())
            .field("generation", &self.cell.generation())
            .finish()
    }
}

impl Barrier {
    /// The barrier's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of parties per generation.
    pub fn parties(&self) -> usize {
        self.cell.parties()
    }

    /// The generation now collecting arrivals.
    pub fn generation(&self) -> u64 {
        self.cell.generation()
    }

    /// Waits until `parties` threads have arrived in this generation, or `timeout`
    /// passes (then the arrival is taken back and `Timeout` returned, unless the
    /// generation completed meanwhile, which is then a success).
    ///
    /// The leader of a generation then publishes `coordination.barrier.reached`: a
    /// fire-and-forget write like any host's, so it waits for mailbox room (up to
    /// `Config::send_timeout`) instead of the event being dropped. An event refused even
    /// so (the shard stayed full, or the engine shut down) is counted in
    /// [`Barriers::refused_events`]; the arrival is returned all the same.
    pub fn wait(&self, timeout: Duration) -> Result<Arrival, BarrierError> {
        let arrival = self.cell.wait_timeout(self.backoff, timeout)?;
        if arrival.is_leader {
            let raised = Events::new(&self.inner).raise(
                "coordination.barrier.reached",
                Payload::BarrierReached {
                    barrier: self.id,
                    generation: arrival.generation,
                },
                Some(self.id),
            );
            if raised.is_err() {
                self.inner
                    .barriers
                    .refused_events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(arrival)
    }
}

/// The barriers of an engine; get it with [`Engine::barriers`](crate::EngineHandle::barriers).
///
/// ```
/// use std::time::Duration;
/// let engine = mabeam::Engine::start(mabeam::Config::default().with_shards(1).with_pin_threads(false))?;
/// let barrier = engine.barriers().create(1, 2)?;
/// let other = barrier.clone();
/// let t = std::thread::spawn(move || other.wait(Duration::from_secs(10)));
/// let mine = barrier.wait(Duration::from_secs(10))?;
/// let theirs = t.join().unwrap()?;
/// assert_eq!(mine.generation, theirs.generation);
/// assert!(mine.is_leader != theirs.is_leader);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Barriers<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Barriers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Barriers", f)
    }
}

impl<'e> Barriers<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Creates barrier `id` for `parties` parties.
    pub fn create(&self, id: u64, parties: usize) -> Result<Barrier, BarrierError> {
        self.inner.check_open()?;
        let cell = BarrierCell::new(parties).map_err(|e| match e {
            BarrierCellError::ZeroParties => BarrierError::ZeroParties,
            BarrierCellError::TooManyParties { .. } => BarrierError::TooManyParties { parties },
        })?;
        let cell = Arc::new(cell);
        let limit = self.inner.config.max_barriers;
        let mut map = self.inner.barriers.map.write();
        if map.contains_key(&id) {
            return Err(BarrierError::AlreadyExists { id });
        }
        if map.len() >= limit {
            return Err(BarrierError::TooManyBarriers { limit });
        }
        // Checked again under the lock: shutdown wakes the barriers in the map, so one
        // added after it would never be woken.
        self.inner.check_open()?;
        map.insert(id, cell.clone());
        Ok(self.handle(id, cell))
    }

    fn handle(&self, id: u64, cell: Arc<BarrierCell>) -> Barrier {
        let spins = if cell.parties() <= self.inner.cores {
            self.inner.config.barrier_spin
        } else {
            0
        };
        let backoff = Backoff {
            spins,
            yields: self.inner.config.barrier_yields,
        };
        Barrier {
            id,
            cell,
            inner: self.inner.clone(),
            backoff,
        }
    }

    /// The barrier with this id.
    pub fn get(&self, id: u64) -> Result<Barrier, BarrierError> {
        self.inner.check_open()?;
        let cell = self
            .inner
            .barriers
            .map
            .read()
            .get(&id)
            .cloned()
            .ok_or(BarrierError::NotFound { id })?;
        Ok(self.handle(id, cell))
    }

    /// Waits at barrier `id` (the original's `wait_at_barrier(barrier_id,
    /// participant_id)`; the participant is the calling thread).
    pub fn wait(&self, id: u64, timeout: Duration) -> Result<Arrival, BarrierError> {
        self.get(id)?.wait(timeout)
    }

    /// `coordination.barrier.reached` events refused (by a shard that stayed full for the
    /// whole send timeout, or by shutdown) since the engine started.
    pub fn refused_events(&self) -> u64 {
        self.inner
            .barriers
            .refused_events
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets barrier `id`; handles already held keep working.
    pub fn remove(&self, id: u64) -> Result<(), BarrierError> {
        self.inner
            .barriers
            .map
            .write()
            .remove(&id)
            .map(drop)
            .ok_or(BarrierError::NotFound { id })
    }
}
