//! A bounded, append-only string interner whose lookups never lock.
//!
//! The engine interns capability names to small ids so that a registry record can carry
//! its capabilities as a fixed-size bitset, and readers on any thread resolve names and
//! ids without a message or a lock.
//!
//! # Invariants
//!
//! - Slot `i` is written exactly once, by the appender that holds `append_lock`, while
//!   `len == i`; it is published by `len.store(i + 1, Release)` and never written again
//!   (until the interner is dropped, which needs `&mut self`).
//! - Readers load `len` with `Acquire` and only read slots below it, so every slot they
//!   read was fully written before they read it (the `Release`/`Acquire` pair), and no
//!   write to it can follow.
//! - Appenders are serialised by `append_lock` (interning a new name is rare and off the
//!   read path); an appender re-checks under the lock, so a name is interned once.

use crate::sync::{AtomicUsize, Mutex, Ordering, UnsafeCell};

/// Strings to dense ids `0..capacity`.
///
/// ```
/// use mabeam_shards::interner::Interner;
/// let interner = Interner::new(2);
/// assert_eq!(interner.intern("plan"), Some(0));
/// assert_eq!(interner.intern("bid"), Some(1));
/// assert_eq!(interner.intern("plan"), Some(0));
/// assert_eq!(interner.intern("full"), None); // at capacity
/// assert_eq!(interner.name(1), Some("bid"));
/// ```
pub struct Interner {
    slots: Box<[UnsafeCell<Option<Box<str>>>]>,
    len: AtomicUsize,
    append_lock: Mutex<()>,
}

// SAFETY: the slots are written only under the invariants above (once, by the one
// appender holding `append_lock`, before publication through `len`), and read only after
// publication; `Box<str>` is `Send + Sync`.
unsafe impl Sync for Interner {}
// SAFETY: see `Sync`; the interner owns its strings.
unsafe impl Send for Interner {}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Interner {
    /// An interner for at most `capacity` distinct strings.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity).map(|_| UnsafeCell::new(None)).collect(),
            len: AtomicUsize::new(0),
            append_lock: Mutex::new(()),
        }
    }

    /// The string in published slot `i`.
    fn slot(&self, i: usize) -> Option<&str> {
        self.slots[i].with(|p| {
            // SAFETY: callers pass `i < len` as loaded with `Acquire`: the slot was written
            // before its publication and is never written again while `&self` lives.
            unsafe { (*p).as_deref() }
        })
    }

    /// The id of `name`, if it was interned: one scan of the published ids, no lock.
    pub fn get(&self, name: &str) -> Option<usize> {
        let len = self.len.load(Ordering::Acquire);
        (0..len).find(|&i| self.slot(i) == Some(name))
    }

    /// The id of `name`, interning it if it is new; `None` when the interner is full.
    pub fn intern(&self, name: &str) -> Option<usize> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        // A poisoned lock only means another appender panicked between its checks; the
        // slots and `len` are still consistent (a slot is published after it is written).
        let _guard = self.append_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let id = self.len.load(Ordering::Relaxed);
        let slot = self.slots.get(id)?;
        slot.with_mut(|p| {
            // SAFETY: slot `id == len` is unpublished (readers never read it) and only
            // this appender, holding `append_lock`, writes it.
            unsafe { *p = Some(name.into()) }
        });
        self.len.store(id + 1, Ordering::Release);
        Some(id)
    }

    /// The string of `id`, if `id` was interned.
    pub fn name(&self, id: usize) -> Option<&str> {
        if id >= self.len.load(Ordering::Acquire) {
            return None;
        }
        self.slot(id)
    }

    /// Number of interned strings.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// True if nothing was interned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most strings the interner takes.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;

    #[test]
    fn interns_up_to_capacity() {
        let i = Interner::new(2);
        assert_eq!(i.intern("a"), Some(0));
        assert_eq!(i.intern("b"), Some(1));
        assert_eq!(i.intern("a"), Some(0));
        assert_eq!(i.intern("c"), None);
        assert_eq!(i.get("b"), Some(1));
        assert_eq!(i.get("c"), None);
        assert_eq!(i.name(1), Some("b"));
        assert_eq!(i.name(2), None);
        assert_eq!((i.len(), i.capacity()), (2, 2));
    }

    #[test]
    fn concurrent_interning_gives_one_id_per_name() {
        let i = Interner::new(64);
        let ids: Vec<Vec<usize>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..32)
                            .map(|n| i.intern(&format!("cap{n}")).expect("capacity 64"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("no panic"))
                .collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        let mut sorted = ids[0].clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
        for (n, &id) in ids[0].iter().enumerate() {
            assert_eq!(i.name(id), Some(format!("cap{n}").as_str()));
        }
    }
}
