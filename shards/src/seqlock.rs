//! Seqlock slots: one writer publishes a fixed-size record, any number of readers read it
//! optimistically without ever blocking the writer.
//!
//! The payload lives in atomic words read and written `Relaxed`, so a reader racing the
//! writer reads possibly-mixed words (then throws them away) but never commits a data race:
//! the seqlock is sound in Rust's memory model, not just "works on x86".
//!
//! The recipe (DESIGN.md, "Seqlock, sound in Rust's memory model"):
//!
//! - writer (alone): `seq.store(s + 1, Relaxed); fence(Release);` payload words `Relaxed`;
//!   `seq.store(s + 2, Release)`;
//! - reader: `s1 = seq.load(Acquire)` (odd: a write is in progress, retry); payload words
//!   `Relaxed`; `fence(Acquire); s2 = seq.load(Relaxed)`; accept the words only if
//!   `s1 == s2`.
//!
//! Why it is enough: if the reader saw any word written by a later write, that word was
//! written after the writer's `fence(Release)`, which then synchronises with the reader's
//! `fence(Acquire)`, so the reader's second load of `seq` sees at least that write's odd
//! `s + 1` and the read is rejected. If `s1` is even and equal to `s2`, every word the
//! reader saw was written before `s1` was published (`Release`/`Acquire` on `seq`) and none
//! after, so the words are exactly the record published with `s1`.
//!
//! `write_with` and `try_read_with` (crate-private) are the recipe over any set of atomic words; the
//! snapshot table (`crate::table`) uses them for its slots. [`SeqSlot`] is the recipe over
//! `W` words.

use crate::sync::{fence, spin_loop, AtomicU64, Ordering};

/// Runs `write_payload` (which must store the payload words, `Relaxed`) inside the writer
/// half of the seqlock protocol on `seq`.
///
/// Exactly one thread may write through a given `seq` at a time. Two concurrent writers are
/// a logic error (readers may then accept a mix of the two records) but never undefined
/// behaviour: every access is atomic.
#[inline]
pub(crate) fn write_with(seq: &AtomicU64, write_payload: impl FnOnce()) {
    // Only the writer stores `seq`, so its own last store is what it loads.
    let s = seq.load(Ordering::Relaxed);
    seq.store(s.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    write_payload();
    seq.store(s.wrapping_add(2), Ordering::Release);
}

/// Runs `read_payload` (which must load the payload words, `Relaxed`) inside the reader half
/// of the seqlock protocol on `seq`; returns its result only if no write raced it.
///
/// `read_payload` may observe a mix of two records; its result is discarded in that case,
/// so it must not act on what it read (just copy words out).
#[inline]
pub(crate) fn try_read_with<R>(seq: &AtomicU64, read_payload: impl FnOnce() -> R) -> Option<R> {
    let s1 = seq.load(Ordering::Acquire);
    if s1 & 1 == 1 {
        return None;
    }
    let payload = read_payload();
    fence(Ordering::Acquire);
    let s2 = seq.load(Ordering::Relaxed);
    (s1 == s2).then_some(payload)
}

/// Loads `words` into a plain array, `Relaxed` (the payload half of a seqlock read).
#[inline]
pub(crate) fn load_words<const W: usize>(words: &[AtomicU64; W]) -> [u64; W] {
    let mut out = [0u64; W];
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.load(Ordering::Relaxed);
    }
    out
}

/// Stores `values` into `words`, `Relaxed` (the payload half of a seqlock write).
#[inline]
pub(crate) fn store_words<const W: usize>(words: &[AtomicU64; W], values: &[u64; W]) {
    for (w, v) in words.iter().zip(values) {
        w.store(*v, Ordering::Relaxed);
    }
}

/// A record of `W` 64-bit words published by one writer and read by any number of readers
/// without locks.
///
/// # Invariants
///
/// - `seq` is even when no write is in progress and odd while one is; it only grows (by 2
///   per write), so two reads that see the same even `seq` saw the same record.
/// - Only one thread writes at a time (the owning shard). Concurrent writers are a logic
///   error: readers may then accept a mix of two records. It is never undefined behaviour,
///   because every word is an atomic.
/// - Readers never write anything, so they never slow the writer down beyond sharing the
///   cache line.
///
/// The slot is not padded: a hot slot that sits next to other hot data should be wrapped in
/// [`crossbeam_utils::CachePadded`] so readers of its neighbours do not bounce its line.
///
/// # Example
///
/// ```
/// use mabeam_shards::seqlock::SeqSlot;
///
/// let slot = SeqSlot::new([0u64, 0]);
/// let v0 = slot.version();
/// slot.write(&[7, 42]);
/// assert_eq!(slot.read(), [7, 42]);
/// assert_eq!(slot.try_read(), Some([7, 42]));
/// assert!(slot.version() > v0);
/// ```
#[derive(Debug)]
pub struct SeqSlot<const W: usize> {
    /// Even: the record is stable; odd: a write is in progress.
    seq: AtomicU64,
    /// The record, read and written `Relaxed` under the protocol on `seq`.
    words: [AtomicU64; W],
}

impl<const W: usize> SeqSlot<W> {
    /// A slot holding `init`, at version 0.
    pub fn new(init: [u64; W]) -> Self {
        Self {
            seq: AtomicU64::new(0),
            words: init.map(AtomicU64::new),
        }
    }

    /// Publishes `words` as the slot's record.
    ///
    /// Must be called by one thread at a time (the slot's single writer); see the type's
    /// invariants for what concurrent writers cause (a logic error, never UB).
    pub fn write(&self, words: &[u64; W]) {
        write_with(&self.seq, || store_words(&self.words, words));
    }

    /// One optimistic read: the record, or `None` if a write was in progress or raced the
    /// read (call again, or use [`read`](Self::read)).
    pub fn try_read(&self) -> Option<[u64; W]> {
        try_read_with(&self.seq, || load_words(&self.words))
    }

    /// Reads a consistent record, retrying (with a spin-loop hint) while writes race it.
    ///
    /// Never blocks the writer; it can only be delayed by a writer that keeps writing (or
    /// that stalls in the middle of a write).
    pub fn read(&self) -> [u64; W] {
        loop {
            if let Some(words) = self.try_read() {
                return words;
            }
            spin_loop();
        }
    }

    /// The version of the last completed write: an even number that grows by 2 per write
    /// (0 for a fresh slot). Two equal versions mean no write completed in between, so a
    /// reader can cheaply detect change without copying the record.
    pub fn version(&self) -> u64 {
        // A write in progress has `seq = last + 1`; clearing the low bit reports `last`.
        self.seq.load(Ordering::Acquire) & !1
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn new_slot_reads_its_initial_record_at_version_zero() {
        let slot = SeqSlot::new([1u64, 2, 3]);
        assert_eq!(slot.read(), [1, 2, 3]);
        assert_eq!(slot.try_read(), Some([1, 2, 3]));
        assert_eq!(slot.version(), 0);
    }

    #[test]
    fn each_write_is_read_back_and_bumps_the_version_by_two() {
        let slot = SeqSlot::new([0u64; 2]);
        for n in 1..=10u64 {
            slot.write(&[n, n * 10]);
            assert_eq!(slot.read(), [n, n * 10]);
            assert_eq!(slot.version(), 2 * n);
        }
    }

    #[test]
    fn try_read_refuses_while_a_write_is_in_progress() {
        let slot = SeqSlot::new([5u64]);
        // Simulate a writer stalled between its two `seq` stores.
        slot.seq.store(1, Ordering::Relaxed);
        assert_eq!(slot.try_read(), None);
        assert_eq!(slot.version(), 0, "the in-progress write is not counted");
        slot.seq.store(2, Ordering::Release);
        assert_eq!(slot.try_read(), Some([5]));
    }

    #[test]
    fn zero_word_slot_works_as_a_pure_version_counter() {
        let slot = SeqSlot::<0>::new([]);
        slot.write(&[]);
        assert_eq!(slot.read(), []);
        assert_eq!(slot.version(), 2);
    }

    #[test]
    fn concurrent_readers_never_see_a_torn_record() {
        const WRITES: u64 = 200_000;
        let slot = Arc::new(SeqSlot::new([0u64; 4]));
        let done = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let slot = Arc::clone(&slot);
                let done = Arc::clone(&done);
                std::thread::spawn(move || {
                    let mut last = 0;
                    let mut reads = 0u64;
                    while !done.load(Ordering::Acquire) || reads == 0 {
                        let r = slot.read();
                        assert!(r.iter().all(|w| *w == r[0]), "torn record {r:?}");
                        assert!(r[0] >= last, "went backwards: {} after {last}", r[0]);
                        last = r[0];
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        for n in 1..=WRITES {
            slot.write(&[n; 4]);
        }
        done.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().expect("reader thread panicked") > 0);
        }
        assert_eq!(slot.read(), [WRITES; 4]);
    }
}
