//! What each shard counts about itself: written by the shard alone, once per batch, and
//! read by anyone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam::utils::CachePadded;

/// One shard's counters. The owner updates them with `Relaxed` adds once per batch, on
/// a cache line of their own, so readers cost the shard nothing but the line's
/// transfer when they look.
#[derive(Debug, Default)]
pub(crate) struct ShardStats {
    counters: CachePadded<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    applied: AtomicU64,
    forwarded: AtomicU64,
    panics: AtomicU64,
    batches: AtomicU64,
    died: AtomicBool,
}

impl ShardStats {
    /// Counts a batch of `applied` commands, `forwarded` of which came from shards
    /// (this one included) and `panics` of which panicked.
    #[inline]
    pub(crate) fn batch(&self, applied: u64, forwarded: u64, panics: u64) {
        let c = &self.counters;
        c.applied.fetch_add(applied, Ordering::Relaxed);
        if forwarded > 0 {
            c.forwarded.fetch_add(forwarded, Ordering::Relaxed);
        }
        c.batches.fetch_add(1, Ordering::Relaxed);
        if panics > 0 {
            c.panics.fetch_add(panics, Ordering::Relaxed);
        }
    }

    /// The shard's thread died.
    pub(crate) fn died(&self) {
        self.counters.died.store(true, Ordering::Relaxed);
    }

    /// Commands applied so far.
    pub(crate) fn applied(&self) -> u64 {
        self.counters.applied.load(Ordering::Relaxed)
    }

    /// The counters as a report for shard `shard`.
    pub(crate) fn report(&self, shard: usize) -> ShardReport {
        let c = &self.counters;
        ShardReport {
            shard,
            applied: c.applied.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            panics: c.panics.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            died: c.died.load(Ordering::Relaxed),
        }
    }
}

/// What one shard did, reported by [`Engine::shutdown`](crate::Engine::shutdown) (and,
/// while it runs, by [`EngineHandle::shard_reports`](crate::EngineHandle::shard_reports)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardReport {
    /// Shard index.
    pub shard: usize,
    /// Commands applied (each command of a batch counts, and each flush).
    pub applied: u64,
    /// Of `applied`, the messages shards sent each other (a sale's market feed; a
    /// shard's message to itself counts too): `applied - forwarded` is what the hosts
    /// sent.
    pub forwarded: u64,
    /// Commands whose handler panicked (each failed its own ticket only).
    pub panics: u64,
    /// Batches the shard ran.
    pub batches: u64,
    /// True if the shard's thread died (it panicked outside a handler); from then on
    /// every call that needed it returned [`Error::ShardDown`](crate::Error::ShardDown).
    pub died: bool,
}
