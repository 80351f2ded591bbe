//! A bounded, append-only string interner whose lookups never lock.
//!
//! Capability names are interned to small ids so that a registry record can carry its
//! capabilities as a fixed-size bitset.
//!
//! Invariants: slot `i` is set (once, never changed) before `len` is raised above `i`
//! with a `Release` store; readers load `len` with `Acquire` and only read slots below
//! it; appends are serialised by `append_lock` (interning a new name is rare and off the
//! read path).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// Strings to dense ids `0..capacity`.
pub(crate) struct Interner {
    slots: Box<[OnceLock<Box<str>>]>,
    len: AtomicUsize,
    append_lock: Mutex<()>,
}

impl Interner {
    /// An interner for at most `capacity` distinct strings.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            append_lock: Mutex::new(()),
        }
    }

    /// The id of `name`, if it was interned. Lock-free: one scan of the published ids.
    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        let len = self.len.load(Ordering::Acquire);
        self.slots[..len]
            .iter()
            .position(|s| s.get().is_some_and(|v| &**v == name))
    }

    /// The id of `name`, interning it if it is new; `None` when the interner is full.
    pub(crate) fn intern(&self, name: &str) -> Option<usize> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let _guard = self.append_lock.lock();
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        let id = self.len.load(Ordering::Relaxed);
        let slot = self.slots.get(id)?;
        // `slot` is at index `len`, which only this (locked) appender writes.
        let _ = slot.set(name.into());
        self.len.store(id + 1, Ordering::Release);
        Some(id)
    }

    /// The string of `id`.
    pub(crate) fn name(&self, id: usize) -> Option<&str> {
        if id >= self.len.load(Ordering::Acquire) {
            return None;
        }
        self.slots[id].get().map(|s| &**s)
    }
}

#[cfg(test)]
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
    }

    #[test]
    fn concurrent_interning_gives_one_id_per_name() {
        let i = Interner::new(64);
        let ids: Vec<Vec<usize>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..32)
                            .map(|n| i.intern(&format!("cap{n}")).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]));
        let mut sorted = ids[0].clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 32);
    }
}
