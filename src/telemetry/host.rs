//! What host threads record: per thread and engine, a [`HostSlot`] that only that thread
//! writes — snapshot reads per read operation (every one, exact), refusals of calls by
//! operation and engine error kind, and round trips of acknowledged calls (one call in
//! `sample_every` per thread, from the send to the moment the caller takes the result:
//! queueing, apply and wake-up). Readers sum every slot.
//!
//! When a thread ends, its slot goes back to its engine's free list with its counts in
//! it, and the next thread that touches the engine takes it over (the counts are sums,
//! so whose they were does not matter): an engine holds at most as many slots as
//! threads ever used it **at once**, whatever the number of threads over its life, and
//! a thread's first call costs no allocation once a slot is free.
//!
//! No lock and no shared cache line on the recording path: each slot is its own
//! allocation, padded to its own cache lines, owned by one thread at a time, found
//! through a one-entry thread-local cache (engine id → slot). Taking and giving back a
//! slot are lock-free queue operations (crossbeam's `SegQueue`); only readers take a
//! lock (among themselves).
//!
//! Tickets pending are counted process-wide (every engine's), by the same rule: each
//! thread counts the tickets it created and the ones it dropped, in counters of its own
//! (reused by later threads the same way).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use crossbeam::queue::SegQueue;
use crossbeam::utils::CachePadded;
use parking_lot::Mutex;

use super::histogram::{AtomicHistogram, Hdr};
use super::ops::{ENGINE_KINDS, OP_COUNT, READ_COUNT};

/// One thread's figures for one engine.
pub(crate) struct HostSlot {
    reads: [AtomicU64; READ_COUNT],
    refusals: [[AtomicU64; ENGINE_KINDS.len()]; OP_COUNT],
    round_trips: [std::sync::OnceLock<Box<AtomicHistogram>>; OP_COUNT],
}

impl Default for HostSlot {
    fn default() -> Self {
        Self {
            reads: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            round_trips: std::array::from_fn(|_| std::sync::OnceLock::new()),
        }
    }
}

/// A slot as threads and the engine hold it: on cache lines of its own.
type Slot = CachePadded<HostSlot>;

impl HostSlot {
    /// Records a round trip of operation `op` that took `nanos`.
    fn round_trip(&self, op: usize, nanos: u64) {
        if let Some(h) = self.round_trips.get(op) {
            h.get_or_init(Default::default).record(nanos);
        }
    }
}

/// Engine ids, so a thread's cache never mistakes a new engine for a dropped one.
static NEXT_ENGINE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The slot this thread used last: `(engine id, slot)`. The pointer is kept alive by
    /// `OWNED`, which clears this cache before it drops.
    static CACHE: Cell<(u64, *const Slot)> = const { Cell::new((0, std::ptr::null())) };
    /// Countdown to this thread's next timed call.
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
    /// The slots this thread holds, by engine id.
    static OWNED: Owned = const { Owned(RefCell::new(Vec::new())) };
    /// Tickets this thread created and dropped (process-wide figures).
    static TICKETS: TicketLocal = TicketLocal(TICKET_FREE.pop().unwrap_or_else(|| {
        let c = Arc::new(TicketCounts::default());
        TICKET_ALL.push(c.clone());
        c
    }));
}

/// This thread's slots, by engine id, with the engine's registry; dropping it (at
/// thread exit) clears the cache first, then gives each slot back to its engine.
struct Owned(RefCell<Vec<OwnedSlot>>);

/// One of this thread's slots: the engine's id, the slot, the engine's registry.
type OwnedSlot = (u64, Arc<Slot>, Weak<HostShared>);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = CACHE.try_with(|c| c.set((0, std::ptr::null())));
        for (_, slot, shared) in self.0.borrow_mut().drain(..) {
            if let Some(shared) = shared.upgrade() {
                // The push publishes this thread's last writes to the next owner.
                shared.free.push(slot);
            }
        }
    }
}

/// This thread's ticket counters; at thread exit they go back to `TICKET_FREE`.
struct TicketLocal(Arc<TicketCounts>);

impl Drop for TicketLocal {
    fn drop(&mut self) {
        TICKET_FREE.push(self.0.clone());
    }
}

/// One thread's ticket counters.
#[derive(Default)]
struct TicketCounts {
    created: CachePadded<AtomicU64>,
    dropped: AtomicU64,
}

/// Every thread's ticket counters ever made (at most one per thread alive at once).
static TICKET_ALL: SegQueue<Arc<TicketCounts>> = SegQueue::new();
/// Those whose thread ended, for the next thread to take over.
static TICKET_FREE: SegQueue<Arc<TicketCounts>> = SegQueue::new();
/// Readers of `TICKET_ALL` (which they empty and refill), one at a time.
static TICKET_READERS: Mutex<()> = Mutex::new(());

/// Adds one to a counter only this thread writes.
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// A ticket was created on this thread.
#[inline]
pub(crate) fn ticket_created() {
    let _ = TICKETS.try_with(|t| bump(&t.0.created));
}

/// A ticket was dropped on this thread.
#[inline]
pub(crate) fn ticket_dropped() {
    let _ = TICKETS.try_with(|t| bump(&t.0.dropped));
}

/// Tickets created and not yet dropped, process-wide (every engine's).
pub(crate) fn tickets_pending() -> u64 {
    let _reader = TICKET_READERS.lock();
    let mut all = Vec::new();
    while let Some(t) = TICKET_ALL.pop() {
        all.push(t);
    }
    let mut pending = 0u64;
    for t in all {
        let n = t
            .created
            .load(Ordering::Relaxed)
            .wrapping_sub(t.dropped.load(Ordering::Relaxed));
        pending = pending.wrapping_add(n);
        TICKET_ALL.push(t);
    }
    // A ticket created on one thread and dropped on another counts on both: the sum is
    // exact, a thread's share is not.
    // Counters of different threads are read at different moments, so the sum can
    // briefly dip below zero (a drop seen, its creation not yet): that reads as 0.
    u64::try_from(pending as i64).unwrap_or(0)
}

/// A sampled call's round trip in flight, carried by its ticket.
pub(crate) struct Timing {
    op: u16,
    start: Instant,
    slot: Arc<Slot>,
}

impl Timing {
    /// The result was taken: records the round trip.
    pub(crate) fn done(self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.slot.round_trip(self.op as usize, nanos);
    }
}

/// An engine's host-side figures; see the [module docs](self).
pub(crate) struct HostTelemetry {
    id: u64,
    enabled: bool,
    sample_every: u32,
    shared: Arc<HostShared>,
}

/// An engine's slots: every one made, and those whose thread ended.
struct HostShared {
    all: SegQueue<Arc<Slot>>,
    free: SegQueue<Arc<Slot>>,
    /// Readers empty and refill `all`, one at a time.
    readers: Mutex<()>,
}

/// What [`HostTelemetry::read`] sums.
pub(crate) struct HostFigures {
    pub reads: [u64; READ_COUNT],
    pub refusals: [[u64; ENGINE_KINDS.len()]; OP_COUNT],
    pub round_trips: Vec<Option<Hdr>>,
}

impl HostTelemetry {
    /// Host telemetry for a new engine; records nothing if `!enabled`.
    pub(crate) fn new(enabled: bool, sample_every: u32) -> Self {
        Self {
            id: NEXT_ENGINE.fetch_add(1, Ordering::Relaxed),
            enabled,
            sample_every: sample_every.max(1),
            shared: Arc::new(HostShared {
                all: SegQueue::new(),
                free: SegQueue::new(),
                readers: Mutex::new(()),
            }),
        }
    }

    /// True if it records.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Runs `f` on this thread's slot for this engine (creating it on first use).
    #[inline]
    fn with_slot<R>(&self, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        let (id, ptr) = CACHE.try_with(Cell::get).ok()?;
        if id == self.id && !ptr.is_null() {
            // SAFETY: the cache holds a pointer from an `Arc` in this thread's `OWNED`,
            // which keeps it alive and clears the cache before it drops; this thread is
            // the only one that reads the cache.
            return Some(f(unsafe { &*ptr }));
        }
        self.with_slot_slow(f)
    }

    #[cold]
    fn with_slot_slow<R>(&self, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        OWNED
            .try_with(|owned| {
                let mut owned = owned.0.borrow_mut();
                let slot = match owned.iter().find(|(id, _, _)| *id == self.id) {
                    Some((_, slot, _)) => slot.clone(),
                    None => {
                        // Slots of engines that are gone.
                        owned.retain(|(_, _, engine)| engine.strong_count() > 0);
                        // The pop takes over the last owner's writes (see `Owned::drop`).
                        let slot = self.shared.free.pop().unwrap_or_else(|| {
                            let slot = Arc::new(CachePadded::new(HostSlot::default()));
                            self.shared.all.push(slot.clone());
                            slot
                        });
                        owned.push((self.id, slot.clone(), Arc::downgrade(&self.shared)));
                        slot
                    }
                };
                let _ = CACHE.try_with(|c| c.set((self.id, Arc::as_ptr(&slot))));
                f(&slot)
            })
            .ok()
    }

    /// Counts a snapshot read of read operation `read`.
    #[inline]
    pub(crate) fn read(&self, read: usize) {
        if self.enabled {
            self.with_slot(|s| bump(&s.reads[read]));
        }
    }

    /// Counts a refusal of a command of operation `op` with engine error kind `kind`.
    pub(crate) fn refused(&self, op: usize, kind: usize) {
        if self.enabled {
            self.with_slot(|s| {
                if let Some(k) = s.refusals.get(op).and_then(|r| r.get(kind)) {
                    k.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    }

    /// For an acknowledged call of operation `op` being sent: a timing if this call is
    /// sampled (one in `sample_every` per thread).
    #[inline]
    pub(crate) fn time_call(&self, op: usize) -> Option<Timing> {
        if !self.enabled {
            return None;
        }
        let due = COUNTDOWN
            .try_with(|c| {
                let n = c.get();
                if n == 0 {
                    c.set(self.sample_every - 1);
                    true
                } else {
                    c.set(n - 1);
                    false
                }
            })
            .unwrap_or(false);
        if !due {
            return None;
        }
        let slot = self.with_slot(|s| {
            // SAFETY: `s` is the content of an `Arc<Slot>` this thread's `OWNED` holds
            // (the cache and the slow path both hand out such a reference), so the
            // strong count is at least 1 and may be incremented; the new count is
            // owned by the `Arc` built from it right after.
            let ptr: *const Slot = s;
            unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            }
        })?;
        Some(Timing {
            op: op as u16,
            start: Instant::now(),
            slot,
        })
    }

    /// Sums every thread's figures (folding the slots of ended threads into `retired`).
    pub(crate) fn read_all(&self) -> HostFigures {
        let shared = &*self.shared;
        let _reader = shared.readers.lock();
        let mut slots = Vec::new();
        while let Some(s) = shared.all.pop() {
            slots.push(s);
        }
        let mut figures = HostFigures {
            reads: [0; READ_COUNT],
            refusals: [[0; ENGINE_KINDS.len()]; OP_COUNT],
            round_trips: (0..OP_COUNT).map(|_| None).collect(),
        };
        for slot in slots.iter().map(|s| &**s) {
            for (sum, r) in figures.reads.iter_mut().zip(slot.reads.iter()) {
                *sum += r.load(Ordering::Relaxed);
            }
            for (sums, rs) in figures.refusals.iter_mut().zip(slot.refusals.iter()) {
                for (sum, r) in sums.iter_mut().zip(rs.iter()) {
                    *sum += r.load(Ordering::Relaxed);
                }
            }
            for (sum, h) in figures.round_trips.iter_mut().zip(slot.round_trips.iter()) {
                if let Some(h) = h.get() {
                    let sum = sum
                        .get_or_insert_with(|| super::histogram::hdr(super::histogram::MAX_NANOS));
                    h.add_to(sum);
                }
            }
        }
        for slot in slots {
            shared.all.push(slot);
        }
        figures
    }
}

impl std::fmt::Debug for HostTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostTelemetry")
            .field("enabled", &self.enabled)
            .field("slots", &self.shared.all.len())
            .finish()
    }
}
