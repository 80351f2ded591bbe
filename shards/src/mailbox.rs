//! A shard's mailbox: a bounded queue of weighted messages from any thread to one
//! consumer, with two admission limits, a control queue that never refuses for room, and
//! the close and death protocols that make shutdown lose and double nothing.
//!
//! # What it guarantees
//!
//! - **Accepted ⇔ consumed.** [`send`](Mailbox::send) returns `Ok` only for a message
//!   the consumer will pop before it sees the mailbox [drained](Mailbox::is_drained); it
//!   returns [`Refused::Closed`] only for a message that was never queued. So a consumer
//!   that keeps popping and [releasing](Mailbox::release) until `is_drained()` has taken
//!   every accepted message, and none of the refused ones.
//! - **Bounded queueing delay.** Every message has a weight (the commands it carries).
//!   A [`Class::Write`] (fire-and-forget) is admitted only while the weight queued is
//!   below the *backlog* (so at most `backlog - 1` plus its own weight is queued); a
//!   [`Class::Call`] (someone waits for its answer) while everything fits in `capacity`.
//!   So an acknowledged call waits behind at most one backlog of fire-and-forget work
//!   (and one message), however many writers push, and writers are pushed back instead.
//!   The consumer may move the backlog ([`set_backlog`](Mailbox::set_backlog)): the
//!   engine sets it from the shard's measured cost per command, to bound the queueing
//!   delay in time rather than in commands.
//! - **Backpressure without a storm.** A sender that finds no room first yields its
//!   core and retries, up to 16 times or until its deadline: the consumer frees room a
//!   batch at a time, and on a loaded machine it often runs in one of those yields, so
//!   the sender gets in without a sleep and a wake (where no other thread wants the
//!   core, a yield returns at once: 0.56 µs each, 9 µs for all 16, measured on the
//!   2-core machine). Then it waits on a condition variable until its deadline. The
//!   consumer notifies once per [`release`](Mailbox::release) and only when the queue
//!   has drained to half the waiting class's limit, so waiting senders cost the
//!   consumer one wake per batch, not one per message.
//!
//! # Protocol
//!
//! `load` holds two flags (CLOSED, DEAD) and the *reserved weight*: the weight of every
//! message admitted and not yet released by the consumer. A sender reserves with a CAS
//! that fails if a flag is set, then pushes, then rings the consumer's
//! [`Doorbell`]. The consumer pops, applies, and releases the weight. Closing sets CLOSED
//! with one `fetch_or`; from then on every reservation fails, and the reserved weight
//! only falls. A message that was admitted before CLOSED holds weight until the consumer
//! releases it, so `is_drained()` (CLOSED and no weight) cannot be true while an accepted
//! message is still unpopped — even one whose sender has reserved and not yet pushed
//! (the consumer then sees weight and no message, and retries). That is the fix of the
//! race where a sender passed a "shut?" check, the consumer saw an empty queue and
//! exited, and the accepted message was dropped.
//!
//! Death ([`kill`](Mailbox::kill)) is closing with a second flag: it is what a consumer
//! thread that unwinds does, so that senders get [`Refused::Dead`] instead of queueing
//! for nobody, and the queued messages are dropped (their answers resolve with an error).
//!
//! # Pause (the admission side of an export's consistent cut)
//!
//! [`pause`](Mailbox::pause) sets a third flag, PAUSED, in the same `load` word, so it
//! costs the hot path nothing (the reservation CAS already reads the word):
//!
//! - while it is set, no [`send`](Mailbox::send) reserves: senders wait for room as they
//!   would for a full mailbox (a [`Wait::No`] send is refused [`Refused::Full`], a
//!   waiting one gets in after [`resume`](Mailbox::resume) or runs out with `Full`);
//!   only [`send_exempt`](Mailbox::send_exempt) (the exporter's own markers) reserves;
//! - a [`send_control`](Mailbox::send_control) is still accepted at once (it never
//!   blocks), but a control message whose sender saw PAUSED goes to a *deferred* list,
//!   under a lock that [`resume`](Mailbox::resume) also takes; resume clears the flag and
//!   moves the list into the control queue in one critical section, so no deferred
//!   message is stranded and none reaches the consumer before the resume.
//!
//! Invariant the export builds on: once `pause()` has returned, every message the
//! consumer can still pop was admitted by a reservation (or control push) that read the
//! word *before* the flag was set — a sender's in-flight message, at most one per
//! sending thread — or is an exempt marker. Every later send of every thread waits (or
//! is deferred) until `resume`.

use core::fmt;
use core::time::Duration;
use std::time::Instant;

use crate::doorbell::Doorbell;
use crate::sync::UnboundedQueue;
use crate::sync::{
    fence, thread, Arc, AtomicU64, AtomicUsize, BoundedQueue, Condvar, Mutex, Ordering,
};

/// How many times a sender that finds no room yields its core and retries before it
/// waits on the condition variable (see "Backpressure without a storm" in the module
/// docs). Measured on the 2-core machine, default load run, 6 runs alternated (see
/// `BENCHMARKS.md`, "Yield before waiting"): 16 halved the create and bid max against 0.
/// Under the model checker one: the loop is the same code, and each retry multiplies
/// the interleavings loom explores.
#[cfg(not(mabeam_loom))]
const YIELDS_BEFORE_WAITING: u32 = 16;
#[cfg(mabeam_loom)]
const YIELDS_BEFORE_WAITING: u32 = 1;

/// Set once the mailbox is closed: no reservation succeeds any more.
const CLOSED: u64 = 1 << 63;
/// Set once the consumer died: no reservation succeeds, and queued messages are dropped.
const DEAD: u64 = 1 << 62;
/// Set while an export pauses admission: only exempt sends reserve, control messages are
/// deferred (see the module docs).
const PAUSED: u64 = 1 << 61;
/// The reserved weight.
const WEIGHT: u64 = PAUSED - 1;

/// Which admission limit a message is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Fire-and-forget: admitted while the reserved weight is below the backlog (and the
    /// message fits in `capacity`).
    Write,
    /// Someone waits for the answer: admitted while the reserved weight stays within
    /// `capacity`.
    Call,
}

/// How long a sender waits for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: [`Refused::Full`] at once.
    No,
    /// Up to this long from the moment the send first finds no room, then
    /// [`Refused::Full`]. The clock is read only then: a send that finds room at once (the
    /// common case) never reads it.
    For(Duration),
    /// Until this instant, then [`Refused::Full`].
    Until(Instant),
}

impl Wait {
    /// Waits up to `timeout` for room ([`Wait::For`]; `Duration::MAX` and other
    /// timeouts beyond the clock's range wait as long as the clock can express).
    pub fn for_at_most(timeout: Duration) -> Self {
        Wait::For(timeout)
    }

    /// The instant this wait ends, with the clock read now for a [`Wait::For`]; `None`
    /// for [`Wait::No`].
    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::No => None,
            Wait::For(timeout) => Some(deadline_after(timeout)),
            Wait::Until(deadline) => Some(deadline),
        }
    }
}

/// `timeout` from now, or the latest instant the platform can represent if that is
/// beyond the clock's range (`Duration::MAX`, say).
pub fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| far_future(now))
}

/// The latest instant after `now` that the platform can represent, found by halving.
fn far_future(now: Instant) -> Instant {
    let mut step = Duration::from_secs(u64::MAX / 4);
    loop {
        if let Some(t) = now.checked_add(step) {
            return t;
        }
        step /= 2;
    }
}

/// Why a message was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room for its class before the wait ran out.
    Full,
    /// The mailbox is closed (shutdown): the message was not queued.
    Closed,
    /// The consumer died: the message was not queued.
    Dead,
}

/// Admission limits, in weight units (commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most weight reserved at once (and most messages queued): calls fill up to here.
    pub capacity: u64,
    /// A [`Class::Write`] is admitted while less than this is reserved (the initial
    /// backlog; see [`Mailbox::set_backlog`]).
    pub backlog: u64,
}

/// Senders waiting for room, by class, and the condition variables they wait on.
struct Space {
    writers: AtomicUsize,
    callers: AtomicUsize,
    lock: Mutex<()>,
    writer_room: Condvar,
    caller_room: Condvar,
}

/// A bounded, weighted, closable mailbox with one consumer; see the
/// [module docs](self).
pub struct Mailbox<T> {
    load: crossbeam_utils::CachePadded<AtomicU64>,
    queue: BoundedQueue<T>,
    control: UnboundedQueue<T>,
    bell: Arc<Doorbell>,
    space: Space,
    /// Control messages sent while paused, moved to `control` by `resume`.
    deferred: Mutex<Vec<T>>,
    /// `capacity` is fixed; `backlog` is the initial value of `backlog` below.
    limits: Limits,
    /// The current backlog: read by every write's admission, written by the consumer
    /// now and then (`Relaxed` both ways: it is a threshold, not a publication).
    backlog: AtomicU64,
}

impl<T> fmt::Debug for Mailbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let load = self.load.load(Ordering::Relaxed);
        f.debug_struct("Mailbox")
            .field("reserved", &(load & WEIGHT))
            .field("closed", &(load & CLOSED != 0))
            .field("dead", &(load & DEAD != 0))
            .field("paused", &(load & PAUSED != 0))
            .field("capacity", &self.limits.capacity)
            .field("backlog", &self.backlog())
            .finish()
    }
}

impl<T> Mailbox<T> {
    /// A mailbox whose consumer sleeps on `bell`. `capacity` is clamped to at least 1
    /// and `backlog` to `1..=capacity`.
    pub fn new(limits: Limits, bell: Arc<Doorbell>) -> Self {
        let capacity = limits.capacity.clamp(1, WEIGHT);
        let limits = Limits {
            capacity,
            backlog: limits.backlog.clamp(1, capacity),
        };
        Self {
            load: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            queue: BoundedQueue::new(usize::try_from(capacity).unwrap_or(usize::MAX)),
            control: UnboundedQueue::new(),
            deferred: Mutex::new(Vec::new()),
            bell,
            space: Space {
                writers: AtomicUsize::new(0),
                callers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                writer_room: Condvar::new(),
                caller_room: Condvar::new(),
            },
            backlog: AtomicU64::new(limits.backlog),
            limits,
        }
    }

    /// The current backlog: a [`Class::Write`] is admitted while less than this is
    /// reserved.
    #[inline]
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Consumer side: moves the backlog (clamped to `1..=capacity`). Writers waiting for
    /// room are woken if it grew.
    pub fn set_backlog(&self, backlog: u64) {
        let backlog = backlog.clamp(1, self.limits.capacity);
        let before = self.backlog.swap(backlog, Ordering::Relaxed);
        if backlog > before && self.space.writers.load(Ordering::SeqCst) > 0 {
            self.notify(true, false);
        }
    }

    /// The limits in force: the capacity, and the backlog as it is now.
    pub fn limits(&self) -> Limits {
        Limits {
            capacity: self.limits.capacity,
            backlog: self.backlog(),
        }
    }

    /// Sends `msg`, which carries `weight` commands (at least 1), as a `class` message,
    /// waiting for room as `wait` says. On refusal the message comes back with the reason.
    ///
    /// A message heavier than `capacity` can never be admitted and is refused `Full` at
    /// once.
    pub fn send(&self, msg: T, weight: u64, class: Class, wait: Wait) -> Result<(), (T, Refused)> {
        self.send_inner(msg, weight, class, wait, false)
    }

    /// Sends `msg` as a [`Class::Call`] of weight 1 that a [`pause`](Self::pause) does not
    /// hold back (still refused when closed or dead, and still waiting for room): the
    /// exporter's markers.
    pub fn send_exempt(&self, msg: T, wait: Wait) -> Result<(), (T, Refused)> {
        self.send_inner(msg, 1, Class::Call, wait, true)
    }

    fn send_inner(
        &self,
        msg: T,
        weight: u64,
        class: Class,
        wait: Wait,
        exempt: bool,
    ) -> Result<(), (T, Refused)> {
        let weight = weight.max(1);
        if weight > self.limits.capacity {
            return Err((msg, Refused::Full));
        }
        if let Err(refused) = self.reserve_or_wait(weight, class, wait, exempt) {
            return Err((msg, refused));
        }
        // Room is reserved: every queued message holds at least its own weight (≥ 1) of
        // the reserved total, and the total never exceeds `capacity`, the queue's size.
        if self.queue.push(msg).is_err() {
            unreachable!("the reserved weight bounds the queued messages by the queue's capacity");
        }
        self.bell.ring();
        Ok(())
    }

    /// Sends a control message (weight 1) that is never refused for room: it goes to an
    /// unbounded queue the consumer drains before the bounded one. Refused only once the
    /// mailbox is closed or dead.
    ///
    /// Unbounded by type: callers must bound what they send here by something they own
    /// (one message per lease, say), and document it.
    ///
    /// While the mailbox is [paused](Self::pause), the message is accepted at once but
    /// deferred: the consumer gets it after [`resume`](Self::resume).
    pub fn send_control(&self, msg: T) -> Result<(), (T, Refused)> {
        let mut current = self.load.load(Ordering::Relaxed);
        loop {
            if let Some(refused) = flag_refusal(current) {
                return Err((msg, refused));
            }
            match self.load.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if current & PAUSED != 0 {
            let mut deferred = self
                .deferred
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Re-checked under the lock `resume` holds while it clears the flag and
            // moves the list: either the flag is still set and `resume` will move this
            // message, or it is clear and the message goes straight to the queue.
            if self.load.load(Ordering::SeqCst) & PAUSED != 0 {
                deferred.push(msg);
                return Ok(());
            }
        }
        self.control.push(msg);
        self.bell.ring();
        Ok(())
    }

    /// Pauses admission (see the module docs): later sends wait, later control messages
    /// are deferred, exempt sends still get in. The caller must [`resume`](Self::resume).
    pub fn pause(&self) {
        self.load.fetch_or(PAUSED, Ordering::SeqCst);
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.load.load(Ordering::SeqCst) & PAUSED != 0
    }

    /// Ends a [`pause`](Self::pause): hands the deferred control messages to the consumer
    /// and wakes every sender waiting for room. Idempotent.
    pub fn resume(&self) {
        let moved = {
            let mut deferred = self
                .deferred
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            self.load.fetch_and(!PAUSED, Ordering::SeqCst);
            let moved = deferred.len();
            for msg in deferred.drain(..) {
                self.control.push(msg);
            }
            moved
        };
        if moved > 0 {
            self.bell.ring();
        }
        // Unconditionally, under the lock: a waiter holds it from its re-check (which
        // saw PAUSED) until it waits, so it is either woken here or sees the flag clear.
        self.notify(true, true);
    }

    /// One CAS attempt loop at reserving `weight` for `class`.
    fn try_reserve(&self, weight: u64, class: Class, exempt: bool) -> Result<(), Refused> {
        let backlog = match class {
            Class::Write => self.backlog(),
            Class::Call => u64::MAX,
        };
        let mut current = self.load.load(Ordering::Relaxed);
        loop {
            if let Some(refused) = flag_refusal(current) {
                return Err(refused);
            }
            if current & PAUSED != 0 && !exempt {
                return Err(Refused::Full);
            }
            let reserved = current & WEIGHT;
            let fits = reserved < backlog && reserved + weight <= self.limits.capacity;
            if !fits {
                return Err(Refused::Full);
            }
            match self.load.compare_exchange_weak(
                current,
                current + weight,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => current = now,
            }
        }
    }

    fn reserve_or_wait(
        &self,
        weight: u64,
        class: Class,
        wait: Wait,
        exempt: bool,
    ) -> Result<(), Refused> {
        match self.try_reserve(weight, class, exempt) {
            Err(Refused::Full) => {}
            other => return other,
        }
        let Some(deadline) = wait.deadline() else {
            return Err(Refused::Full);
        };
        for _ in 0..YIELDS_BEFORE_WAITING {
            thread::yield_now();
            match self.try_reserve(weight, class, exempt) {
                Err(Refused::Full) => {}
                other => return other,
            }
            if Instant::now() >= deadline {
                return Err(Refused::Full);
            }
        }
        let (waiters, room) = match class {
            Class::Write => (&self.space.writers, &self.space.writer_room),
            Class::Call => (&self.space.callers, &self.space.caller_room),
        };
        // Announce before re-checking, with a `SeqCst` fence between (the consumer has
        // one between its release and its look at the waiters): either our re-check
        // sees the room it released, or it sees us waiting and notifies under the lock.
        waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let result = (|| {
            let mut guard = self
                .space
                .lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            loop {
                match self.try_reserve(weight, class, exempt) {
                    Err(Refused::Full) => {}
                    other => return other,
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(Refused::Full);
                }
                guard = match room.wait_timeout(guard, deadline - now) {
                    Ok((g, _)) => g,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        })();
        waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// Consumer side: the oldest control message, if any.
    #[inline]
    pub fn pop_control(&self) -> Option<T> {
        self.control.pop()
    }

    /// Consumer side: the oldest message of the bounded queue, if any.
    #[inline]
    pub fn pop(&self) -> Option<T> {
        self.queue.pop()
    }

    /// Consumer side: gives back the weight of messages popped and applied (exactly the
    /// weights they were sent with, control messages 1 each), and notifies senders
    /// waiting for room once enough is free.
    pub fn release(&self, weight: u64) {
        if weight == 0 {
            return;
        }
        let before = self.load.fetch_sub(weight, Ordering::SeqCst);
        let left = (before & WEIGHT) - weight;
        // Pairs with the fence a waiting sender has between announcing itself and its
        // re-check (see `reserve_or_wait`).
        fence(Ordering::SeqCst);
        let writers = left <= self.backlog() / 2 && self.space.writers.load(Ordering::Relaxed) > 0;
        let callers =
            left <= self.limits.capacity / 2 && self.space.callers.load(Ordering::Relaxed) > 0;
        if writers || callers {
            self.notify(writers, callers);
        }
    }

    fn notify(&self, writers: bool, callers: bool) {
        // Taking the lock orders this notification after a waiter's last re-check or
        // before it: a waiter holds the lock from its re-check until it waits.
        let _guard = self
            .space
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if writers {
            self.space.writer_room.notify_all();
        }
        if callers {
            self.space.caller_room.notify_all();
        }
    }

    /// The weight admitted and not yet released (a `SeqCst` load, so it can serve as a
    /// [`Doorbell`] work check).
    #[inline]
    pub fn reserved(&self) -> u64 {
        self.load.load(Ordering::SeqCst) & WEIGHT
    }

    /// Messages in the bounded queue now (a snapshot; reserved messages not yet pushed
    /// are not counted).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Control messages queued now (a snapshot).
    pub fn control_queued(&self) -> usize {
        self.control.len()
    }

    /// Closes the mailbox: every later send is refused with [`Refused::Closed`]; senders
    /// waiting for room are woken and refused. Idempotent.
    pub fn close(&self) {
        self.load.fetch_or(CLOSED, Ordering::SeqCst);
        self.notify(true, true);
        self.bell.ring();
    }

    /// True once closed (or dead).
    pub fn is_closed(&self) -> bool {
        self.load.load(Ordering::SeqCst) & (CLOSED | DEAD) != 0
    }

    /// True once closed and every accepted message has been released: nothing more can
    /// arrive, and nothing accepted is left.
    pub fn is_drained(&self) -> bool {
        let load = self.load.load(Ordering::SeqCst);
        load & (CLOSED | DEAD) != 0 && load & WEIGHT == 0
    }

    /// True once [`kill`](Self::kill) has begun.
    pub fn is_dead(&self) -> bool {
        self.load.load(Ordering::SeqCst) & DEAD != 0
    }

    /// Marks the consumer dead and drops every accepted message through `discard`
    /// (control messages first), until none is left: senders that reserved before the
    /// mark finish their push (a few instructions away), so this returns once they
    /// have. Only the consumer's thread (or whoever takes its place once it is gone) may
    /// call it. `discard` gets each message and its weight is released.
    pub fn kill(&self, mut discard: impl FnMut(T), weight_of: impl Fn(&T) -> u64) {
        self.load.fetch_or(CLOSED | DEAD, Ordering::SeqCst);
        self.notify(true, true);
        let deferred = std::mem::take(
            &mut *self
                .deferred
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for msg in deferred {
            self.load.fetch_sub(1, Ordering::SeqCst);
            discard(msg);
        }
        while self.reserved() > 0 {
            let msg = match self.control.pop() {
                Some(m) => {
                    self.load.fetch_sub(1, Ordering::SeqCst);
                    m
                }
                None => match self.queue.pop() {
                    Some(m) => {
                        self.load.fetch_sub(weight_of(&m).max(1), Ordering::SeqCst);
                        m
                    }
                    None => {
                        // A sender reserved and has not pushed yet.
                        crate::sync::spin_loop();
                        #[cfg(not(mabeam_loom))]
                        std::thread::yield_now();
                        continue;
                    }
                },
            };
            discard(msg);
        }
    }
}

/// The refusal a flagged `load` word means, if any.
#[inline]
fn flag_refusal(load: u64) -> Option<Refused> {
    if load & DEAD != 0 {
        Some(Refused::Dead)
    } else if load & CLOSED != 0 {
        Some(Refused::Closed)
    } else {
        None
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;

    fn mailbox(capacity: u64, backlog: u64) -> Mailbox<u64> {
        Mailbox::new(Limits { capacity, backlog }, Arc::new(Doorbell::new()))
    }

    #[test]
    fn writes_stop_at_the_backlog_and_calls_at_capacity() {
        let m = mailbox(8, 3);
        for i in 0..3 {
            m.send(i, 1, Class::Write, Wait::No).unwrap();
        }
        assert_eq!(
            m.send(9, 1, Class::Write, Wait::No),
            Err((9, Refused::Full))
        );
        for i in 3..8 {
            m.send(i, 1, Class::Call, Wait::No).unwrap();
        }
        assert_eq!(m.send(9, 1, Class::Call, Wait::No), Err((9, Refused::Full)));
        assert_eq!(m.reserved(), 8);
        let popped: Vec<_> = std::iter::from_fn(|| m.pop()).collect();
        assert_eq!(
            popped,
            (0..8).collect::<Vec<_>>(),
            "one FIFO for both classes"
        );
        m.release(8);
        assert_eq!(m.reserved(), 0);
    }

    #[test]
    fn a_write_is_admitted_below_the_backlog_whatever_its_weight() {
        let m = mailbox(100, 10);
        m.send(1, 9, Class::Write, Wait::No).unwrap();
        m.send(2, 60, Class::Write, Wait::No).unwrap(); // 9 < 10: admitted, 69 queued
        assert_eq!(
            m.send(3, 1, Class::Write, Wait::No),
            Err((3, Refused::Full))
        );
        assert_eq!(
            m.send(4, 32, Class::Call, Wait::No),
            Err((4, Refused::Full))
        );
        m.send(4, 31, Class::Call, Wait::No).unwrap(); // calls fill up to capacity
        assert_eq!(
            m.send(5, 101, Class::Call, Wait::No),
            Err((5, Refused::Full))
        );
    }

    #[test]
    fn the_consumer_moves_the_backlog_and_a_raise_lets_writers_in() {
        let m = mailbox(100, 2);
        m.send(1, 1, Class::Write, Wait::No).unwrap();
        m.send(2, 1, Class::Write, Wait::No).unwrap();
        assert_eq!(
            m.send(3, 1, Class::Write, Wait::No),
            Err((3, Refused::Full))
        );
        m.set_backlog(50);
        assert_eq!(m.backlog(), 50);
        m.send(3, 1, Class::Write, Wait::No).unwrap();
        m.set_backlog(1_000);
        assert_eq!(m.backlog(), 100, "clamped to capacity");
        m.set_backlog(0);
        assert_eq!(m.backlog(), 1, "clamped to at least 1");
    }

    #[test]
    fn closing_refuses_new_sends_and_drains_to_empty() {
        let m = mailbox(8, 8);
        m.send(1, 2, Class::Write, Wait::No).unwrap();
        m.send_control(2).unwrap();
        m.close();
        assert!(m.is_closed());
        assert!(!m.is_drained(), "accepted messages are still there");
        assert_eq!(
            m.send(3, 1, Class::Call, Wait::No),
            Err((3, Refused::Closed))
        );
        assert_eq!(m.send_control(4), Err((4, Refused::Closed)));
        assert_eq!(m.pop_control(), Some(2));
        assert_eq!(m.pop(), Some(1));
        m.release(3);
        assert!(m.is_drained());
    }

    #[test]
    fn a_waiting_writer_gets_in_when_the_consumer_releases() {
        let m = Arc::new(mailbox(4, 2));
        m.send(0, 2, Class::Write, Wait::No).unwrap();
        let sender = {
            let m = m.clone();
            std::thread::spawn(move || {
                m.send(
                    1,
                    1,
                    Class::Write,
                    Wait::for_at_most(Duration::from_secs(60)),
                )
            })
        };
        // Wait until the sender is registered as waiting, then make room.
        while m.space.writers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(m.pop(), Some(0));
        m.release(2);
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(m.pop(), Some(1));
    }

    #[test]
    fn close_wakes_a_waiting_sender_with_closed() {
        let m = Arc::new(mailbox(1, 1));
        m.send(0, 1, Class::Call, Wait::No).unwrap();
        let sender = {
            let m = m.clone();
            std::thread::spawn(move || m.send(1, 1, Class::Call, Wait::for_at_most(Duration::MAX)))
        };
        while m.space.callers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        m.close();
        assert_eq!(sender.join().unwrap(), Err((1, Refused::Closed)));
    }

    #[test]
    fn a_wait_runs_out_with_full() {
        let m = mailbox(1, 1);
        m.send(0, 1, Class::Call, Wait::No).unwrap();
        let r = m.send(
            1,
            1,
            Class::Call,
            Wait::for_at_most(Duration::from_millis(1)),
        );
        assert_eq!(r, Err((1, Refused::Full)));
    }

    #[test]
    fn kill_discards_everything_accepted_and_refuses_the_rest() {
        let m = mailbox(8, 8);
        m.send(1, 3, Class::Write, Wait::No).unwrap();
        m.send(2, 1, Class::Call, Wait::No).unwrap();
        m.send_control(3).unwrap();
        let mut dropped = Vec::new();
        m.kill(|x| dropped.push(x), |&x| if x == 1 { 3 } else { 1 });
        assert_eq!(dropped, vec![3, 1, 2]);
        assert!(m.is_dead() && m.is_drained());
        assert_eq!(m.send(4, 1, Class::Call, Wait::No), Err((4, Refused::Dead)));
    }

    #[test]
    fn a_pause_holds_sends_back_defers_control_and_lets_markers_in() {
        let m = mailbox(8, 8);
        m.send(1, 1, Class::Write, Wait::No).unwrap();
        m.pause();
        assert!(m.is_paused());
        assert_eq!(m.send(2, 1, Class::Call, Wait::No), Err((2, Refused::Full)));
        m.send_control(3).unwrap();
        m.send_exempt(4, Wait::No).unwrap();
        assert_eq!(
            m.pop_control(),
            None,
            "a control message sent while paused waits"
        );
        assert_eq!(m.pop(), Some(1));
        assert_eq!(m.pop(), Some(4));
        m.resume();
        assert_eq!(m.pop_control(), Some(3));
        m.send(5, 1, Class::Write, Wait::No).unwrap();
        m.release(3);
        assert_eq!(m.reserved(), 1);
    }

    #[test]
    fn a_sender_waiting_on_a_pause_gets_in_at_resume() {
        let m = Arc::new(mailbox(4, 4));
        m.pause();
        let sender = {
            let m = m.clone();
            std::thread::spawn(move || m.send(1, 1, Class::Call, Wait::for_at_most(Duration::MAX)))
        };
        while m.space.callers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        m.resume();
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(m.pop(), Some(1));
    }

    #[test]
    fn kill_discards_deferred_control_messages() {
        let m = mailbox(4, 4);
        m.pause();
        m.send_control(9).unwrap();
        let mut dropped = Vec::new();
        m.kill(|x| dropped.push(x), |_| 1);
        assert_eq!(dropped, vec![9]);
        assert!(m.is_drained());
    }

    #[test]
    fn an_instant_beyond_the_clock_waits_as_long_as_it_can() {
        assert_eq!(
            Wait::for_at_most(Duration::MAX),
            Wait::For(Duration::MAX),
            "the clock is read only when a send must wait"
        );
        let deadline = Wait::for_at_most(Duration::MAX)
            .deadline()
            .expect("a wait has a deadline");
        assert!(deadline > Instant::now() + Duration::from_secs(1 << 30));
        assert_eq!(Wait::No.deadline(), None);
    }
}
