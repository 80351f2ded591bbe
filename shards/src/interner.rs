//! A bounded, reference-counted string interner whose lookups never lock, and whose ids
//! are reused once no one refers to them.
//!
//! The engine interns capability names to small ids so that a registry record can carry
//! its capabilities as a fixed-size bitset, and readers on any thread resolve names and
//! ids without a message or a lock. Every stored registry entry holds one reference on
//! each of its capability ids; when the last entry naming a capability goes, its id goes
//! back to a free list and a later name may take it. So the budget of `capacity` names is
//! a budget of names *in use*, not of names ever seen.
//!
//! # The slots
//!
//! Each slot holds a name inline (at most [`MAX_INTERNED_LEN`] bytes) in a seqlock record
//! ([`SeqSlot`]), and a reference count `refs`:
//! - `refs == FREE` (`u32::MAX`): the slot holds no name (its record is empty);
//! - `refs == 0`: the slot holds a name no one refers to; it is about to be freed, or will
//!   be revived by the next [`acquire`](Interner::acquire) of that name;
//! - `refs == n > 0`: `n` references are held on the slot's name.
//!
//! # Invariants
//!
//! - A slot's record (its name) is written only under `state`'s lock, and only while
//!   `refs` is `FREE` (naming a free slot) or after the lock holder itself moved `refs`
//!   from 0 to `FREE` (clearing it): a slot's name never changes while `refs > 0`.
//! - `refs` leaves `FREE` only under the lock (`FREE → 1`, with `Release`, after the name
//!   is written), and enters `FREE` only under the lock (`0 → FREE`). Outside the lock,
//!   `refs` only moves `n → n + 1` for `n > 0` (the lock-free acquire) and `n → n − 1`
//!   (release).
//! - So a thread that moved `refs` from `n > 0` to `n + 1` holds a reference on the name
//!   the slot had at that moment, and that name cannot change until the reference is
//!   released; it reads the name *after* its increment (its `Acquire` synchronises with
//!   the `Release` that named the slot) and gives the reference back if the name is not
//!   the one it wanted (the slot was freed and renamed after it scanned).
//! - `high` (slots ever named) only grows, under the lock, published `Release`; readers
//!   scan slots below it. A slot's seqlock version (its generation) grows with every
//!   rename, so a reader can tell that an id it resolved still means the same name.
//!
//! Callers must hold a reference on every id they store and release it exactly once;
//! [`get`](Interner::get) and [`name`](Interner::name) hold none (a name resolved through
//! them may be freed and its id reused at once: compare generations to tell).

use crate::seqlock::SeqSlot;
use crate::sync::{AtomicU32, AtomicUsize, Mutex, Ordering};

/// Longest name the interner stores, in bytes (the registry's name rule allows 64).
#[cfg(not(mabeam_loom))]
pub const MAX_INTERNED_LEN: usize = 64;
/// Under the model checker names are at most 8 bytes: one word of name, so that loom
/// explores the protocol (counts, lock, seqlock) rather than the interleavings of nine
/// word loads per read. The protocol does not depend on the record's length.
#[cfg(mabeam_loom)]
pub const MAX_INTERNED_LEN: usize = 8;

/// Words in a slot's record: the byte length, then the bytes.
const RECORD_WORDS: usize = 1 + MAX_INTERNED_LEN / 8;

/// `refs` of a slot that holds no name.
const FREE: u32 = u32::MAX;

/// One name's slot.
#[derive(Debug)]
struct Slot {
    /// The name: word 0 its length in bytes (0 = none), words 1.. its bytes.
    name: SeqSlot<RECORD_WORDS>,
    /// References held on the name, or `FREE`.
    refs: AtomicU32,
}

/// What only the lock holder changes.
#[derive(Debug)]
struct State {
    /// Ids below `high` that hold no name, to be reused before `high` grows.
    free: Vec<usize>,
}

/// An id and the generation of its name: equal generations mean the id still names the
/// same string (no free and rename happened in between).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The name's id, below the interner's capacity.
    pub id: usize,
    /// The slot's generation when it was read.
    pub generation: u64,
}

/// Strings to dense, reusable ids `0..capacity`, with a reference count per id.
///
/// ```
/// use mabeam_shards::interner::Interner;
/// let interner = Interner::new(2);
/// let plan = interner.acquire("plan").unwrap();
/// let bid = interner.acquire("bid").unwrap();
/// assert_eq!(interner.acquire("plan"), Ok(plan)); // a second reference
/// assert!(interner.acquire("full").is_err()); // two names in use: at capacity
/// assert_eq!(interner.name(bid).as_deref(), Some("bid"));
/// interner.release(bid); // last reference: the id is free again
/// assert_eq!(interner.get("bid"), None);
/// assert_eq!(interner.acquire("next"), Ok(bid)); // and reused
/// ```
pub struct Interner {
    slots: Box<[Slot]>,
    /// Slots ever named: readers scan `0..high`.
    high: AtomicUsize,
    /// Names held now (slots whose `refs` is not `FREE`), for reports.
    live: AtomicUsize,
    state: Mutex<State>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Why [`Interner::acquire`] refused a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternError {
    /// Every id is held by a name in use.
    Full,
    /// The name is empty or longer than [`MAX_INTERNED_LEN`] bytes.
    BadLength,
}

impl std::fmt::Display for InternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("every interned id is in use"),
            Self::BadLength => write!(f, "names are 1 to {MAX_INTERNED_LEN} bytes"),
        }
    }
}

impl std::error::Error for InternError {}

fn encode(name: &str) -> Option<[u64; RECORD_WORDS]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_INTERNED_LEN {
        return None;
    }
    let mut words = [0u64; RECORD_WORDS];
    words[0] = bytes.len() as u64;
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        words[1 + i] = u64::from_le_bytes(b);
    }
    Some(words)
}

fn decode(words: &[u64; RECORD_WORDS]) -> Option<String> {
    let len = usize::try_from(words[0]).ok()?;
    if len == 0 || len > MAX_INTERNED_LEN {
        return None;
    }
    let bytes: Vec<u8> = words[1..]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .take(len)
        .collect();
    String::from_utf8(bytes).ok()
}

impl Interner {
    /// An interner for at most `capacity` names in use at once.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: (0..capacity)
                .map(|_| Slot {
                    name: SeqSlot::new([0; RECORD_WORDS]),
                    refs: AtomicU32::new(FREE),
                })
                .collect(),
            high: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            state: Mutex::new(State {
                free: Vec::with_capacity(capacity),
            }),
        }
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, State> {
        // A poisoned lock only means a holder panicked; every change it makes keeps the
        // invariants at each step (a slot is named before `refs` leaves FREE, and
        // `refs` is FREE before its name is cleared).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot `id` resolves to `words`, read through its seqlock; `None` if not.
    fn holds(&self, id: usize, words: &[u64; RECORD_WORDS]) -> Option<Resolved> {
        let slot = &self.slots[id];
        loop {
            let generation = slot.name.version();
            let Some(current) = slot.name.try_read() else {
                crate::sync::spin_loop();
                continue;
            };
            if slot.name.version() != generation {
                continue;
            }
            return (current == *words).then_some(Resolved { id, generation });
        }
    }

    fn find(&self, words: &[u64; RECORD_WORDS]) -> Option<Resolved> {
        let high = self.high.load(Ordering::Acquire);
        (0..high).find_map(|id| self.holds(id, words))
    }

    /// The id of `name` and its generation, if `name` is interned now: one scan of the
    /// named slots, no lock. Holds no reference: the id may be freed and reused at once
    /// (compare [`generation`](Self::generation) afterwards to tell).
    pub fn get(&self, name: &str) -> Option<usize> {
        self.resolve(name).map(|r| r.id)
    }

    /// [`get`](Self::get) with the generation of the name's slot.
    pub fn resolve(&self, name: &str) -> Option<Resolved> {
        self.find(&encode(name)?)
    }

    /// The generation of slot `id` now (see [`Resolved`]).
    pub fn generation(&self, id: usize) -> Option<u64> {
        self.slots.get(id).map(|s| s.name.version())
    }

    /// Takes one reference on `name`, interning it if no slot holds it; returns its id.
    ///
    /// Refused with [`InternError::Full`] when every id holds a name in use, and with
    /// [`InternError::BadLength`] for an empty name or one above [`MAX_INTERNED_LEN`]
    /// bytes. Every `Ok` must be matched by one [`release`](Self::release).
    pub fn acquire(&self, name: &str) -> Result<usize, InternError> {
        let words = encode(name).ok_or(InternError::BadLength)?;
        // Lock-free: a slot that holds the name and is referenced.
        if let Some(found) = self.find(&words) {
            if self.try_increment(found.id) {
                // Referenced now, so the slot cannot be renamed: check that it still
                // holds the name (it may have been freed and renamed since the scan).
                if self.holds(found.id, &words).is_some() {
                    return Ok(found.id);
                }
                self.release(found.id);
            }
        }
        let mut state = self.lock();
        // Under the lock no slot is named or freed: the scan is exact.
        if let Some(found) = self.find(&words) {
            let refs = &self.slots[found.id].refs;
            // 0 (about to be freed: revive it; the freer's 0 → FREE then fails) or n > 0.
            let mut current = refs.load(Ordering::Relaxed);
            loop {
                if current >= FREE - 1 {
                    return Err(InternError::Full);
                }
                match refs.compare_exchange(
                    current,
                    current + 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(found.id),
                    Err(now) => current = now,
                }
            }
        }
        let high = self.high.load(Ordering::Relaxed);
        let id = match state.free.pop() {
            Some(id) => id,
            None if high < self.slots.len() => high,
            None => return Err(InternError::Full),
        };
        let slot = &self.slots[id];
        debug_assert_eq!(slot.refs.load(Ordering::Relaxed), FREE);
        slot.name.write(&words);
        slot.refs.store(1, Ordering::Release);
        self.live.fetch_add(1, Ordering::Relaxed);
        if id == high {
            self.high.store(high + 1, Ordering::Release);
        }
        Ok(id)
    }

    /// `refs += 1` if it is above zero (and not FREE): the lock-free acquire.
    fn try_increment(&self, id: usize) -> bool {
        let refs = &self.slots[id].refs;
        let mut current = refs.load(Ordering::Relaxed);
        loop {
            if current == 0 || current >= FREE - 1 {
                return false;
            }
            match refs.compare_exchange(current, current + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Gives back one reference on `id` (taken by [`acquire`](Self::acquire)); the last
    /// one frees the id for another name. Releasing an id no one holds is ignored.
    pub fn release(&self, id: usize) {
        let Some(slot) = self.slots.get(id) else {
            return;
        };
        let mut current = slot.refs.load(Ordering::Relaxed);
        loop {
            if current == 0 || current == FREE {
                return; // not held: a caller's bug, never a corruption of the count
            }
            match slot.refs.compare_exchange(
                current,
                current - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if current != 1 {
            return;
        }
        let mut state = self.lock();
        // Still unreferenced (not revived by an acquire under the lock)? Then free it.
        if slot
            .refs
            .compare_exchange(0, FREE, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            slot.name.write(&[0; RECORD_WORDS]);
            self.live.fetch_sub(1, Ordering::Relaxed);
            state.free.push(id);
        }
    }

    /// The name `id` holds now, if any. Holds no reference (see [`get`](Self::get)).
    pub fn name(&self, id: usize) -> Option<String> {
        decode(&self.slots.get(id)?.name.read())
    }

    /// References held on `id` now (0 for a free id).
    pub fn references(&self, id: usize) -> u32 {
        match self.slots.get(id).map(|s| s.refs.load(Ordering::Acquire)) {
            Some(FREE) | None => 0,
            Some(n) => n,
        }
    }

    /// Names in use now.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// True if no name is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most names in use at once.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;

    #[test]
    fn acquires_up_to_capacity_and_reuses_freed_ids() {
        let i = Interner::new(2);
        assert_eq!(i.acquire("a"), Ok(0));
        assert_eq!(i.acquire("b"), Ok(1));
        assert_eq!(i.acquire("a"), Ok(0));
        assert_eq!(i.acquire("c"), Err(InternError::Full));
        assert_eq!((i.get("b"), i.get("c")), (Some(1), None));
        assert_eq!(i.name(1).as_deref(), Some("b"));
        assert_eq!((i.len(), i.capacity(), i.references(0)), (2, 2, 2));
        i.release(0);
        assert_eq!(i.get("a"), Some(0), "one reference left");
        i.release(0);
        assert_eq!((i.get("a"), i.name(0), i.len()), (None, None, 1));
        let before = i.generation(0);
        assert_eq!(i.acquire("c"), Ok(0));
        assert_ne!(i.generation(0), before, "a rename moves the generation");
        assert_eq!(i.name(0).as_deref(), Some("c"));
    }

    #[test]
    fn names_are_stored_whole_up_to_the_limit() {
        let i = Interner::new(4);
        let longest = "é".repeat(MAX_INTERNED_LEN / 2);
        let id = i.acquire(&longest).expect("64 bytes fit");
        assert_eq!(i.name(id), Some(longest));
        assert_eq!(i.acquire(""), Err(InternError::BadLength));
        assert_eq!(
            i.acquire(&"x".repeat(MAX_INTERNED_LEN + 1)),
            Err(InternError::BadLength)
        );
        assert_eq!(i.acquire("a"), Ok(1));
        assert_eq!(i.acquire("abcdefgh1"), Ok(2), "spans two words");
        assert_eq!(i.get("abcdefgh"), None, "a prefix is another name");
    }

    #[test]
    fn releasing_what_is_not_held_changes_nothing() {
        let i = Interner::new(1);
        i.release(0);
        i.release(7);
        assert_eq!(i.acquire("a"), Ok(0));
        i.release(0);
        i.release(0);
        assert_eq!((i.len(), i.references(0)), (0, 0));
        assert_eq!(i.acquire("b"), Ok(0));
    }

    #[test]
    fn concurrent_churn_keeps_one_id_per_name_and_frees_all() {
        let i = Interner::new(8);
        std::thread::scope(|s| {
            for t in 0..4 {
                let i = &i;
                s.spawn(move || {
                    for round in 0..2_000 {
                        let name = format!("cap{}", (round + t) % 6);
                        let id = i.acquire(&name).expect("6 names in 8 slots");
                        assert_eq!(i.name(id), Some(name.clone()), "held ids keep their name");
                        i.release(id);
                    }
                });
            }
        });
        assert_eq!(i.len(), 0);
        assert!((0..8).all(|id| i.references(id) == 0));
    }
}
