//! [`BarrierCell`]: a reusable counting barrier built on one atomic word, `park` and
//! `unpark`.
//!
//! `parties` threads call [`BarrierCell::wait`]; the last one to arrive (the *leader*)
//! completes the current *generation* and wakes the others; the cell is then ready for the
//! next generation. A waiter may give up ([`BarrierCell::wait_timeout`]), taking its
//! arrival back if its generation has not completed, and [`BarrierCell::shutdown`] wakes
//! every waiter with [`BarrierWaitError::ShutDown`].
//!
//! ```
//! use std::sync::Arc;
//! use mabeam_shards::barrier::{Backoff, BarrierCell};
//!
//! let barrier = Arc::new(BarrierCell::new(2).expect("2 is a valid party count"));
//! let other = Arc::clone(&barrier);
//! let helper = std::thread::spawn(move || other.wait(Backoff::spin(64)));
//! let mine = barrier.wait(Backoff::spin(64)).expect("not shut down");
//! let theirs = helper.join().expect("no panic").expect("not shut down");
//! assert_eq!((mine.generation, theirs.generation), (0, 0));
//! assert!(mine.is_leader != theirs.is_leader); // exactly one leader per generation
//! assert_eq!(barrier.generation(), 1);
//! ```
//!
//! # The state word
//!
//! Generation and arrival count live in **one** `AtomicU64`, so that arrival, completion
//! and rollback are each a single atomic read-modify-write on the same word:
//!
//! ```text
//!   bits 63..16: generation (48 bits, wraps)     bits 15..0: arrivals counted in it
//! ```
//!
//! - **Arrival** is `fetch_add(1)`. The arrival that makes the count reach `parties` is the
//!   leader of that generation.
//! - **Completion** (the leader, once) is `fetch_add(2¹⁶ − parties)`: it resets the count
//!   (subtracts `parties`) *and* bumps the generation in the same atomic step, so no thread
//!   can ever observe the new generation with the old count.
//! - **Rollback** (a timed-out waiter) is a `compare_exchange` from `(g, c)` to `(g, c − 1)`,
//!   refused unless the generation is still `g` *and* `c < parties`. Since the generation
//!   is checked in the same atomic step, a timeout racing the last arrival is either a clean
//!   rollback (the last arrival then finds `c − 1 + 1 < parties` and merely waits) or a
//!   refusal (the generation completed, or its leader has already arrived and is about to
//!   bump it): never a release of a generation that lacks an arrival.
//!
//! Invariant: *while the word's generation is `g`, its count is `≥ parties` exactly when the
//! leader of `g` has arrived and not yet bumped.* Every rule above preserves it.
//!
//! **More threads than parties.** If more than `parties` threads are inside `wait` at once
//! (a caller bug: the barrier then cannot tell generations apart by thread), an arrival
//! can see a count `≥ parties`. Its increment is carried into the next generation by the
//! leader's `fetch_add(2¹⁶ − parties)`, so it waits (yielding, it is the leader's next
//! instruction) until the generation moves and then counts as an arrival of the next
//! generation, like `std::sync::Barrier` does. The 16-bit count therefore bounds the number
//! of threads *simultaneously inside* one cell at 65 535; `parties` is bounded by
//! [`MAX_PARTIES`].
//!
//! # Waking
//!
//! A waiter first polls the generation, as its [`Backoff`] says: `spins` times with a
//! spin-loop hint between polls (cheap when every party has a core and the generation
//! completes within microseconds; every 32nd is a yield instead, so that a spinner on a
//! loaded machine does not hold a core a missing party needs), then `yields` times with `yield_now` between polls (a
//! waiter with a deadline checks it before every yield of either phase, since a yield may
//! give the core away for a whole time slice, and takes its arrival back as a timeout). Polling reads the state word and the shutdown flag and nothing
//! else; a waiter that sees its generation move in either phase returns without ever
//! touching the registry. With more parties than cores the yields are what pays: the
//! core goes to a party that has yet to arrive, and the waiter, rescheduled by the run
//! queue, finds its generation complete with no futex wait and no wake-up call (on 2
//! cores, 16 parties, about 16 context switches per round instead of 15 waits, 15
//! wake-up calls and the leader's preemptions between them). Then the waiter registers
//! in the waiter registry, issues `fence(SeqCst)`, re-checks the generation
//! and the shutdown flag, and only then parks, in a loop (park may return spuriously; the
//! waiter looks at the generation, never at the count). The leader bumps the generation,
//! issues `fence(SeqCst)`, then scans the registry and unparks the waiters registered for
//! the generation it completed. The two fences make the classic store-buffer race safe:
//! either the waiter's re-check sees the bump, or the leader's scan sees the registration.
//! [`shutdown`](BarrierCell::shutdown) does the same with its flag and wakes every
//! registered waiter.
//!
//! # The waiter registry
//!
//! A fixed array of `parties` slots, each `{state: AtomicU8, generation: AtomicU64,
//! thread: UnsafeCell<Option<Thread>>}` with this state machine:
//!
//! ```text
//!  FREE ──claim (waiter, CAS, Acquire)──▶ CLAIMED ──publish (waiter, store Release)──▶ WAITING
//!  WAITING ──(waker, CAS Acquire)──▶ WAKING ──(waker, store Release)──▶ WAITING
//!  WAITING ──(waiter, CAS Acquire)──▶ CLAIMED ──(waiter empties the cell, store Release)──▶ FREE
//! ```
//!
//! The `thread` cell is written only by the waiter that holds the slot `CLAIMED`, and read
//! (cloned) only by a waker that holds it `WAKING`; every hand-over between the two goes
//! through a Release store read by an Acquire CAS, so accesses never overlap. The waker
//! puts the slot back to `WAITING` (the waiter deregisters itself when it leaves), so a
//! waker never unparks a thread that has already deregistered: no unpark storm to threads
//! that left. A waker that finds a slot `WAKING` (another waker: the leader of the
//! previous generation or `shutdown`) waits for it, so it cannot skip a waiter.
//!
//! With at most `parties` threads using the cell, `parties` slots suffice: the waiters of
//! one generation are at most `parties − 1`, and a thread still deregistering from
//! generation `g` is not (yet) one of the arrivals of `g + 1`, so at most `parties` threads
//! hold a slot at once. If the registry is full anyway (more threads than parties), a
//! waiter does not park: it polls the generation, yielding the CPU between polls.
//!
//! A waker clones the waiter's `Thread` handle under `WAKING` and unparks it after putting
//! the slot back; if the waiter left in between, the unpark leaves a stale token that
//! makes that thread's next `park` return at once, which every `park` caller must tolerate
//! anyway (`park` may return spuriously).

use std::fmt;
#[cfg(not(mabeam_loom))]
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{
    fence, spin_loop, thread, AtomicBool, AtomicU64, AtomicU8, Ordering, UnsafeCell,
};

/// Largest party count [`BarrierCell::new`] accepts. The leader scans one registry slot per
/// party when it completes a generation, so this also bounds the cost of a completion.
pub const MAX_PARTIES: usize = 4096;

/// The spin phase of a [`Backoff`] yields the core once every this many spins (about a
/// microsecond of spinning here): a missing party that shares the spinner's core gets it
/// within a microsecond instead of at the end of the spin budget (4,000 spins are over
/// 100 µs). When nobody else wants the core, the yield returns at once.
const SPINS_PER_YIELD: u32 = 32;

/// Bits of the state word holding the arrival count.
const COUNT_BITS: u32 = 16;
/// Mask of the arrival count in the state word.
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// One generation, in state-word units.
const ONE_GENERATION: u64 = 1 << COUNT_BITS;

// The count field must hold every party plus the carried arrivals of over-subscription.
const _: () = assert!(MAX_PARTIES as u64 <= COUNT_MASK / 2);

/// Generation of a state word (48 bits, wrapping).
#[inline]
fn generation_of(word: u64) -> u64 {
    word >> COUNT_BITS
}

/// Arrivals counted in a state word's generation.
#[inline]
fn count_of(word: u64) -> u64 {
    word & COUNT_MASK
}

/// Next generation number, wrapping like the 48-bit field does.
#[inline]
fn next_generation(generation: u64) -> u64 {
    generation.wrapping_add(1) & (u64::MAX >> COUNT_BITS)
}

/// Why [`BarrierCell::new`] refused a party count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BarrierCellError {
    /// A barrier needs at least one party.
    ZeroParties,
    /// More parties than [`MAX_PARTIES`].
    TooManyParties {
        /// The refused party count.
        parties: usize,
        /// The bound, [`MAX_PARTIES`].
        max: usize,
    },
}

impl fmt::Display for BarrierCellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroParties => f.write_str("a barrier needs at least one party"),
            Self::TooManyParties { parties, max } => {
                write!(f, "{parties} parties exceed the barrier bound of {max}")
            }
        }
    }
}

impl std::error::Error for BarrierCellError {}

/// Why a wait at a [`BarrierCell`] ended without its generation completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierWaitError {
    /// The timeout passed before the generation completed; the arrival was taken back, so
    /// the generation still needs as many arrivals as before this call.
    Timeout,
    /// The barrier was shut down before the generation completed (or before this call).
    ShutDown,
}

impl fmt::Display for BarrierWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("barrier wait timed out; the arrival was taken back"),
            Self::ShutDown => f.write_str("barrier shut down"),
        }
    }
}

impl std::error::Error for BarrierWaitError {}

/// One thread's successful pass through a [`BarrierCell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The generation this arrival belonged to (and that has now completed). The first
    /// generation is 0; it counts modulo 2⁴⁸.
    pub generation: u64,
    /// True for exactly one arrival per generation: the last one, which completed it.
    pub is_leader: bool,
}

/// How a waiter passes the time before it parks: `spins` checks of the generation with a
/// spin-loop hint between them (and a [`std::thread::yield_now`] every 32 spins), then
/// `yields` checks with `yield_now` between them, then registration and `park`.
///
/// Spinning holds the core, so it pays only when every party can be running at once
/// (no more parties than cores). Yielding gives the core away: with more parties than
/// cores, the thread that gets it is typically a party that has yet to arrive, and a
/// waiter that yields instead of parking is rescheduled by the run queue, with no futex
/// wait and no wake-up call from the leader. Both phases are bounded, so a waiter whose
/// generation takes long still ends up parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backoff {
    /// Checks with a spin-loop hint between them, first.
    pub spins: u32,
    /// Checks with a `yield_now` between them, after the spins.
    pub yields: u32,
}

impl Backoff {
    /// No spinning, no yielding: register and park at once.
    pub const PARK: Self = Self {
        spins: 0,
        yields: 0,
    };

    /// `spins` spins, no yields.
    pub const fn spin(spins: u32) -> Self {
        Self { spins, yields: 0 }
    }

    /// `yields` yields, no spins.
    pub const fn yields(yields: u32) -> Self {
        Self { spins: 0, yields }
    }
}

/// Registry slot states; see the module documentation for the state machine.
const SLOT_FREE: u8 = 0;
const SLOT_CLAIMED: u8 = 1;
const SLOT_WAITING: u8 = 2;
const SLOT_WAKING: u8 = 3;

/// One entry of the waiter registry.
///
/// Invariant: `thread` is accessed only by the holder of the slot: mutably by the waiter
/// while `state == SLOT_CLAIMED` (it moved it there from `FREE` or `WAITING`), shared by a
/// waker while `state == SLOT_WAKING` (it moved it there from `WAITING`). `generation` is
/// written by the waiter while `CLAIMED` and read by a waker while `WAKING`.
struct WaiterSlot {
    state: AtomicU8,
    generation: AtomicU64,
    thread: UnsafeCell<Option<thread::Thread>>,
}

impl WaiterSlot {
    fn new() -> Self {
        Self {
            state: AtomicU8::new(SLOT_FREE),
            generation: AtomicU64::new(0),
            thread: UnsafeCell::new(None),
        }
    }
}

/// How long a waiter is willing to block.
#[derive(Clone, Copy)]
enum Patience {
    /// Until the generation completes or the barrier shuts down.
    Forever,
    /// Until this instant, then take the arrival back if possible.
    #[cfg(not(mabeam_loom))]
    Until(Instant),
}

impl Patience {
    /// Whether the deadline (if any) has passed.
    fn expired(self) -> bool {
        match self {
            Self::Forever => false,
            #[cfg(not(mabeam_loom))]
            Self::Until(deadline) => Instant::now() >= deadline,
        }
    }
}

/// A reusable barrier for a fixed number of parties: generation + count in one atomic
/// word, a bounded registry of parked waiters, and a shutdown flag.
///
/// See the [module documentation](self) for the protocol and its invariants.
pub struct BarrierCell {
    /// Generation (high 48 bits) and arrival count (low 16 bits).
    state: CachePadded<AtomicU64>,
    /// Set once by [`BarrierCell::shutdown`]; never cleared.
    shutdown: AtomicBool,
    /// Number of arrivals that complete a generation, `1..=MAX_PARTIES`.
    parties: usize,
    /// `parties` slots for parked waiters.
    slots: Box<[WaiterSlot]>,
}

// SAFETY: the only non-`Sync` field is `WaiterSlot::thread`, an `UnsafeCell` whose accesses
// are serialized by the slot's `state` protocol (module docs, "The waiter registry"): a
// mutable access happens only while the accessing thread holds the slot `CLAIMED`, a shared
// access only while it holds it `WAKING`, both states are entered by a CAS that only one
// thread can win, and each hand-over is a Release store read by an Acquire CAS. The
// `Thread` values inside are `Send + Sync`.
unsafe impl Sync for BarrierCell {}

impl fmt::Debug for BarrierCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierCell")
            .field("parties", &self.parties)
            .field("generation", &self.generation())
            .field("waiting", &self.waiting())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

impl BarrierCell {
    /// A barrier that releases its waiters each time `parties` threads have arrived.
    ///
    /// Refuses 0 parties and more than [`MAX_PARTIES`]. One party is allowed: every wait
    /// then completes a generation at once.
    pub fn new(parties: usize) -> Result<Self, BarrierCellError> {
        if parties == 0 {
            return Err(BarrierCellError::ZeroParties);
        }
        if parties > MAX_PARTIES {
            return Err(BarrierCellError::TooManyParties {
                parties,
                max: MAX_PARTIES,
            });
        }
        Ok(Self {
            state: CachePadded::new(AtomicU64::new(0)),
            shutdown: AtomicBool::new(false),
            parties,
            slots: (0..parties).map(|_| WaiterSlot::new()).collect(),
        })
    }

    /// A barrier as [`new`](Self::new) makes it, but at generation `generation` (kept
    /// modulo 2^48, as the word keeps it) with nobody arrived: what a restore makes of an
    /// exported barrier. Nobody shares it yet, so a plain store sets the word.
    pub fn with_generation(parties: usize, generation: u64) -> Result<Self, BarrierCellError> {
        let cell = Self::new(parties)?;
        let generation = generation & (u64::MAX >> COUNT_BITS);
        cell.state
            .store(generation * ONE_GENERATION, Ordering::Relaxed);
        Ok(cell)
    }

    /// Arrives and blocks until the current generation completes (or the barrier shuts
    /// down). Polls the generation as `backoff` says (spins, then yields) before parking; a
    /// park/unpark round trip costs microseconds, so a few hundred spins pay off when the
    /// parties arrive close together and each has a core, and a few yields pay off when
    /// they do not.
    ///
    /// Returns the generation this arrival belonged to and whether it was the leader (the
    /// last arrival). Everything a party did before its `wait` happens-before everything
    /// every party does after its `wait` of the same generation returns.
    ///
    /// Errors: [`BarrierWaitError::ShutDown`] if the barrier is or gets shut down before
    /// the generation completes.
    pub fn wait(&self, backoff: Backoff) -> Result<Arrival, BarrierWaitError> {
        let arrival = self.arrive()?;
        self.await_arrival(arrival, backoff)
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout`: if the generation has not
    /// completed by then, the arrival is taken back (the generation needs as many arrivals
    /// as before this call) and [`BarrierWaitError::Timeout`] is returned. If the last
    /// arrival races the timeout, the call either succeeds or rolls back cleanly; it never
    /// lets a generation complete one arrival short.
    #[cfg(not(mabeam_loom))]
    pub fn wait_timeout(
        &self,
        backoff: Backoff,
        timeout: Duration,
    ) -> Result<Arrival, BarrierWaitError> {
        let arrival = self.arrive()?;
        if arrival.is_leader {
            return Ok(arrival);
        }
        // An unrepresentable deadline (absurd timeout) means "no deadline".
        let patience = Instant::now()
            .checked_add(timeout)
            .map_or(Patience::Forever, Patience::Until);
        self.block(arrival.generation, backoff, patience)
            .map(|()| arrival)
    }

    /// Shuts the barrier down: every waiter whose generation has not completed returns
    /// [`BarrierWaitError::ShutDown`], and so does every later wait. Idempotent.
    ///
    /// Racing a last arrival, `ShutDown` does not mean the waiter's arrival was not
    /// counted: a waiter that sees the shutdown first returns `ShutDown`, and the last
    /// arrival, which read the flag before it was set, may still complete that
    /// generation (and get `Ok` as its leader). `Ok` always means every party arrived.
    pub fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        // Pairs with the waiter's fence between registering and re-checking the flag.
        fence(Ordering::SeqCst);
        self.wake_registered(None);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// The current generation: the number of completed generations, modulo 2⁴⁸.
    pub fn generation(&self) -> u64 {
        generation_of(self.state.load(Ordering::Acquire))
    }

    /// The number of arrivals that complete a generation.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// Arrivals counted in the current generation (waiting for it to complete), in
    /// `0..=parties`; `parties` only for the instant between the leader's arrival and its
    /// completion of the generation.
    pub fn waiting(&self) -> usize {
        let count = count_of(self.state.load(Ordering::Acquire));
        // The count field is 16 bits, so the conversion cannot fail.
        usize::try_from(count).map_or(self.parties, |count| count.min(self.parties))
    }

    /// First half of [`wait`](Self::wait): counts this thread's arrival and, if it is the
    /// last, completes the generation and wakes its waiters. Does not block, except that
    /// an arrival beyond `parties` (more threads than parties inside the barrier) yields
    /// until the leader it overtook has completed its generation.
    ///
    /// Exposed for model checking only: an arrival must be followed by
    /// [`await_arrival`](Self::await_arrival) or taken back with
    /// [`try_cancel_arrival`](Self::try_cancel_arrival), or the barrier stays one arrival
    /// ahead.
    #[doc(hidden)]
    pub fn arrive(&self) -> Result<Arrival, BarrierWaitError> {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(BarrierWaitError::ShutDown);
        }
        let parties = self.parties_u64();
        // AcqRel: releases this thread's pre-barrier writes to the leader (the arrivals
        // form a release sequence on the word) and acquires the earlier arrivals' writes.
        let previous = self.state.fetch_add(1, Ordering::AcqRel);
        let mut generation = generation_of(previous);
        let mut index = count_of(previous);
        // An arrival at or beyond `parties` is carried into the next generation by the
        // leader's completion step; wait for that step, then count there.
        while index >= parties {
            self.yield_until_moved_from(generation);
            generation = next_generation(generation);
            index -= parties;
        }
        let is_leader = index + 1 == parties;
        if is_leader {
            self.complete(generation);
        }
        Ok(Arrival {
            generation,
            is_leader,
        })
    }

    /// Second half of [`wait`](Self::wait): blocks until the generation of `arrival`
    /// completes. Exposed for model checking only; `arrival` must come from
    /// [`arrive`](Self::arrive) on this cell.
    #[doc(hidden)]
    pub fn await_arrival(
        &self,
        arrival: Arrival,
        backoff: Backoff,
    ) -> Result<Arrival, BarrierWaitError> {
        if arrival.is_leader {
            return Ok(arrival);
        }
        self.block(arrival.generation, backoff, Patience::Forever)
            .map(|()| arrival)
    }

    /// The rollback step of a timed-out wait: takes back one arrival counted in
    /// `generation`, if that generation is still collecting arrivals.
    ///
    /// Returns `true` if the arrival was taken back (the generation now needs one more
    /// arrival), `false` if the generation has completed or its leader has already
    /// arrived (the caller's arrival counted and it must treat the generation as
    /// completed). The check and the decrement are one `compare_exchange`, so a rollback
    /// never races a completion into releasing a generation one arrival short.
    ///
    /// Exposed for model checking; the caller must own an arrival in `generation` that it
    /// has not taken back.
    #[doc(hidden)]
    pub fn try_cancel_arrival(&self, generation: u64) -> bool {
        let parties = self.parties_u64();
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let count = count_of(word);
            // count == 0 cannot hold an arrival of the caller; refusing keeps a misuse from
            // borrowing into the generation bits.
            if generation_of(word) != generation || count >= parties || count == 0 {
                return false;
            }
            match self
                .state
                .compare_exchange(word, word - 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(current) => word = current,
            }
        }
    }

    fn parties_u64(&self) -> u64 {
        // parties <= MAX_PARTIES, so this is exact.
        self.parties as u64
    }

    /// The leader's step: reset the count and bump the generation (one `fetch_add`), then
    /// wake the waiters registered for `generation`.
    fn complete(&self, generation: u64) {
        // count >= parties here (invariant), so subtracting parties cannot borrow from the
        // generation bits. Waiters load the new generation with Acquire. Every operation
        // on the word is a read-modify-write, so this one continues the release sequences
        // of all the arrivals (Relaxed would do, loom agrees); AcqRel makes the completion
        // publish on its own, at no cost on a once-per-generation operation.
        self.state
            .fetch_add(ONE_GENERATION - self.parties_u64(), Ordering::AcqRel);
        // Pairs with the fence a waiter issues between registering and re-checking.
        fence(Ordering::SeqCst);
        self.wake_registered(Some(generation));
    }

    /// Unparks every registered waiter of `generation` (all of them for `None`).
    fn wake_registered(&self, generation: Option<u64>) {
        for slot in self.slots.iter() {
            loop {
                match slot.state.load(Ordering::Relaxed) {
                    SLOT_WAITING => {}
                    // Another waker holds it; it will put it back to WAITING shortly, and
                    // this waker must not skip a waiter it is responsible for.
                    SLOT_WAKING => {
                        spin_loop();
                        continue;
                    }
                    // FREE: nobody. CLAIMED: a waiter registering (it re-checks after its
                    // fence, so it will see what this waker published) or leaving.
                    _ => break,
                }
                if slot
                    .state
                    .compare_exchange(
                        SLOT_WAITING,
                        SLOT_WAKING,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    continue;
                }
                let wanted = match generation {
                    None => true,
                    Some(g) => slot.generation.load(Ordering::Relaxed) == g,
                };
                let handle = if wanted {
                    // SAFETY: this thread holds the slot WAKING (won the CAS above), so the
                    // owner is not writing the cell (it writes only while CLAIMED, and its
                    // last write was released by its store of WAITING, which the CAS
                    // acquired); a shared read is sound.
                    slot.thread.with(|thread| unsafe { (*thread).clone() })
                } else {
                    None
                };
                // Hand the slot back to its owner; releases the read above.
                slot.state.store(SLOT_WAITING, Ordering::Release);
                if let Some(handle) = handle {
                    handle.unpark();
                }
                break;
            }
        }
    }

    /// Yields until the generation is no longer `generation`. Used only while the leader
    /// of `generation` has arrived and its completion step is imminent.
    fn yield_until_moved_from(&self, generation: u64) {
        while generation_of(self.state.load(Ordering::Acquire)) == generation {
            thread::yield_now();
        }
    }

    /// `Some(result)` if the wait for `generation` is over: `Ok` if it completed,
    /// `Err(ShutDown)` if the barrier shut down first.
    fn check(&self, generation: u64) -> Option<Result<(), BarrierWaitError>> {
        if generation_of(self.state.load(Ordering::Acquire)) != generation {
            Some(Ok(()))
        } else if self.shutdown.load(Ordering::Acquire) {
            Some(Err(BarrierWaitError::ShutDown))
        } else {
            None
        }
    }

    /// Waits for `generation` to complete: spin, register, fence, re-check, park in a loop.
    fn block(
        &self,
        generation: u64,
        backoff: Backoff,
        patience: Patience,
    ) -> Result<(), BarrierWaitError> {
        // Polls `1..=spins` are the spin phase, the `yields` after them the yield phase.
        let spins = u64::from(backoff.spins);
        for poll in 1..=spins + u64::from(backoff.yields) {
            if let Some(result) = self.check(generation) {
                return result;
            }
            // Every poll of the yield phase yields; a spinner yields now and then too, so
            // that on a loaded machine it hands the core to a missing party that shares
            // it instead of spinning it away.
            if poll > spins || poll % u64::from(SPINS_PER_YIELD) == 0 {
                // A yield can give the core away for a whole time slice: a waiter with a
                // deadline looks at it before each yield.
                if patience.expired() {
                    return self.give_up(generation);
                }
                thread::yield_now();
            } else {
                spin_loop();
            }
        }
        let slot = self.register(generation);
        // Pairs with the fence of the leader (after its bump) and of `shutdown` (after the
        // flag): either this re-check sees their write, or their scan sees the slot.
        fence(Ordering::SeqCst);
        let result = loop {
            if let Some(result) = self.check(generation) {
                break result;
            }
            match patience {
                Patience::Forever => {
                    if slot.is_some() {
                        thread::park();
                    } else {
                        thread::yield_now();
                    }
                }
                #[cfg(not(mabeam_loom))]
                Patience::Until(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break self.give_up(generation);
                    }
                    if slot.is_some() {
                        thread::park_timeout(deadline - now);
                    } else {
                        thread::yield_now();
                    }
                }
            }
        };
        if let Some(slot) = slot {
            self.deregister(slot);
        }
        result
    }

    /// The timeout path: take the arrival back, or, if the generation is completing or
    /// completed, wait for the bump and report success.
    fn give_up(&self, generation: u64) -> Result<(), BarrierWaitError> {
        if self.try_cancel_arrival(generation) {
            Err(BarrierWaitError::Timeout)
        } else {
            // The leader of `generation` has arrived: its bump is its next step.
            self.yield_until_moved_from(generation);
            Ok(())
        }
    }

    /// Claims a free slot, stores this thread's handle and generation in it and publishes
    /// it as WAITING. `None` if every slot is taken (more threads than parties).
    fn register(&self, generation: u64) -> Option<&WaiterSlot> {
        let len = self.slots.len();
        // Start at a spot that differs between the waiters of one generation.
        let start = usize::try_from(count_of(self.state.load(Ordering::Relaxed))).unwrap_or(0);
        for offset in 0..len {
            let slot = &self.slots[(start + offset) % len];
            if slot
                .state
                .compare_exchange(
                    SLOT_FREE,
                    SLOT_CLAIMED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            let me = thread::current();
            // SAFETY: this thread moved the slot FREE -> CLAIMED, so no other thread
            // accesses the cell (wakers only touch WAITING slots); the previous owner's
            // last write was released by its store of FREE, acquired by the CAS.
            slot.thread.with_mut(|thread| unsafe { *thread = Some(me) });
            slot.generation.store(generation, Ordering::Relaxed);
            slot.state.store(SLOT_WAITING, Ordering::Release);
            return Some(slot);
        }
        None
    }

    /// Takes this thread's registration back: waits out a waker holding the slot, then
    /// empties it and frees it.
    fn deregister(&self, slot: &WaiterSlot) {
        while slot
            .state
            .compare_exchange(
                SLOT_WAITING,
                SLOT_CLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // Only a waker (WAKING, a few instructions) can hold this thread's slot.
            spin_loop();
        }
        // SAFETY: this thread moved the slot WAITING -> CLAIMED; any waker's read of the
        // cell was released by its store of WAITING, which the CAS acquired, and no waker
        // touches a CLAIMED slot.
        let handle = slot.thread.with_mut(|thread| unsafe { (*thread).take() });
        drop(handle);
        slot.state.store(SLOT_FREE, Ordering::Release);
    }

    /// Number of registry slots currently holding a parked (or about to park) waiter.
    #[cfg(all(test, not(mabeam_loom)))]
    fn registered_waiters(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.state.load(Ordering::Acquire) != SLOT_FREE)
            .count()
    }
}

// The unit tests run real threads on std's atomics; under loom, `loom-tests/` models the cell.
#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{mpsc, Arc};

    #[test]
    fn refuses_zero_and_too_many_parties() {
        assert_eq!(
            BarrierCell::new(0).err(),
            Some(BarrierCellError::ZeroParties)
        );
        assert_eq!(
            BarrierCell::new(MAX_PARTIES + 1).err(),
            Some(BarrierCellError::TooManyParties {
                parties: MAX_PARTIES + 1,
                max: MAX_PARTIES
            })
        );
        assert!(BarrierCell::new(MAX_PARTIES).is_ok());
    }

    #[test]
    fn one_party_completes_every_wait_at_once() {
        let barrier = BarrierCell::new(1).expect("valid");
        for generation in 0..5 {
            assert_eq!(
                barrier.wait(Backoff::PARK),
                Ok(Arrival {
                    generation,
                    is_leader: true
                })
            );
        }
        assert_eq!(barrier.generation(), 5);
        assert_eq!(barrier.waiting(), 0);
    }

    #[test]
    fn eight_threads_thousand_generations_one_leader_each() {
        const THREADS: usize = 8;
        const ROUNDS: u64 = 1000;
        let barrier = Arc::new(BarrierCell::new(THREADS).expect("valid"));
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = Arc::clone(&barrier);
                // A third of the threads park at once, a third spin first, a third yield
                // first: every path gets exercised.
                let spin = match i % 3 {
                    0 => Backoff::PARK,
                    1 => Backoff::spin(200),
                    _ => Backoff::yields(8),
                };
                std::thread::spawn(move || {
                    (0..ROUNDS)
                        .map(|_| barrier.wait(spin).expect("never shut down"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut leaders = vec![0u32; ROUNDS as usize];
        for handle in handles {
            let arrivals = handle.join().expect("no panic");
            for (round, arrival) in arrivals.iter().enumerate() {
                assert_eq!(
                    arrival.generation, round as u64,
                    "generations are consecutive"
                );
                if arrival.is_leader {
                    leaders[round] += 1;
                }
            }
        }
        assert!(
            leaders.iter().all(|&n| n == 1),
            "exactly one leader per generation"
        );
        assert_eq!(barrier.generation(), ROUNDS);
        assert_eq!(barrier.waiting(), 0);
        assert_eq!(barrier.registered_waiters(), 0);
    }

    #[test]
    fn pre_barrier_writes_are_visible_after_the_barrier() {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        const THREADS: usize = 4;
        let barrier = Arc::new(BarrierCell::new(THREADS).expect("valid"));
        let cells: Arc<Vec<StdAtomicU64>> =
            Arc::new((0..THREADS).map(|_| StdAtomicU64::new(0)).collect());
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, cells) = (Arc::clone(&barrier), Arc::clone(&cells));
                std::thread::spawn(move || {
                    for round in 1..=200u64 {
                        cells[i].store(round, Ordering::Relaxed);
                        barrier.wait(Backoff::spin(50)).expect("never shut down");
                        for cell in cells.iter() {
                            assert!(cell.load(Ordering::Relaxed) >= round);
                        }
                        barrier.wait(Backoff::spin(50)).expect("never shut down");
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("no panic");
        }
    }

    #[test]
    fn timed_out_waiter_takes_its_arrival_back() {
        let barrier = Arc::new(BarrierCell::new(2).expect("valid"));
        assert_eq!(
            barrier.wait_timeout(Backoff::spin(10), Duration::from_millis(2)),
            Err(BarrierWaitError::Timeout)
        );
        assert_eq!(barrier.waiting(), 0, "the arrival was taken back");
        assert_eq!(barrier.generation(), 0);
        assert_eq!(barrier.registered_waiters(), 0);

        // A full round still needs both parties and works.
        let other = Arc::clone(&barrier);
        let helper = std::thread::spawn(move || other.wait(Backoff::PARK));
        let mine = barrier
            .wait_timeout(Backoff::PARK, Duration::from_secs(60))
            .expect("helper arrives");
        let theirs = helper.join().expect("no panic").expect("not shut down");
        assert_eq!((mine.generation, theirs.generation), (0, 0));
        assert!(mine.is_leader ^ theirs.is_leader);
        assert_eq!(barrier.generation(), 1);
        assert_eq!(barrier.waiting(), 0);
    }

    #[test]
    fn a_deadline_ends_the_spin_and_yield_phases() {
        // Without a deadline check in both phases this would spin for minutes (4 G spins)
        // and then yield 4 G times before it ever looked at the clock.
        let barrier = BarrierCell::new(2).expect("valid");
        let endless = Backoff {
            spins: u32::MAX,
            yields: u32::MAX,
        };
        assert_eq!(
            barrier.wait_timeout(endless, Duration::from_millis(1)),
            Err(BarrierWaitError::Timeout)
        );
        assert_eq!(barrier.waiting(), 0, "the arrival was taken back");
        let yields_only = Backoff::yields(u32::MAX);
        assert_eq!(
            barrier.wait_timeout(yields_only, Duration::from_millis(1)),
            Err(BarrierWaitError::Timeout)
        );
        assert_eq!(barrier.waiting(), 0);
        assert_eq!(barrier.registered_waiters(), 0);
    }

    #[test]
    fn zero_timeout_alone_times_out_and_a_leader_never_times_out() {
        let barrier = BarrierCell::new(1).expect("valid");
        assert_eq!(
            barrier.wait_timeout(Backoff::PARK, Duration::ZERO),
            Ok(Arrival {
                generation: 0,
                is_leader: true
            })
        );
        let barrier = BarrierCell::new(3).expect("valid");
        assert_eq!(
            barrier.wait_timeout(Backoff::PARK, Duration::ZERO),
            Err(BarrierWaitError::Timeout)
        );
        assert_eq!(barrier.waiting(), 0);
    }

    #[test]
    fn timeouts_racing_completions_never_release_a_short_generation() {
        // Every wait has a tiny random timeout, so rollbacks constantly race last arrivals.
        // Whatever happens, each completed generation must have exactly `PARTIES`
        // successful arrivals and one leader, and nothing may stay counted at the end.
        const PARTIES: usize = 4;
        const ROUNDS: usize = 2000;
        let barrier = Arc::new(BarrierCell::new(PARTIES).expect("valid"));
        let handles: Vec<_> = (0..PARTIES as u64)
            .map(|seed| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut results = Vec::with_capacity(ROUNDS);
                    for _ in 0..ROUNDS {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let timeout = Duration::from_micros(rng % 40);
                        let backoff = Backoff {
                            spins: (rng % 64) as u32,
                            yields: ((rng >> 8) % 4) as u32,
                        };
                        results.push(barrier.wait_timeout(backoff, timeout));
                    }
                    results
                })
            })
            .collect();
        let mut per_generation: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut timeouts = 0usize;
        for handle in handles {
            for result in handle.join().expect("no panic") {
                match result {
                    Ok(arrival) => {
                        let entry = per_generation.entry(arrival.generation).or_default();
                        entry.0 += 1;
                        entry.1 += usize::from(arrival.is_leader);
                    }
                    Err(BarrierWaitError::Timeout) => timeouts += 1,
                    Err(BarrierWaitError::ShutDown) => panic!("never shut down"),
                }
            }
        }
        for (generation, (arrivals, leaders)) in &per_generation {
            assert_eq!(*arrivals, PARTIES, "generation {generation} arrivals");
            assert_eq!(*leaders, 1, "generation {generation} leaders");
        }
        assert_eq!(per_generation.len() as u64, barrier.generation());
        assert_eq!(
            per_generation.len() * PARTIES + timeouts,
            PARTIES * ROUNDS,
            "every call either completed a generation or was rolled back"
        );
        assert_eq!(barrier.waiting(), 0, "no arrival left counted");
        assert_eq!(barrier.registered_waiters(), 0);
    }

    #[test]
    fn shutdown_wakes_a_parked_waiter_and_refuses_later_waits() {
        let barrier = Arc::new(BarrierCell::new(3).expect("valid"));
        let (done_tx, done_rx) = mpsc::channel();
        let other = Arc::clone(&barrier);
        let waiter = std::thread::spawn(move || {
            let result = other.wait(Backoff::PARK);
            done_tx.send(()).expect("receiver alive");
            result
        });
        // Wait (yielding, no sleep) until the waiter has registered to park.
        while barrier.registered_waiters() == 0 {
            std::thread::yield_now();
        }
        assert!(
            done_rx.try_recv().is_err(),
            "it cannot pass with 1 of 3 parties"
        );
        barrier.shutdown();
        assert_eq!(
            waiter.join().expect("no panic"),
            Err(BarrierWaitError::ShutDown)
        );
        assert!(barrier.is_shut_down());
        assert_eq!(barrier.wait(Backoff::PARK), Err(BarrierWaitError::ShutDown));
        assert_eq!(
            barrier.wait_timeout(Backoff::PARK, Duration::from_secs(1)),
            Err(BarrierWaitError::ShutDown)
        );
        assert_eq!(barrier.registered_waiters(), 0);
        barrier.shutdown(); // idempotent
    }

    #[test]
    fn more_threads_than_parties_carry_into_the_next_generation() {
        // 6 threads share 600 waits on a 2-party barrier (a shared ticket counter, so no
        // thread is left alone at the end): 300 generations, each with two arrivals and
        // one leader, whatever the interleaving.
        use std::sync::atomic::AtomicUsize as StdAtomicUsize;
        const THREADS: usize = 6;
        const WAITS: usize = 600;
        let barrier = Arc::new(BarrierCell::new(2).expect("valid"));
        let tickets = Arc::new(StdAtomicUsize::new(0));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, tickets) = (Arc::clone(&barrier), Arc::clone(&tickets));
                std::thread::spawn(move || {
                    let mut arrivals = Vec::new();
                    while tickets.fetch_add(1, Ordering::Relaxed) < WAITS {
                        arrivals.push(barrier.wait(Backoff::spin(10)).expect("never shut down"));
                    }
                    arrivals
                })
            })
            .collect();
        let mut per_generation: HashMap<u64, (usize, usize)> = HashMap::new();
        for handle in handles {
            for arrival in handle.join().expect("no panic") {
                let entry = per_generation.entry(arrival.generation).or_default();
                entry.0 += 1;
                entry.1 += usize::from(arrival.is_leader);
            }
        }
        assert_eq!(per_generation.len(), WAITS / 2);
        assert!(per_generation.values().all(|&(a, l)| a == 2 && l == 1));
        assert_eq!(barrier.generation(), (WAITS / 2) as u64);
        assert_eq!(barrier.waiting(), 0);
        assert_eq!(barrier.registered_waiters(), 0);
    }

    /// Runs `PARTIES` threads through `rounds` rounds, checking every single wait: the
    /// `r`-th successful wait of every thread belongs to generation `r`; when it returns,
    /// every party has arrived at `r` and none is past `r + 1` (no waiter released early);
    /// each generation has one leader; a thread whose wait times out retries, and its
    /// retry must land in the same generation (a timeout took the arrival back, or the
    /// generation would have completed without it). A lost wake-up shows as a thread
    /// that never finishes: the watchdog turns that into a failure naming the state.
    fn stress_every_wait(rounds: u64, timeouts: bool) {
        use std::sync::atomic::AtomicU64 as StdAtomicU64;
        const PARTIES: usize = 16;
        let barrier = Arc::new(BarrierCell::new(PARTIES).expect("valid"));
        // stamps[i] = r + 1 while thread i is at (or has passed) round r.
        let stamps: Arc<Vec<StdAtomicU64>> =
            Arc::new((0..PARTIES).map(|_| StdAtomicU64::new(0)).collect());
        let (done_tx, done_rx) = mpsc::channel();
        for i in 0..PARTIES {
            let (barrier, stamps, done_tx) =
                (Arc::clone(&barrier), Arc::clone(&stamps), done_tx.clone());
            std::thread::spawn(move || {
                // Every way to wait: park at once, spin, yield, spin-then-yield.
                let backoff = match i % 4 {
                    0 => Backoff::PARK,
                    1 => Backoff::spin(300),
                    2 => Backoff::yields(4),
                    _ => Backoff {
                        spins: 50,
                        yields: 2,
                    },
                };
                let mut rng = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut leaders = Vec::new();
                let mut retries = 0u64;
                for round in 0..rounds {
                    stamps[i].store(round + 1, Ordering::Relaxed);
                    let arrival = loop {
                        // Half the threads (when asked) wait with short random timeouts.
                        let result = if timeouts && i % 2 == 1 {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            barrier.wait_timeout(backoff, Duration::from_micros(rng % 300))
                        } else {
                            barrier.wait(backoff)
                        };
                        match result {
                            Ok(arrival) => break arrival,
                            Err(BarrierWaitError::Timeout) => retries += 1,
                            Err(BarrierWaitError::ShutDown) => panic!("never shut down"),
                        }
                    };
                    assert_eq!(arrival.generation, round, "thread {i}: wrong generation");
                    for (j, stamp) in stamps.iter().enumerate() {
                        let seen = stamp.load(Ordering::Relaxed);
                        assert!(
                            seen == round + 1 || seen == round + 2,
                            "thread {i} released from generation {round} while thread {j} \
                             is at stamp {seen}"
                        );
                    }
                    if arrival.is_leader {
                        leaders.push(round);
                    }
                }
                done_tx
                    .send((leaders, retries))
                    .expect("the test waits for every thread");
            });
        }
        drop(done_tx);
        let mut leaders = vec![0u32; usize::try_from(rounds).expect("small")];
        for _ in 0..PARTIES {
            // A deadlock detector, not a wait for progress: a healthy run takes seconds.
            let (mine, _retries) = done_rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| match e {
                    mpsc::RecvTimeoutError::Timeout => {
                        panic!("a wake-up was lost: {barrier:?} after 120 s without progress")
                    }
                    mpsc::RecvTimeoutError::Disconnected => {
                        panic!("a party failed its checks (its panic is above)")
                    }
                });
            for round in mine {
                leaders[usize::try_from(round).expect("small")] += 1;
            }
        }
        assert!(leaders.iter().all(|&n| n == 1), "one leader per generation");
        assert_eq!(barrier.generation(), rounds);
        assert_eq!(barrier.waiting(), 0);
        assert_eq!(barrier.registered_waiters(), 0);
    }

    #[test]
    fn stress_sixteen_parties_every_wait_checked() {
        stress_every_wait(10_000, false);
    }

    #[test]
    fn stress_sixteen_parties_with_timeouts_every_wait_checked() {
        stress_every_wait(4_000, true);
    }

    #[test]
    fn errors_display_what_went_wrong() {
        assert_eq!(
            BarrierCellError::TooManyParties {
                parties: 5000,
                max: 4096
            }
            .to_string(),
            "5000 parties exceed the barrier bound of 4096"
        );
        assert!(BarrierWaitError::Timeout.to_string().contains("taken back"));
    }
}
