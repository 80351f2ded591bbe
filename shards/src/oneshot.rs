//! The ticket cell: one value, handed from one producer ([`Completer`]) to one waiter
//! ([`Waiter`]), without locks.
//!
//! The waiter can poll ([`Waiter::try_take`]), spin then park ([`Waiter::wait`]), or do the
//! same with a deadline ([`Waiter::wait_timeout`]). Parking costs microseconds to wake, so
//! the engine passes a spin count: while the waiter is still spinning, a completion reaches
//! it in about the time of one cache-line transfer.
//!
//! # Example
//!
//! ```
//! use mabeam_shards::oneshot::{oneshot, Canceled};
//!
//! let (completer, waiter) = oneshot::<u32>();
//! let producer = std::thread::spawn(move || completer.complete(7));
//! assert_eq!(waiter.wait(1_000), Ok(7));
//! producer.join().unwrap();
//!
//! let (completer, waiter) = oneshot::<u32>();
//! drop(completer); // never completed
//! assert_eq!(waiter.wait(0), Err(Canceled));
//! ```

use core::fmt;

use crate::sync::{spin_loop, thread, Arc, AtomicU8, Ordering, UnsafeCell};

/// Nothing yet; the waiter is not parked (it may be spinning or polling).
const EMPTY: u8 = 0;
/// Nothing yet; the waiter registered its thread handle and parks until woken.
const WAITING: u8 = 1;
/// The value is in the cell.
const READY: u8 = 2;
/// The completer was dropped without a value.
const CANCELED: u8 = 3;
/// The waiter took the value out.
const TAKEN: u8 = 4;

/// Creates a connected completer and waiter.
pub fn oneshot<T>() -> (Completer<T>, Waiter<T>) {
    let cell = Arc::new(Cell {
        state: AtomicU8::new(EMPTY),
        value: UnsafeCell::new(None),
        waiter: UnsafeCell::new(None),
    });
    (
        Completer {
            cell: Some(Arc::clone(&cell)),
        },
        Waiter { cell },
    )
}

/// The cell both halves share.
///
/// # Invariants (who may touch what)
///
/// - `state` moves EMPTY ⇄ WAITING (waiter only), then once to READY or CANCELED
///   (completer only, by `swap`), then READY → TAKEN (waiter only). The completer acts
///   exactly once.
/// - `value` belongs to the completer until its `swap` (`Release`) publishes READY, and to
///   the waiter once it has read READY (`Acquire`). Neither touches it otherwise; the cell's
///   drop drops whatever is left.
/// - `waiter` (the parked thread's handle) is written only by the waiter, and only right
///   after it has read EMPTY (`Acquire`) in the same call. EMPTY means the completer has
///   not acted (its swap leaves READY or CANCELED for good) and that no earlier
///   registration is outstanding (the waiter never returns with WAITING set: it either
///   sees the completer's result or takes the registration back by a successful CAS
///   WAITING → EMPTY, which the completer's swap would have made fail). The waiter
///   publishes the handle with the CAS EMPTY → WAITING (`Release`). The completer reads
///   it only if its `swap` (`Acquire`) replaced WAITING, and from then on the state is
///   never EMPTY again, so the waiter never writes it again: the two never access it at
///   the same time. (Before this rule the waiter wrote the handle on every call that
///   found no value, including a call made after it had taken the value, while the
///   completer could still be taking the handle out: a data race.)
/// - No lost wakeup: the completer publishes its result before it checks for WAITING (one
///   atomic `swap`), and the waiter registers before it parks and re-checks the state after
///   every return from `park`. Either the waiter's CAS fails (the result is there) or the
///   completer's swap sees WAITING and unparks it; an unpark that comes before the `park`
///   makes that `park` return at once.
struct Cell<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
    waiter: UnsafeCell<Option<thread::Thread>>,
}

// SAFETY: `Cell` is shared by an `Arc` between the completer's thread and the waiter's.
// Its `T` moves from the completer to the waiter (or is dropped with the cell on whichever
// thread drops the last `Arc`), so `T: Send` is required; no `&T` is ever handed out, so
// `T: Sync` is not. The other field, `Option<thread::Thread>`, is `Send + Sync` itself.
// Every access to the two `UnsafeCell`s is exclusive by the protocol on `state`
// described on `Cell` (each one is owned by one side at a time, and ownership passes
// only through an `AcqRel`/`Acquire`/`Release` operation on `state`).
unsafe impl<T: Send> Send for Cell<T> {}
// SAFETY: `&Cell` gives both threads only atomic access to `state` and access to the
// `UnsafeCell`s under the ownership rules above, never two accesses to one `UnsafeCell`
// at once; see `Send`.
unsafe impl<T: Send> Sync for Cell<T> {}

impl<T> Cell<T> {
    /// Completer side, called exactly once: publishes `value` (or cancellation) and wakes a
    /// registered waiter.
    fn resolve(&self, value: Option<T>) {
        let new_state = match value {
            Some(value) => {
                self.value.with_mut(|slot| {
                    // SAFETY: the completer owns `value` until the swap below publishes
                    // READY; the waiter reads it only after seeing READY.
                    unsafe { *slot = Some(value) }
                });
                READY
            }
            None => CANCELED,
        };
        // Release: publishes the value. Acquire: if the waiter registered, its handle.
        let previous = self.state.swap(new_state, Ordering::AcqRel);
        if previous == WAITING {
            let parked = self.waiter.with_mut(|handle| {
                // SAFETY: we replaced WAITING, so the waiter's handle was published before
                // (its CAS `Release`, our swap `Acquire`) and the waiter no longer touches
                // `waiter`: its only way back, the CAS WAITING → EMPTY, now fails.
                unsafe { (*handle).take() }
            });
            if let Some(thread) = parked {
                thread.unpark();
            }
        }
    }
}

/// The producing half: completes the ticket once.
///
/// Dropping it without calling [`complete`](Self::complete) cancels the ticket: the waiter
/// gets [`Canceled`] (and is woken if it is parked).
pub struct Completer<T> {
    /// `None` once resolved (by `complete`, so that `Drop` does nothing more).
    cell: Option<Arc<Cell<T>>>,
}

impl<T> Completer<T> {
    /// Hands `value` to the waiter and wakes it if it is parked.
    ///
    /// If the waiter was dropped, the value is dropped with the cell.
    pub fn complete(mut self, value: T) {
        if let Some(cell) = self.cell.take() {
            cell.resolve(Some(value));
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            cell.resolve(None);
        }
    }
}

impl<T> fmt::Debug for Completer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completer").finish_non_exhaustive()
    }
}

/// The waiting half: receives the ticket's value once.
///
/// Dropping it before completion is fine: the completer's value is then dropped with the
/// cell, nothing leaks.
pub struct Waiter<T> {
    cell: Arc<Cell<T>>,
}

impl<T> fmt::Debug for Waiter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl<T> Waiter<T> {
    /// Blocks until the ticket is resolved: the value, or [`Canceled`] if the completer was
    /// dropped without completing.
    ///
    /// First checks `spin` times with a spin-loop hint (cheap, wakes within about a
    /// microsecond), then parks the thread until the completer wakes it. Spurious wake-ups
    /// are absorbed.
    pub fn wait(mut self, spin: u32) -> Result<T, Canceled> {
        loop {
            // `park_forever` never gives up, so `None` cannot come back; looping keeps this
            // total without an `unreachable!`.
            if let Some(outcome) = self.wait_until(spin, park_forever) {
                return outcome;
            }
        }
    }

    /// Like [`wait`](Self::wait), but gives up after `timeout` (measured from the call; the
    /// spin phase comes first and is not cut short by it).
    ///
    /// After [`WaitError::Timeout`] the waiter is as before the call and can wait again; a
    /// completion racing the timeout is never lost (it is either returned now or kept for
    /// the next call).
    ///
    /// Not available under `--cfg mabeam_loom` (loom cannot model `park_timeout`); the loom
    /// models exercise the same give-up path through `wait_parks`.
    #[cfg(not(mabeam_loom))]
    pub fn wait_timeout(
        &mut self,
        spin: u32,
        timeout: std::time::Duration,
    ) -> Result<T, WaitError> {
        use std::time::Instant;
        // `None`: the deadline is beyond what `Instant` represents, i.e. never.
        let deadline = Instant::now().checked_add(timeout);
        let keep_waiting = || match deadline {
            None => park_forever(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                std::thread::park_timeout(deadline - now);
                true
            }
        };
        match self.wait_until(spin, keep_waiting) {
            None => Err(WaitError::Timeout),
            Some(outcome) => outcome.map_err(WaitError::from),
        }
    }

    /// For the loom models only: [`wait_timeout`](Self::wait_timeout) where the "timeout"
    /// fires after `parks` returns from `park` (0: right after registering), which drives
    /// the same race between taking the registration back and a completion.
    #[cfg(mabeam_loom)]
    #[doc(hidden)]
    pub fn wait_parks(&mut self, spin: u32, parks: u32) -> Result<T, WaitError> {
        let mut left = parks;
        let keep_waiting = || {
            if left == 0 {
                return false;
            }
            left -= 1;
            thread::park();
            true
        };
        match self.wait_until(spin, keep_waiting) {
            None => Err(WaitError::Timeout),
            Some(outcome) => outcome.map_err(WaitError::from),
        }
    }

    /// The outcome if the ticket is resolved, `None` while it is pending. Never blocks.
    ///
    /// The value is handed out once: after it has been taken (by this or another call),
    /// every later call reports [`Canceled`], since no further value will come.
    pub fn try_take(&mut self) -> Option<Result<T, Canceled>> {
        match self.cell.state.load(Ordering::Acquire) {
            EMPTY | WAITING => None,
            READY => Some(Ok(self.take_value())),
            _ => Some(Err(Canceled)),
        }
    }

    /// Whether the ticket is resolved, i.e. [`try_take`](Self::try_take) would return
    /// `Some` and [`wait`](Self::wait) would not block.
    pub fn is_ready(&self) -> bool {
        self.cell.state.load(Ordering::Acquire) >= READY
    }

    /// Takes the value out of a READY cell (state READY observed with `Acquire`).
    fn take_value(&mut self) -> T {
        let value = self.cell.value.with_mut(|slot| {
            // SAFETY: READY was observed with `Acquire`, which synchronises with the
            // completer's `Release` swap after its write; the completer never touches
            // `value` again, and `&mut self` makes this the only waiter access.
            unsafe { (*slot).take() }
        });
        // Only the waiter stores after READY; no other thread reads this transition's data.
        self.cell.state.store(TAKEN, Ordering::Relaxed);
        value.expect("state READY means the completer stored a value before publishing it")
    }

    /// Spins `spin` times, then registers and parks through `keep_waiting` (which parks once
    /// and returns `true`, or returns `false` to give up) until the ticket is resolved.
    /// `None`: gave up, with the registration taken back (state EMPTY again).
    fn wait_until(
        &mut self,
        spin: u32,
        mut keep_waiting: impl FnMut() -> bool,
    ) -> Option<Result<T, Canceled>> {
        for _ in 0..spin {
            if let Some(outcome) = self.try_take() {
                return Some(outcome);
            }
            spin_loop();
        }
        // Only a pending, unregistered cell may take the handle: in any other state the
        // completer may still be taking the previous handle out (see `Cell`).
        if self.cell.state.load(Ordering::Acquire) != EMPTY {
            // READY, CANCELED or TAKEN (never WAITING here): `try_take` answers.
            return self.try_take();
        }
        self.cell.waiter.with_mut(|handle| {
            // SAFETY: we read EMPTY just above, so the completer has not swapped and holds
            // no handle, and no registration of ours is outstanding: the waiter owns
            // `waiter` until its CAS below publishes it (see `Cell`).
            unsafe { *handle = Some(thread::current()) }
        });
        // Release: publishes the handle to the completer. Acquire on failure: the result.
        if self
            .cell
            .state
            .compare_exchange(EMPTY, WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Resolved before we could register (READY, CANCELED or TAKEN): never `None`.
            return self.try_take();
        }
        while self.cell.state.load(Ordering::Acquire) == WAITING {
            if !keep_waiting() {
                // Take the registration back, unless the completer resolved meanwhile.
                // (AcqRel is more than needed: cold path.)
                match self.cell.state.compare_exchange(
                    WAITING,
                    EMPTY,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return None,
                    Err(_) => break,
                }
            }
        }
        self.try_take()
    }
}

/// Parks the current thread once (it may return spuriously); always keeps waiting.
fn park_forever() -> bool {
    thread::park();
    true
}

/// The completer was dropped without completing, or the value was already taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled;

impl fmt::Display for Canceled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ticket canceled: its completer was dropped without a value (or the value was already taken)")
    }
}

impl std::error::Error for Canceled {}

/// Why a timed wait returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// The timeout passed first; the waiter can wait again.
    Timeout,
    /// The completer was dropped without completing (or the value was already taken).
    Canceled,
}

impl From<Canceled> for WaitError {
    fn from(_: Canceled) -> Self {
        WaitError::Canceled
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Timeout => f.write_str("ticket wait timed out before completion"),
            WaitError::Canceled => Canceled.fmt(f),
        }
    }
}

impl std::error::Error for WaitError {}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its drops.
    struct Counted(std::sync::Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn completed_before_wait_is_returned_at_once() {
        let (c, mut w) = oneshot();
        assert!(!w.is_ready());
        assert_eq!(w.try_take(), None);
        c.complete(5u8);
        assert!(w.is_ready());
        assert_eq!(w.wait(0), Ok(5));
    }

    #[test]
    fn value_is_taken_once_then_canceled() {
        let (c, mut w) = oneshot();
        c.complete(String::from("x"));
        assert_eq!(w.try_take(), Some(Ok(String::from("x"))));
        assert_eq!(w.try_take(), Some(Err(Canceled)));
        assert_eq!(w.wait_timeout(0, Duration::ZERO), Err(WaitError::Canceled));
    }

    #[test]
    fn dropped_completer_cancels() {
        let (c, mut w) = oneshot::<u8>();
        drop(c);
        assert!(w.is_ready());
        assert_eq!(w.try_take(), Some(Err(Canceled)));
        assert_eq!(w.wait(10), Err(Canceled));
    }

    #[test]
    fn parked_waiter_is_woken_by_complete_and_by_cancel() {
        for cancel in [false, true] {
            for spin in [0, 100] {
                let (c, w) = oneshot::<u64>();
                let producer = std::thread::spawn(move || {
                    if cancel {
                        drop(c);
                    } else {
                        c.complete(99);
                    }
                });
                let expected = if cancel { Err(Canceled) } else { Ok(99) };
                assert_eq!(w.wait(spin), expected);
                producer.join().expect("producer panicked");
            }
        }
    }

    #[test]
    fn timeout_leaves_the_waiter_usable() {
        let (c, mut w) = oneshot::<u32>();
        assert_eq!(
            w.wait_timeout(0, Duration::ZERO),
            Err(WaitError::Timeout),
            "zero timeout with nothing there"
        );
        assert_eq!(
            w.wait_timeout(10, Duration::from_micros(50)),
            Err(WaitError::Timeout)
        );
        assert_eq!(w.try_take(), None, "still pending after the timeouts");
        let producer = std::thread::spawn(move || c.complete(3));
        assert_eq!(
            w.wait_timeout(0, Duration::MAX),
            Ok(3),
            "no overflow on MAX"
        );
        producer.join().expect("producer panicked");
    }

    #[test]
    fn timed_wait_gets_a_value_completed_from_another_thread() {
        for _ in 0..200 {
            let (c, mut w) = oneshot::<u32>();
            let producer = std::thread::spawn(move || c.complete(8));
            // Long enough never to fire on a loaded machine; it only bounds a failure.
            assert_eq!(w.wait_timeout(0, Duration::from_secs(30)), Ok(8));
            producer.join().expect("producer panicked");
        }
    }

    #[test]
    fn values_are_dropped_exactly_once_whoever_goes_first() {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        // Waiter dropped before completion: the value dies with the cell.
        let (c, w) = oneshot();
        drop(w);
        c.complete(Counted(drops.clone()));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // Completed, never taken, waiter dropped last.
        let (c, w) = oneshot();
        c.complete(Counted(drops.clone()));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(w);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Taken: dropped by the taker, not again by the cell.
        let (c, w) = oneshot();
        c.complete(Counted(drops.clone()));
        let taken = w.wait(0).expect("completed");
        drop(taken);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn ping_pong_between_threads() {
        const ROUNDS: u32 = 2_000;
        let (to_echo, echo_rx) = std::sync::mpsc::sync_channel::<(u32, Completer<u32>)>(1);
        let echo = std::thread::spawn(move || {
            for (n, reply) in echo_rx {
                reply.complete(n + 1);
            }
        });
        for n in 0..ROUNDS {
            let (c, w) = oneshot();
            to_echo.send((n, c)).expect("echo thread alive");
            assert_eq!(w.wait(if n % 2 == 0 { 0 } else { 1_000 }), Ok(n + 1));
        }
        drop(to_echo);
        echo.join().expect("echo thread panicked");
    }

    #[test]
    fn errors_display_what_happened() {
        assert!(Canceled.to_string().contains("canceled"));
        assert!(WaitError::Timeout.to_string().contains("timed out"));
        assert_eq!(WaitError::from(Canceled), WaitError::Canceled);
    }
}
