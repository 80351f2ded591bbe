//! Termination of a group of shards that message each other: how shutdown knows that
//! every accepted host command has been applied *and* everything those commands made
//! one shard send to another has been applied too, so that the shards can stop.
//!
//! Each shard reports [`host_done`](Termination::host_done) once its mailbox is closed
//! and drained (it will never apply another host command) and it has stopped running
//! timers. Shard-to-shard messages are counted from the moment they are produced
//! ([`produced`](Termination::produced), before they are pushed) until they have been
//! applied ([`consumed`](Termination::consumed)); a shard that applies a message counts
//! what that produced before it counts the message consumed.
//!
//! **Quiet** means every shard is host-done and nothing is in flight. Once quiet, it
//! stays quiet: host-done shards apply only shard-to-shard messages, and there are none,
//! so nothing can produce more. The thread running the shutdown waits for quiet
//! ([`wait_quiet`](Termination::wait_quiet)), then [`stop`](Termination::stop)s the
//! shards.
//!
//! Wake-ups follow the [`Doorbell`] protocol: every change that can make the group quiet
//! is a `SeqCst` read-modify-write followed by a ring of the coordinator's bell, and the
//! coordinator's check loads both counters `SeqCst`.

use core::fmt;

use crate::doorbell::Doorbell;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The termination state of a group of shards; see the [module docs](self).
pub struct Termination {
    shards: usize,
    inflight: crossbeam_utils::CachePadded<AtomicU64>,
    done: AtomicUsize,
    stopped: AtomicBool,
    coordinator: Doorbell,
}

impl fmt::Debug for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Termination")
            .field("shards", &self.shards)
            .field("inflight", &self.inflight.load(Ordering::Relaxed))
            .field("done", &self.done.load(Ordering::Relaxed))
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Termination {
    /// The state of a group of `shards` shards, none done, nothing in flight.
    pub fn new(shards: usize) -> Self {
        Self {
            shards,
            inflight: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            done: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            coordinator: Doorbell::new(),
        }
    }

    /// A shard produced `n` shard-to-shard messages (call before pushing them).
    #[inline]
    pub fn produced(&self, n: u64) {
        if n > 0 {
            self.inflight.fetch_add(n, Ordering::SeqCst);
        }
    }

    /// `n` shard-to-shard messages were applied (or discarded because their target is
    /// dead). Call after counting what applying them produced.
    #[inline]
    pub fn consumed(&self, n: u64) {
        if n > 0 && self.inflight.fetch_sub(n, Ordering::SeqCst) == n {
            self.coordinator.ring();
        }
    }

    /// A shard will apply no more host commands and run no more timers. Each shard calls
    /// it once.
    pub fn host_done(&self) {
        self.done.fetch_add(1, Ordering::SeqCst);
        self.coordinator.ring();
    }

    /// Messages in flight now.
    pub fn inflight(&self) -> u64 {
        self.inflight.load(Ordering::SeqCst)
    }

    /// True when every shard is host-done and nothing is in flight (and then forever).
    pub fn is_quiet(&self) -> bool {
        self.done.load(Ordering::SeqCst) >= self.shards && self.inflight.load(Ordering::SeqCst) == 0
    }

    /// Coordinator side (one thread): returns once the group is quiet. `purge` runs
    /// before every check; it discards (and counts consumed) messages that can never be
    /// applied, such as those in the lanes of a dead shard.
    pub fn wait_quiet(&self, mut purge: impl FnMut()) {
        loop {
            purge();
            if self.is_quiet() {
                return;
            }
            // The timeout only bounds how often `purge` runs for messages pushed into a
            // dead shard's lanes, which ring nobody; live progress rings the bell.
            #[cfg(not(mabeam_loom))]
            let timeout = Some(core::time::Duration::from_millis(1));
            #[cfg(mabeam_loom)]
            let timeout = None;
            self.coordinator.sleep(|| self.is_quiet(), timeout);
        }
    }

    /// Tells the shards to stop (after [`wait_quiet`](Self::wait_quiet)); they read it
    /// with [`is_stopped`](Self::is_stopped). The caller rings each shard's bell.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// True once [`stop`](Self::stop) was called (`SeqCst`, fit for a [`Doorbell`] work
    /// check).
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}
