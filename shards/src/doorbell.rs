//! A doorbell: how one consumer thread sleeps until any of many producers has work for
//! it, without a lock and without a lost wakeup.
//!
//! The consumer is a shard (its producers are host threads sending to its mailbox and
//! other shards pushing into its lanes) or the thread running a shutdown (its producers
//! are the shards reporting progress). Producers publish their work first (a queue push
//! and an atomic write to a counter the consumer checks), then
//! [`ring`](Doorbell::ring); the consumer announces that it is going to sleep, checks
//! for work, and only then parks.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use mabeam_shards::doorbell::Doorbell;
//!
//! let bell = Arc::new(Doorbell::new());
//! let work = Arc::new(AtomicU64::new(0));
//! let (b, w) = (bell.clone(), work.clone());
//! let producer = std::thread::spawn(move || {
//!     w.fetch_add(1, Ordering::SeqCst); // publish the work...
//!     b.ring(); // ...then ring
//! });
//! while work.load(Ordering::SeqCst) == 0 {
//!     bell.sleep(|| work.load(Ordering::SeqCst) > 0, None);
//! }
//! producer.join().unwrap();
//! ```
//!
//! # Protocol
//!
//! `state` is AWAKE or SLEEPING. The consumer stores SLEEPING, issues a `SeqCst` fence,
//! then evaluates its work check; a producer writes its work, issues a `SeqCst` fence
//! (the first thing `ring` does), then loads `state`. The two fences are ordered in the
//! single total order of `SeqCst` fences: if the consumer's comes first, the producer's
//! load sees SLEEPING and unparks; if the producer's comes first, the consumer's check
//! sees the work and does not park. (A pair of `SeqCst` *fences* rather than `SeqCst`
//! accesses: the fence form is the one both the C++ model and loom guarantee for this
//! store-buffer pattern.)
//! Only the producer whose CAS takes SLEEPING → AWAKE unparks, so many producers
//! ringing at once cost the consumer one wake, not one each. An unpark that lands before
//! the `park` makes that `park` return at once; a spurious return is absorbed because the
//! consumer re-checks its work on every loop.

use core::fmt;

use crate::sync::{fence, thread, AtomicU8, Ordering, UnsafeCell};

/// The consumer runs (or is about to check for work).
const AWAKE: u8 = 0;
/// The consumer has announced that it parks unless its work check finds something.
const SLEEPING: u8 = 1;

/// One consumer's wake-up bell; see the [module docs](self).
///
/// # Invariants
///
/// - `state` is SLEEPING only between the consumer's announcing store in
///   [`sleep`](Self::sleep) and either its own reset to AWAKE or a producer's successful
///   CAS to AWAKE.
/// - `thread` is written once, by the consumer, before its first SLEEPING store, and
///   never again; producers read it only after a CAS that took SLEEPING. The SLEEPING
///   store is `Release` and the CAS `Acquire`, so the write happens-before every read,
///   and no two accesses conflict.
pub struct Doorbell {
    state: AtomicU8,
    thread: UnsafeCell<Option<thread::Thread>>,
}

// SAFETY: `thread` is written once by the consumer before it is published (see the
// invariants above) and only read afterwards, so sharing the bell between threads never
// races on it; `thread::Thread` is itself `Send + Sync`.
unsafe impl Send for Doorbell {}
// SAFETY: as for `Send`.
unsafe impl Sync for Doorbell {}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doorbell")
            .field(
                "sleeping",
                &(self.state.load(Ordering::Relaxed) == SLEEPING),
            )
            .finish()
    }
}

impl Doorbell {
    /// A bell whose consumer is awake.
    pub fn new() -> Self {
        Self {
            state: AtomicU8::new(AWAKE),
            thread: UnsafeCell::new(None),
        }
    }

    /// Producer side: wakes the consumer if it is asleep or about to park. Call it after
    /// writing the work (an atomic the consumer's work check reads).
    #[inline]
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        // A CAS, not a swap: a producer that finds the consumer awake writes nothing, so
        // the only writes to `state` are the consumer's own and the one winning CAS.
        if self.state.load(Ordering::Relaxed) == SLEEPING
            && self
                .state
                .compare_exchange(SLEEPING, AWAKE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let handle = self.thread.with(|t| {
                // SAFETY: the CAS above took SLEEPING, which the consumer stored
                // (`Release`) after writing `thread` (its only write); our `Acquire`
                // makes that write visible, and nobody writes `thread` again.
                unsafe { (*t).clone() }
            });
            if let Some(t) = handle {
                t.unpark();
            }
        }
    }

    /// Consumer side: parks the calling thread unless `has_work` finds work after the
    /// bell announced the sleep. Returns after a ring, after `timeout` (when given), or
    /// spuriously; the caller re-checks its work either way.
    ///
    /// `has_work` must read the atomics the producers write before they ring (any
    /// ordering: the fence here orders them; use `Acquire` or stronger to also see the
    /// data they guard). Only one thread may ever call `sleep` on a bell (its consumer).
    pub fn sleep(&self, has_work: impl FnOnce() -> bool, timeout: Option<core::time::Duration>) {
        self.register();
        // Release: publishes `thread` to the producer whose CAS takes SLEEPING.
        self.state.store(SLEEPING, Ordering::Release);
        fence(Ordering::SeqCst);
        if !has_work() {
            match timeout {
                #[cfg(not(mabeam_loom))]
                Some(t) => thread::park_timeout(t),
                // Loom cannot model a timed park; its models never pass a timeout.
                #[cfg(mabeam_loom)]
                Some(_) => thread::park(),
                None => thread::park(),
            }
        }
        // Back to AWAKE whether a producer did it (then this is a no-op) or not (timeout,
        // spurious wake, or work found before parking).
        self.state.store(AWAKE, Ordering::Relaxed);
    }

    /// Writes the consumer's thread handle the first time it sleeps.
    fn register(&self) {
        self.thread.with_mut(|t| {
            // SAFETY: only the consumer writes `thread`, and it does so before its first
            // SLEEPING store; producers read it only after taking SLEEPING, so no read
            // can overlap this write. Later calls find `Some` and do not write.
            unsafe {
                if (*t).is_none() {
                    *t = Some(thread::current());
                }
            }
        });
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;

    #[test]
    fn a_ring_before_the_sleep_is_not_lost() {
        let bell = Doorbell::new();
        let work = AtomicU64::new(1);
        bell.ring(); // nobody sleeps: nothing happens
        bell.sleep(|| work.load(Ordering::SeqCst) > 0, None); // returns at once
    }

    #[test]
    fn many_producers_wake_one_consumer() {
        for _ in 0..200 {
            let bell = Arc::new(Doorbell::new());
            let work = Arc::new(AtomicU64::new(0));
            let producers: Vec<_> = (0..3)
                .map(|_| {
                    let (b, w) = (bell.clone(), work.clone());
                    std::thread::spawn(move || {
                        w.fetch_add(1, Ordering::SeqCst);
                        b.ring();
                    })
                })
                .collect();
            loop {
                let seen = work.load(Ordering::SeqCst);
                if seen == 3 {
                    break;
                }
                bell.sleep(|| work.load(Ordering::SeqCst) > seen, None);
            }
            for p in producers {
                p.join().unwrap();
            }
        }
    }
}
