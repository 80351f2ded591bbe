//! Shard-to-shard lanes: one bounded single-producer queue per ordered pair of shards,
//! as in Seastar's per-core-pair queues, so that messages between shards never compete
//! with host traffic for room.
//!
//! [`Incoming`] is what one shard receives: a lane from every shard (its own included,
//! unused) and a count of the messages pushed and not yet popped, which is the receiver's
//! [`Doorbell`] work check. A lane is allocated on its first push, so `n` shards that
//! never talk cost `n²` empty slots, not `n²` buffers.
//!
//! A full lane does not refuse a message: [`Incoming::push_from`] pushes what fits and
//! leaves the rest with the sender, which keeps it, keeps draining its *own* incoming
//! lanes, and retries. No shard ever blocks on another, so two shards whose lanes to each
//! other are full both still drain, and neither can deadlock; the sender stops taking
//! host commands meanwhile, which pushes back on hosts instead of dropping.
//!
//! # Protocol
//!
//! The sender pushes into its lane, then adds the count to `pending` (`SeqCst`), then
//! rings. The receiver pops, then subtracts. `pending` is never below the number of
//! messages in the lanes, so a receiver that sees `pending == 0` after announcing its
//! sleep has missed nothing that was fully pushed, and a sender whose `fetch_add` comes
//! after that check sees SLEEPING and wakes it (see [`Doorbell`]).

use core::fmt;
use std::collections::VecDeque;

use crate::doorbell::Doorbell;
use crate::sync::{Arc, AtomicU64, BoundedQueue, Ordering};

#[cfg(not(mabeam_loom))]
type Slot<T> = std::sync::OnceLock<BoundedQueue<T>>;
#[cfg(mabeam_loom)]
type Slot<T> = BoundedQueue<T>;

/// The lanes into one shard; see the [module docs](self).
pub struct Incoming<T> {
    lanes: Box<[Slot<T>]>,
    capacity: usize,
    pending: crossbeam_utils::CachePadded<AtomicU64>,
    bell: Arc<Doorbell>,
}

impl<T> fmt::Debug for Incoming<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("lanes", &self.lanes.len())
            .field("capacity", &self.capacity)
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish()
    }
}

impl<T> Incoming<T> {
    /// The lanes from `shards` senders into a receiver that sleeps on `bell`, each
    /// holding at most `capacity` messages (at least 1).
    pub fn new(shards: usize, capacity: usize, bell: Arc<Doorbell>) -> Self {
        let capacity = capacity.max(1);
        #[cfg(not(mabeam_loom))]
        let lanes = (0..shards).map(|_| Slot::new()).collect();
        #[cfg(mabeam_loom)]
        let lanes = (0..shards).map(|_| BoundedQueue::new(capacity)).collect();
        Self {
            lanes,
            capacity,
            pending: crossbeam_utils::CachePadded::new(AtomicU64::new(0)),
            bell,
        }
    }

    /// Most messages one lane holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lane(&self, from: usize) -> &BoundedQueue<T> {
        #[cfg(not(mabeam_loom))]
        return self.lanes[from].get_or_init(|| BoundedQueue::new(self.capacity));
        #[cfg(mabeam_loom)]
        return &self.lanes[from];
    }

    /// Sender `from` (the lane's only producer) pushes as many of `msgs` as fit, oldest
    /// first, and wakes the receiver; what did not fit stays in `msgs`. Returns the
    /// number pushed.
    ///
    /// # Panics
    ///
    /// If `from` is not a sender index given to [`new`](Self::new).
    pub fn push_from(&self, from: usize, msgs: &mut VecDeque<T>) -> usize {
        let lane = self.lane(from);
        let mut pushed = 0u64;
        while let Some(msg) = msgs.pop_front() {
            if let Err(msg) = lane.push(msg) {
                msgs.push_front(msg);
                break;
            }
            pushed += 1;
        }
        if pushed > 0 {
            self.pending.fetch_add(pushed, Ordering::SeqCst);
            self.bell.ring();
        }
        pushed as usize
    }

    /// Messages queued now in each lane, by sender (a lane never used reads 0). For
    /// observation: each lane is read on its own, so the set is not one instant.
    pub fn lane_depths(&self) -> Vec<usize> {
        #[cfg(not(mabeam_loom))]
        return self
            .lanes
            .iter()
            .map(|l| l.get().map_or(0, BoundedQueue::len))
            .collect();
        #[cfg(mabeam_loom)]
        return self.lanes.iter().map(BoundedQueue::len).collect();
    }

    /// Messages pushed and not yet popped (a `SeqCst` load, fit for a [`Doorbell`] work
    /// check).
    #[inline]
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }

    /// Receiver side: pops up to `max` messages, visiting the lanes from sender `start`
    /// on (rotate it between calls so no lane starves), handing each to `f`. Returns the
    /// number popped.
    pub fn pop_into(&self, start: usize, max: usize, mut f: impl FnMut(T)) -> usize {
        if self.pending.load(Ordering::Acquire) == 0 || max == 0 {
            return 0;
        }
        let n = self.lanes.len();
        let mut popped = 0;
        for k in 0..n {
            let from = (start + k) % n;
            #[cfg(not(mabeam_loom))]
            let Some(lane) = self.lanes[from].get() else {
                continue;
            };
            #[cfg(mabeam_loom)]
            let lane = &self.lanes[from];
            while popped < max {
                match lane.pop() {
                    Some(msg) => {
                        popped += 1;
                        f(msg);
                    }
                    None => break,
                }
            }
            if popped == max {
                break;
            }
        }
        if popped > 0 {
            self.pending.fetch_sub(popped as u64, Ordering::SeqCst);
        }
        popped
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_full_lane_leaves_the_rest_with_the_sender() {
        let incoming = Incoming::new(2, 3, Arc::new(Doorbell::new()));
        let mut out: VecDeque<u32> = (0..5).collect();
        assert_eq!(incoming.push_from(1, &mut out), 3);
        assert_eq!(out, VecDeque::from(vec![3, 4]));
        assert_eq!(incoming.pending(), 3);
        let mut got = Vec::new();
        assert_eq!(incoming.pop_into(0, 2, |m| got.push(m)), 2);
        assert_eq!(incoming.push_from(1, &mut out), 2);
        assert!(out.is_empty());
        incoming.pop_into(0, usize::MAX, |m| got.push(m));
        assert_eq!(got, vec![0, 1, 2, 3, 4], "FIFO per lane");
        assert_eq!(incoming.pending(), 0);
    }

    #[test]
    fn lanes_are_allocated_on_first_use_and_all_are_visited() {
        let incoming = Incoming::new(4, 8, Arc::new(Doorbell::new()));
        assert!(incoming.lanes.iter().all(|l| l.get().is_none()));
        for from in [3, 0, 2] {
            incoming.push_from(from, &mut VecDeque::from(vec![from as u32]));
        }
        assert!(incoming.lanes[1].get().is_none());
        let mut got = Vec::new();
        incoming.pop_into(1, usize::MAX, |m| got.push(m));
        assert_eq!(got, vec![2, 3, 0], "visited from sender 1 on");
    }
}
