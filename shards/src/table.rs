//! A single-writer, many-reader hash table of fixed-size records: what a shard publishes so
//! that any thread can look its entries up without sending it a message.
//!
//! [`snapshot_table`] returns the two halves: the [`TableWriter`] (owned by the shard, the
//! only thread that mutates the table) and a [`TableReader`] (cloned freely, shared by every
//! thread that reads). A reader never takes a lock, never allocates on
//! [`get`](TableReader::get), never returns a torn record and never touches freed memory.
//! [`get_with`](TableReader::get_with) decodes a value straight from the slot, loading
//! only the words it asks for, under the same guarantee.
//!
//! # Layout
//!
//! - Open addressing with linear probing over a power-of-two array of slots. A key's home
//!   slot is the splitmix64 finalizer of the key, masked, so every `u64` is a valid key
//!   (0 included) and sequential keys spread out.
//! - Every slot is a seqlock (the recipe of [`crate::seqlock`]) over the words
//!   `[state, key, record...]`, with `state` one of EMPTY, OCCUPIED and TOMBSTONE.
//! - Beside the slots, one control byte per slot, as in hashbrown: EMPTY, TOMBSTONE, or
//!   seven bits of the hash of the key the slot holds. A probe walks the bytes (64 to a
//!   cache line) and reads only the slots whose byte matches its key's, so a lookup reads
//!   about one slot whatever the chain's length, and a miss usually none (the rules are
//!   written above the private `Array`).
//! - The writer finds its own keys with the same probe as readers, loading its own slot
//!   words without the seqlock (no other thread stores them). It keeps no index of its
//!   own: a second map would be a second cache miss on every write and, for a shard of
//!   10,000 records, a quarter of a megabyte beside the table.
//! - Arrays are swapped on rebuild through `current: AtomicPtr`; each array carries an
//!   `epoch` (even: current and readable, odd: retired or being filled) that works as an
//!   array-level seqlock, so a reader's result counts only if its array stayed the current
//!   one for the whole probe.
//!
//! # Memory bound
//!
//! Arrays are never freed while a reader or the writer exists (a reader may be stalled
//! inside any array ever published): retired arrays are kept, owned by the shared part, and
//! reused as rebuild targets when their size matches. An array of a given size is only
//! allocated when no retired array of that size is available, so there are at most two
//! arrays of each size (the current one and one spare). The capacity never shrinks, so the
//! total is at most `2 × (2 + 4 + … + capacity) < 4 × capacity` slots, whatever the churn:
//! 100 000 insert/remove cycles with a hundred live keys allocate a handful of small arrays
//! (see the `churn_keeps_the_number_of_arrays_small` test).

use core::fmt;
use core::ptr::NonNull;

use crate::seqlock::{load_words, store_words, try_read_with, write_with};
use crate::sync::{
    fence, spin_loop, Arc, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering, UnsafeCell,
};

/// Largest `initial_capacity` honoured by [`snapshot_table`]; larger requests are clamped to
/// it (the table still grows past it on demand).
pub const MAX_INITIAL_CAPACITY: usize = 1 << 24;

/// Smallest capacity of an array (slots).
const MIN_CAPACITY: usize = 2;

/// Slot state: never used since the array was (re)filled; ends every probe chain.
const EMPTY: u64 = 0;
/// Slot state: holds a live key and its record.
const OCCUPIED: u64 = 1;
/// Slot state: held a key that was removed; probe chains pass through it.
const TOMBSTONE: u64 = 2;

/// Control byte of an EMPTY slot (see [`Array`]'s control bytes).
const CTRL_EMPTY: u8 = 0;
/// Control byte of a TOMBSTONE slot.
const CTRL_TOMBSTONE: u8 = 1;
/// The bit every OCCUPIED slot's control byte has, and no other.
const CTRL_OCCUPIED: u8 = 0x80;

/// Control byte of a slot OCCUPIED by a key whose [`mix`] is `hash`: the high bit set and
/// the hash's top seven bits, which the home slot (its low bits) does not use below 2^57
/// slots. Never equal to [`CTRL_EMPTY`] or [`CTRL_TOMBSTONE`].
#[inline]
fn ctrl_tag(hash: u64) -> u8 {
    // Truncation is the point: the shift leaves seven bits.
    CTRL_OCCUPIED | (hash >> 57) as u8
}

/// The splitmix64 finalizer: a bijective 64-bit mix, so keys that differ in any bit land
/// on unrelated home slots.
#[inline]
fn mix(key: u64) -> u64 {
    let mut z = key;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Most slots (live keys plus tombstones) an array of `capacity` slots may hold: three
/// quarters, so at least one slot is always EMPTY and every probe for an absent key ends.
#[inline]
fn max_used(capacity: usize) -> usize {
    capacity / 4 * 3 + (capacity % 4) * 3 / 4
}

/// Where `key` starts its probe in an array of `capacity` slots (a power of two), and the
/// control byte it has there when OCCUPIED: for tests and models that need keys that
/// collide on both.
#[doc(hidden)]
pub fn home_and_tag(key: u64, capacity: usize) -> (usize, u8) {
    let hash = mix(key);
    // Truncation is the point: the mask keeps the low bits of the mix.
    ((hash as usize) & (capacity - 1), ctrl_tag(hash))
}

/// What a reader's consistent read of one slot says about the key it looks for.
enum SlotView<R> {
    /// EMPTY: the probe chain ends here.
    End,
    /// OCCUPIED by the key looked for, with what the reader decoded of its record.
    Found(R),
    /// OCCUPIED by another key, or a TOMBSTONE: keep probing.
    Continue,
}

/// A record being read inside its slot's seqlock: what [`TableReader::get_with`] hands its
/// decoder.
///
/// Every word is loaded `Relaxed` when asked for, so a decoder pays only for the words it
/// reads. What it reads may be torn (see [`TableReader::get_with`]); the view cannot store.
#[derive(Clone, Copy)]
pub struct RecordView<'a, const W: usize>(&'a [AtomicU64; W]);

impl<const W: usize> RecordView<'_, W> {
    /// Record word `i`. Panics if `i >= W` (a constant index in a decoder: a bug in the
    /// decoder, not a property of the data).
    #[inline]
    pub fn word(&self, i: usize) -> u64 {
        self.0[i].load(Ordering::Relaxed)
    }

    /// The whole record.
    #[inline]
    pub fn words(&self) -> [u64; W] {
        load_words(self.0)
    }
}

impl<const W: usize> fmt::Debug for RecordView<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordView").finish_non_exhaustive()
    }
}

/// One slot: a seqlock over `[state, key, record...]`.
///
/// Only the writer stores into a slot, always under [`write_with`] on `seq`; readers load it
/// under [`try_read_with`]. The writer may load its own slot words `Relaxed` without the
/// protocol, since no other thread stores them.
struct Slot<const W: usize> {
    seq: AtomicU64,
    state: AtomicU64,
    key: AtomicU64,
    record: [AtomicU64; W],
}

impl<const W: usize> Slot<W> {
    fn empty() -> Self {
        Self {
            seq: AtomicU64::new(0),
            state: AtomicU64::new(EMPTY),
            key: AtomicU64::new(0),
            record: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Writer only: the slot's state (its own last store). Navigation uses the array's
    /// control bytes; tests check the two agree.
    #[cfg(test)]
    fn state(&self) -> u64 {
        self.state.load(Ordering::Relaxed)
    }

    /// Writer only: the slot's key (its own last store; meaningful while OCCUPIED).
    fn key(&self) -> u64 {
        self.key.load(Ordering::Relaxed)
    }

    /// Writer only: the slot's record (its own last store).
    fn record(&self) -> [u64; W] {
        load_words(&self.record)
    }

    /// Writer only: publishes `key` → `record` in this slot.
    fn publish_occupied(&self, key: u64, record: &[u64; W]) {
        write_with(&self.seq, || {
            self.state.store(OCCUPIED, Ordering::Relaxed);
            self.key.store(key, Ordering::Relaxed);
            store_words(&self.record, record);
        });
    }

    /// Writer only: publishes a new state (EMPTY or TOMBSTONE); key and record words are
    /// left as they were, readers ignore them in those states.
    fn publish_state(&self, state: u64) {
        write_with(&self.seq, || self.state.store(state, Ordering::Relaxed));
    }

    /// Reader: a consistent view of this slot with respect to `key` (`decode` of its
    /// record if it holds `key`), retrying while the writer races.
    #[inline(always)]
    fn read_for<R>(
        &self,
        key: u64,
        decode: &mut impl FnMut(RecordView<'_, W>) -> R,
    ) -> SlotView<R> {
        loop {
            let view = try_read_with(&self.seq, || match self.state.load(Ordering::Relaxed) {
                EMPTY => SlotView::End,
                OCCUPIED if self.key.load(Ordering::Relaxed) == key => {
                    SlotView::Found(decode(RecordView(&self.record)))
                }
                _ => SlotView::Continue,
            });
            if let Some(view) = view {
                return view;
            }
            spin_loop();
        }
    }

    /// Reader: the slot's key and record if it is OCCUPIED, read consistently.
    fn read_occupied(&self) -> Option<(u64, [u64; W])> {
        loop {
            let view = try_read_with(&self.seq, || {
                (self.state.load(Ordering::Relaxed) == OCCUPIED)
                    .then(|| (self.key.load(Ordering::Relaxed), load_words(&self.record)))
            });
            if let Some(view) = view {
                return view;
            }
            spin_loop();
        }
    }
}

/// One generation of slots, and a control byte per slot.
///
/// `epoch` is an array-level seqlock: even while the array is current (readable), odd while
/// it is retired or being filled. Every value stored into it comes from the writer's
/// strictly increasing counter, so an array never shows the same epoch twice (no ABA even
/// when a retired array is reused).
///
/// # Control bytes
///
/// `ctrl[i]` mirrors slot `i`'s state for navigation, as hashbrown's control bytes do:
/// [`CTRL_EMPTY`], [`CTRL_TOMBSTONE`], or the [`ctrl_tag`] of the key it holds. The
/// bytes of a table are packed 64 to a cache line, so a probe walks its chain over one
/// line and reads only the slots whose tag matches (a wrong match is one in 128), instead
/// of every slot of the chain, each one or two cache misses in a large table.
///
/// The control bytes only steer; the slot decides. A reader takes a result only from a
/// consistent read of the slot itself (state OCCUPIED and the key equal), so a stale or
/// racing tag costs at most one wasted slot read. What the bytes must keep is the chain
/// invariant of [`TableWriter`] (no EMPTY between a live key's home and its slot), which
/// lets a reader stop at the first EMPTY byte: the writer changes a slot's byte right
/// after its state, to the matching value, and never through any other value, so the
/// bytes go through the same states as the slots and each change keeps the invariant.
/// A byte is stored `Release` after its slot and loaded `Acquire`: a reader that sees a
/// key's new tag then reads the slot as published, not an older state. Correctness does
/// not rest on that pairing (the loom models pass with `Relaxed`; see
/// `loom-tests/tests/table.rs`); it costs nothing on x86-64. A rebuild clears a reused
/// array's bytes after its odd epoch and fence, as it clears its slots.
struct Array<const W: usize> {
    epoch: AtomicU64,
    ctrl: Box<[AtomicU8]>,
    slots: Box<[Slot<W>]>,
}

impl<const W: usize> Array<W> {
    fn new(capacity: usize, epoch: u64) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            epoch: AtomicU64::new(epoch),
            ctrl: (0..capacity).map(|_| AtomicU8::new(CTRL_EMPTY)).collect(),
            slots: (0..capacity).map(|_| Slot::empty()).collect(),
        }
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Truncation is the point: the mask keeps the low bits of the mix.
        (hash as usize) & self.mask()
    }

    /// Writer only: slot `i`'s control byte (its own last store).
    #[inline]
    fn ctrl(&self, i: usize) -> u8 {
        self.ctrl[i].load(Ordering::Relaxed)
    }

    /// Writer only: publishes `key` (whose mix is `hash`) → `record` in slot `i`, then
    /// its tag.
    fn set_occupied(&self, i: usize, hash: u64, key: u64, record: &[u64; W]) {
        self.slots[i].publish_occupied(key, record);
        self.ctrl[i].store(ctrl_tag(hash), Ordering::Release);
    }

    /// Writer only: publishes slot `i` as EMPTY or TOMBSTONE, then its control byte.
    fn set_vacant(&self, i: usize, state: u64) {
        debug_assert!(state == EMPTY || state == TOMBSTONE);
        self.slots[i].publish_state(state);
        let ctrl = if state == EMPTY {
            CTRL_EMPTY
        } else {
            CTRL_TOMBSTONE
        };
        self.ctrl[i].store(ctrl, Ordering::Release);
    }

    /// Reader: probes for `key`, decoding its record with `decode`. The result is
    /// meaningful only if the array's epoch is validated afterwards (see
    /// [`TableReader::get_with`]).
    #[inline(always)]
    fn probe<R>(&self, key: u64, decode: &mut impl FnMut(RecordView<'_, W>) -> R) -> Option<R> {
        let hash = mix(key);
        let tag = ctrl_tag(hash);
        let mask = self.mask();
        let mut i = self.home(hash);
        for _ in 0..self.capacity() {
            match self.ctrl[i].load(Ordering::Acquire) {
                CTRL_EMPTY => return None,
                ctrl if ctrl == tag => match self.slots[i].read_for(key, decode) {
                    SlotView::End => return None,
                    SlotView::Found(record) => return Some(record),
                    SlotView::Continue => {}
                },
                _ => {}
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Writer only: where `key` (whose mix is `hash`) is on its probe chain, or, if it is
    /// absent, the slot an insertion takes (the chain's first TOMBSTONE before its first
    /// EMPTY slot, else that EMPTY slot).
    fn place(&self, key: u64, hash: u64) -> Place {
        let tag = ctrl_tag(hash);
        let mask = self.mask();
        let mut i = self.home(hash);
        let mut free = None;
        for _ in 0..self.capacity() {
            match self.ctrl(i) {
                CTRL_EMPTY => return Place::Vacant(free.unwrap_or(i)),
                CTRL_TOMBSTONE => {
                    free.get_or_insert(i);
                }
                ctrl if ctrl == tag && self.slots[i].key() == key => return Place::Found(i),
                _ => {}
            }
            i = (i + 1) & mask;
        }
        Place::Vacant(
            free.expect("a free slot exists: live + tombstones stays below 3/4 of the capacity"),
        )
    }

    /// Writer only: the first EMPTY or TOMBSTONE slot on the probe chain of a key whose
    /// mix is `hash`.
    fn first_free(&self, hash: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(hash);
        for _ in 0..self.capacity() {
            if self.ctrl(i) & CTRL_OCCUPIED == 0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Writer only: the indices of the OCCUPIED slots, in slot order.
    fn occupied(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.capacity()).filter(|&i| self.ctrl(i) & CTRL_OCCUPIED != 0)
    }
}

/// Where the writer's probe for a key ended (see [`Array::place`]).
enum Place {
    /// The key is OCCUPIED in this slot.
    Found(usize),
    /// The key is absent; an insertion takes this slot (EMPTY or TOMBSTONE).
    Vacant(usize),
}

/// The part both halves share: the current array, the published length, and ownership of
/// every array ever allocated.
struct Shared<const W: usize> {
    /// The array readers probe. Always points to an array in `owned`.
    current: AtomicPtr<Array<W>>,
    /// Number of live keys, published by the writer after each operation.
    len: AtomicUsize,
    /// Slots of every array ever allocated (the current one and the retired ones), for
    /// [`TableReader::footprint`]; written by the writer when it allocates.
    allocated_slots: AtomicUsize,
    /// Every array ever allocated (from `Box::into_raw`), freed only in `Drop`. Accessed only
    /// by the unique [`TableWriter`] (to push a new array) and by `Drop`.
    owned: UnsafeCell<Vec<NonNull<Array<W>>>>,
}

// SAFETY: `Array` holds only atomics, so sharing `&Array` across threads is fine. The raw
// pointers in `owned` are touched only by the single `TableWriter` (which is not `Clone` and
// mutates through `&mut self`) and by `Drop` (which has `&mut self`, after every other
// `Arc` is gone), so there is never concurrent access to the `Vec`.
unsafe impl<const W: usize> Send for Shared<W> {}
// SAFETY: see `Send` above; every other field is an atomic.
unsafe impl<const W: usize> Sync for Shared<W> {}

impl<const W: usize> Drop for Shared<W> {
    fn drop(&mut self) {
        self.owned.with_mut(|owned| {
            // SAFETY: `&mut self`: no reader or writer is left, so nothing else can access
            // `owned` or any array.
            let owned = unsafe { &mut *owned };
            for array in owned.drain(..) {
                // SAFETY: every pointer in `owned` came from `Box::into_raw` in
                // `TableWriter::allocate` and is pushed once, so it is freed exactly once;
                // no reader or writer is left to use it.
                drop(unsafe { Box::from_raw(array.as_ptr()) });
            }
        });
    }
}

/// Creates a table and returns its writer and a first reader.
///
/// `initial_capacity` is the initial number of slots, rounded up to a power of two, at
/// least 2 and at most [`MAX_INITIAL_CAPACITY`] (larger values are clamped). A rebuild
/// doubles the capacity while more than five eighths of it would be live.
///
/// # Example
///
/// ```
/// use mabeam_shards::table::snapshot_table;
///
/// let (mut writer, reader) = snapshot_table::<2>(16);
/// writer.insert(7, [70, 700]);
/// assert_eq!(reader.get(7), Some([70, 700]));
/// assert!(writer.remove(7));
/// assert_eq!(reader.get(7), None);
/// ```
pub fn snapshot_table<const W: usize>(initial_capacity: usize) -> (TableWriter<W>, TableReader<W>) {
    let capacity = initial_capacity
        .clamp(MIN_CAPACITY, MAX_INITIAL_CAPACITY)
        .next_power_of_two();
    let shared = Arc::new(Shared {
        current: AtomicPtr::new(core::ptr::null_mut()),
        len: AtomicUsize::new(0),
        allocated_slots: AtomicUsize::new(0),
        owned: UnsafeCell::new(Vec::new()),
    });
    let mut writer = TableWriter {
        shared,
        current: NonNull::dangling(),
        live: 0,
        tombstones: 0,
        spares: Vec::new(),
        epoch_counter: 0,
    };
    // Epoch 0: even, readable. Nothing was published before, so no reader can be inside.
    let first = writer.allocate(capacity, 0);
    writer.current = first;
    writer
        .shared
        .current
        .store(first.as_ptr(), Ordering::Release);
    let reader = writer.reader();
    (writer, reader)
}

/// The smallest initial capacity that holds `live` keys without a rebuild: a table from
/// `snapshot_table(capacity_for(n))` takes its first `n` inserts (with no removals in
/// between) without growing, so a shard that knows its count pays for the whole array
/// once, up front, instead of one copy per doubling on its hot path. At most
/// [`MAX_INITIAL_CAPACITY`] (for `live` beyond three quarters of it the table still grows
/// on demand). Removals leave tombstones, which may still cost a same-size rebuild.
///
/// ```
/// use mabeam_shards::table::{capacity_for, snapshot_table};
///
/// let (mut writer, _reader) = snapshot_table::<1>(capacity_for(1000));
/// let before = writer.capacity();
/// for key in 0..1000 {
///     writer.insert(key, [key]);
/// }
/// assert_eq!(writer.capacity(), before);
/// ```
pub fn capacity_for(live: usize) -> usize {
    let mut capacity = MIN_CAPACITY;
    while max_used(capacity) < live && capacity < MAX_INITIAL_CAPACITY {
        capacity *= 2;
    }
    capacity
}

/// The writing half of a snapshot table: owned by one shard, the only thread that mutates
/// the table. `Send`, not `Clone`.
///
/// # Invariants
///
/// 1. A key is OCCUPIED in at most one slot of the current array, and `live` counts the
///    OCCUPIED slots.
/// 2. For every OCCUPIED slot `s` holding key `k`, no slot between `k`'s home slot and `s`
///    (on the probe chain) is EMPTY. Insertion takes the first non-OCCUPIED slot of the
///    chain, removal only turns OCCUPIED into TOMBSTONE, and a TOMBSTONE becomes EMPTY only
///    when the slot after it is EMPTY, so no chain to a live key passes through it.
///    Each slot write keeps this true at every instant, which is why a reader that probes
///    slots one at a time, each read consistently at its own moment, reports a key present
///    whenever it was present throughout the probe (keys never move while live).
/// 3. `live + tombstones ≤ 3/4 × capacity`, so every array keeps an EMPTY slot.
/// 4. Only the current array is mutated in place. A rebuild fills a target array whose epoch
///    is odd, publishes it with a fresh even epoch, swaps `current` to it and only then
///    retires the old array with a fresh odd epoch; the old array is not written again
///    until it is reused as a target (which sets a fresh odd epoch before any slot write).
/// 5. Arrays are never freed before the shared part drops, so every pointer the writer or a
///    reader holds stays valid for as long as it holds its `Arc`.
pub struct TableWriter<const W: usize> {
    shared: Arc<Shared<W>>,
    /// The array `shared.current` points to.
    current: NonNull<Array<W>>,
    /// OCCUPIED slots in `current` (live keys).
    live: usize,
    /// TOMBSTONE slots in `current`.
    tombstones: usize,
    /// Retired arrays available as rebuild targets (at most one per size, see the module's
    /// memory bound).
    spares: Vec<NonNull<Array<W>>>,
    /// Last epoch value handed out; strictly increasing.
    epoch_counter: u64,
}

// SAFETY: the raw pointers point into arrays owned by `shared` (an `Arc` of a `Send + Sync`
// type), which holds only atomics; the writer's exclusive role travels with it.
unsafe impl<const W: usize> Send for TableWriter<W> {}

impl<const W: usize> fmt::Debug for TableWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableWriter")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("tombstones", &self.tombstones)
            .field("allocated_arrays", &self.allocated_arrays())
            .finish()
    }
}

impl<const W: usize> TableWriter<W> {
    /// The current array.
    fn array(&self) -> &Array<W> {
        // SAFETY: `current` always points to an array in `shared.owned` (invariant 5), and
        // `self.shared` keeps it alive for the lifetime of `&self`.
        unsafe { self.current.as_ref() }
    }

    /// The next epoch value with the given parity (`true`: odd), strictly greater than every
    /// value handed out before.
    fn next_epoch(&mut self, odd: bool) -> u64 {
        self.epoch_counter += 1;
        if (self.epoch_counter & 1 == 1) != odd {
            self.epoch_counter += 1;
        }
        self.epoch_counter
    }

    /// Allocates a fresh array (all EMPTY) with `epoch`, handing its ownership to `shared`.
    fn allocate(&mut self, capacity: usize, epoch: u64) -> NonNull<Array<W>> {
        let array = NonNull::from(Box::leak(Box::new(Array::new(capacity, epoch))));
        self.shared
            .allocated_slots
            .fetch_add(capacity, Ordering::Relaxed);
        self.shared.owned.with_mut(|owned| {
            // SAFETY: only the unique writer (here, through `&mut self`) and `Drop` touch
            // `owned`, so this access is exclusive.
            unsafe { (*owned).push(array) }
        });
        array
    }

    /// Asks the CPU to bring `key`'s home slot into its cache, ahead of an
    /// [`insert`](Self::insert) or [`remove`](Self::remove) of that key: a shard that
    /// knows the keys of its next commands issues these first, so the cache misses of a
    /// large table overlap instead of stalling one command after another. Changes
    /// nothing in the table; a no-op off x86-64 (and under loom).
    #[inline]
    pub fn prefetch(&self, key: u64) {
        #[cfg(all(target_arch = "x86_64", not(mabeam_loom)))]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let array = self.array();
            let home = array.home(mix(key));
            let ctrl: *const AtomicU8 = &array.ctrl[home];
            let slot: *const Slot<W> = &array.slots[home];
            let first = slot.cast::<i8>();
            // SAFETY: `_mm_prefetch` is a hint: it reads nothing the program can observe,
            // never faults, and may be dropped by the CPU. Every address is inside the
            // live current array: the home slot's control byte, and the slot's first and
            // last byte.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(ctrl.cast::<i8>());
                _mm_prefetch::<_MM_HINT_T0>(first);
                _mm_prefetch::<_MM_HINT_T0>(first.add(core::mem::size_of::<Slot<W>>() - 1));
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(mabeam_loom))))]
        let _ = key;
    }

    /// Inserts `key` → `record`, or overwrites the record of a key already present.
    ///
    /// May rebuild the table into a larger (or same-size, tombstone-free) array first;
    /// readers keep reading the old array meanwhile and switch to the new one when it is
    /// complete.
    pub fn insert(&mut self, key: u64, record: [u64; W]) {
        let hash = mix(key);
        let mut slot = match self.array().place(key, hash) {
            Place::Found(slot) => {
                self.array().slots[slot].publish_occupied(key, &record);
                return;
            }
            Place::Vacant(slot) => slot,
        };
        let live = self.live + 1;
        let mut was_tombstone = self.array().ctrl(slot) == CTRL_TOMBSTONE;
        // Taking a tombstone leaves the used slots as they are: no rebuild needed.
        if !was_tombstone && live + self.tombstones > max_used(self.capacity()) {
            let mut capacity = self.capacity();
            // Keep at most 5/8 of the slots live after a rebuild: linear probing stays
            // short, and the table stays small enough to sit in a core's cache.
            while live.saturating_mul(8) > capacity.saturating_mul(5) {
                capacity = capacity
                    .checked_mul(2)
                    .expect("table capacity fits in usize: it is bounded by addressable memory");
            }
            self.rebuild(capacity);
            slot = self
                .array()
                .first_free(hash)
                .expect("a free slot exists: the rebuilt array holds at most 5/8 live keys");
            // A rebuilt array has no tombstones.
            was_tombstone = false;
        }
        self.array().set_occupied(slot, hash, key, &record);
        if was_tombstone {
            self.tombstones -= 1;
        }
        self.live = live;
        self.shared.len.store(live, Ordering::Relaxed);
    }

    /// Removes `key`; returns whether it was present.
    ///
    /// The slot becomes a TOMBSTONE, or EMPTY (with any tombstones just before it) when the
    /// next slot is EMPTY, so tombstones do not pile up at the end of chains.
    pub fn remove(&mut self, key: u64) -> bool {
        let Place::Found(slot) = self.array().place(key, mix(key)) else {
            return false;
        };
        self.live -= 1;
        let array = self.array();
        let mask = array.mask();
        let mut cleared = 0;
        if array.ctrl((slot + 1) & mask) == CTRL_EMPTY {
            // No chain to a live key passes through `slot` (invariant 2): it can be EMPTY,
            // and so can every TOMBSTONE right before it, walking backwards. The walk stops
            // at the latest at the EMPTY slot after `slot`.
            array.set_vacant(slot, EMPTY);
            let mut i = slot.wrapping_sub(1) & mask;
            while array.ctrl(i) == CTRL_TOMBSTONE {
                array.set_vacant(i, EMPTY);
                cleared += 1;
                i = i.wrapping_sub(1) & mask;
            }
        } else {
            array.set_vacant(slot, TOMBSTONE);
            self.tombstones += 1;
        }
        self.tombstones -= cleared;
        self.shared.len.store(self.live, Ordering::Relaxed);
        true
    }

    /// The record of `key`, read from the writer's own state (no seqlock retry needed: no
    /// other thread writes).
    pub fn get(&self, key: u64) -> Option<[u64; W]> {
        match self.array().place(key, mix(key)) {
            Place::Found(slot) => Some(self.array().slots[slot].record()),
            Place::Vacant(_) => None,
        }
    }

    /// Every live key and its record, in slot order, read from the writer's own state.
    pub fn iter(&self) -> impl Iterator<Item = (u64, [u64; W])> + '_ {
        let array = self.array();
        array.occupied().map(|i| {
            let slot = &array.slots[i];
            (slot.key(), slot.record())
        })
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Number of slots of the current array (a power of two; it never shrinks).
    pub fn capacity(&self) -> usize {
        self.array().capacity()
    }

    /// A new reader of this table.
    pub fn reader(&self) -> TableReader<W> {
        TableReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Rebuilds the table into a tombstone-free array of the same capacity (reusing a
    /// retired array of that size when there is one).
    ///
    /// Insertions already do this when tombstones pile up; call it to make lookups of
    /// absent keys short again after many removals, e.g. when the shard is idle. Readers
    /// are not disturbed beyond restarting a lookup that raced the switch. Costs
    /// O(capacity).
    pub fn compact(&mut self) {
        self.rebuild(self.capacity());
    }

    /// Number of arrays allocated over the table's life (all still owned; see the module's
    /// memory bound). For tests of that bound.
    #[doc(hidden)]
    pub fn allocated_arrays(&self) -> usize {
        self.shared.owned.with(|owned| {
            // SAFETY: only the unique writer (here, through `&self`, so it is not mutating)
            // and `Drop` touch `owned`.
            unsafe { (*owned).len() }
        })
    }

    /// Moves every live key into an array of `capacity` slots with no tombstones, then makes
    /// it current and retires the old array (invariant 4).
    fn rebuild(&mut self, capacity: usize) {
        let fill_epoch = self.next_epoch(true);
        let spare = self
            .spares
            .iter()
            .position(|a| {
                // SAFETY: spares are arrays in `shared.owned`, alive as long as `shared`.
                unsafe { a.as_ref() }.capacity() == capacity
            })
            .map(|i| self.spares.swap_remove(i));
        let target_ptr = match spare {
            Some(target) => {
                // SAFETY: as above.
                let target = unsafe { target.as_ref() };
                // Array-level seqlock, writer half: odd epoch, then the fence, then the slot
                // writes. A reader stalled in this array since it was last current sees a
                // changed epoch after reading any of the slot writes below.
                target.epoch.store(fill_epoch, Ordering::Relaxed);
                fence(Ordering::Release);
                for i in 0..target.capacity() {
                    if target.ctrl(i) != CTRL_EMPTY {
                        target.set_vacant(i, EMPTY);
                    }
                }
                NonNull::from(target)
            }
            // Never published yet: no reader can be inside, and the pointer store below
            // (`Release`) publishes every slot write.
            None => self.allocate(capacity, fill_epoch),
        };
        // SAFETY: `target_ptr` is in `shared.owned` (allocated or spare), alive as long as
        // `shared`; `old` is the current array, likewise.
        let (target, old) = unsafe { (target_ptr.as_ref(), self.current.as_ref()) };
        for i in old.occupied() {
            let slot = &old.slots[i];
            let key = slot.key();
            let hash = mix(key);
            let new_slot = target.first_free(hash).expect(
                "a free slot exists: the target holds at most five eighths of its capacity",
            );
            target.set_occupied(new_slot, hash, key, &slot.record());
        }
        let publish_epoch = self.next_epoch(false);
        let retire_epoch = self.next_epoch(true);
        target.epoch.store(publish_epoch, Ordering::Release);
        self.shared
            .current
            .store(target_ptr.as_ptr(), Ordering::Release);
        // Readers still probing `old` see the odd epoch and restart from `current`.
        old.epoch.store(retire_epoch, Ordering::Release);
        self.spares.push(self.current);
        self.current = target_ptr;
        self.tombstones = 0;
    }
}

/// The reading half of a snapshot table: `Clone`, `Send + Sync`, used from any thread.
///
/// A reader holds the table's shared part alive, so every array it may be probing stays
/// allocated (arrays are freed only when the writer and every reader are gone).
///
/// # Guarantees
///
/// - [`get`](Self::get) never locks, never allocates and never returns a torn record: each
///   slot is read under its seqlock, and the whole probe under the array's epoch, so a
///   result counts only if its array stayed current for the whole probe.
/// - Linearizable lookups: a returned record was the key's record at some instant during
///   the call, and `None` means the key was absent at some instant during the call. In
///   particular a removal that happens-before the call (e.g. the caller learned of it
///   through a channel or ticket) is never undone: the removed record is not returned.
#[derive(Clone)]
pub struct TableReader<const W: usize> {
    shared: Arc<Shared<W>>,
}

impl<const W: usize> fmt::Debug for TableReader<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableReader")
            .field("len", &self.len())
            .finish()
    }
}

impl<const W: usize> TableReader<W> {
    /// The current array and its (even) epoch.
    #[inline]
    fn pin(&self) -> (&Array<W>, u64) {
        loop {
            let ptr = self.shared.current.load(Ordering::Acquire);
            // SAFETY: `current` always points to an array in `shared.owned` (it is set to a
            // non-null array before the first reader exists), and arrays are freed only when
            // `shared` drops, which `self.shared` prevents for the lifetime of `&self`.
            let array = unsafe { &*ptr };
            let epoch = array.epoch.load(Ordering::Acquire);
            if epoch & 1 == 0 {
                return (array, epoch);
            }
            // A retired array (we loaded `current` just before it moved on): reload.
            spin_loop();
        }
    }

    /// Whether `array` kept `epoch` through everything read since [`pin`](Self::pin):
    /// the reader half of the array-level seqlock.
    #[inline]
    fn still_current(array: &Array<W>, epoch: u64) -> bool {
        fence(Ordering::Acquire);
        array.epoch.load(Ordering::Relaxed) == epoch
    }

    /// The record of `key`, if present.
    ///
    /// Never locks and never allocates; retries only when the writer raced it (a slot write
    /// or a rebuild), so it can only be delayed by a writer that is making progress.
    #[inline]
    pub fn get(&self, key: u64) -> Option<[u64; W]> {
        self.get_with(key, |record| record.words())
    }

    /// `decode` of the record of `key`, if present: [`get`](Self::get) for a reader that
    /// needs only some of the words, or wants to build its value straight from them
    /// without a copy of the whole record first.
    ///
    /// `decode` runs inside the slot's seqlock read, so it may see a record that the
    /// writer is overwriting at that moment: a mix of two records, words that no write
    /// ever published together. Such a result is discarded and `decode` runs again on a
    /// consistent read, so only a result decoded from one whole published record is ever
    /// returned. `decode` must therefore accept any words without panicking (decode into
    /// an `Option` and check there, as the registry does) and must not act on what it
    /// reads beyond computing its result. It may run more than once per call.
    ///
    /// ```
    /// use mabeam_shards::table::snapshot_table;
    /// let (mut writer, reader) = snapshot_table::<3>(16);
    /// writer.insert(7, [10, 20, 30]);
    /// assert_eq!(reader.get_with(7, |r| r.word(1)), Some(20));
    /// assert_eq!(reader.get_with(8, |r| r.word(1)), None);
    /// ```
    #[inline(always)]
    pub fn get_with<R>(
        &self,
        key: u64,
        mut decode: impl FnMut(RecordView<'_, W>) -> R,
    ) -> Option<R> {
        loop {
            let (array, epoch) = self.pin();
            let found = array.probe(key, &mut decode);
            if Self::still_current(array, epoch) {
                return found;
            }
        }
    }

    /// Clears `out` and fills it with every live record, sorted by key.
    ///
    /// Each record is consistent (read under its slot's seqlock) and each key appears once.
    /// The scan restarts if the table was rebuilt while it ran. It is not a snapshot of one
    /// instant: a record written during the scan may or may not be included, and a key
    /// removed and re-inserted during the scan is reported once, with one of the records it
    /// held during the scan. `out` grows as needed (this is the one reader call that may
    /// allocate); reuse it across calls to avoid that.
    pub fn scan_into(&self, out: &mut Vec<(u64, [u64; W])>) {
        loop {
            out.clear();
            let (array, epoch) = self.pin();
            out.extend(array.slots.iter().filter_map(Slot::read_occupied));
            if Self::still_current(array, epoch) {
                break;
            }
        }
        // Within one array a key can sit in two slots read at different times (removed from
        // one and re-inserted into another during the scan): keep one.
        out.sort_unstable_by_key(|(key, _)| *key);
        out.dedup_by_key(|(key, _)| *key);
    }

    /// Number of live keys as last published by the writer.
    ///
    /// Read `Relaxed`: a count, not a synchronisation point. It may lag behind the records
    /// a concurrent [`get`](Self::get) observes.
    pub fn len(&self) -> usize {
        self.shared.len.load(Ordering::Relaxed)
    }

    /// Whether the last published count is zero (see [`len`](Self::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table's size: live entries, slots of the current array, and slots and bytes
    /// of every array it holds (current and retired; see the module's memory bound).
    /// Each figure is read on its own (`Relaxed`): a count, not one instant.
    pub fn footprint(&self) -> TableFootprint {
        let (array, _) = self.pin();
        // A slot and its control byte.
        let slot = core::mem::size_of::<Slot<W>>() + 1;
        let allocated = self.shared.allocated_slots.load(Ordering::Relaxed);
        TableFootprint {
            entries: self.len(),
            live_slots: array.capacity(),
            live_bytes: array.capacity() * slot,
            retired_slots: allocated.saturating_sub(array.capacity()),
            retired_bytes: allocated.saturating_sub(array.capacity()) * slot,
        }
    }
}

/// What a snapshot table holds and takes: see [`TableReader::footprint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableFootprint {
    /// Live keys.
    pub entries: usize,
    /// Slots of the current (live) array.
    pub live_slots: usize,
    /// Bytes of the current array's slots and control bytes.
    pub live_bytes: usize,
    /// Slots of the retired arrays kept for reuse (never freed while the table lives).
    pub retired_slots: usize,
    /// Bytes of the retired arrays' slots and control bytes.
    pub retired_bytes: usize,
}

#[cfg(all(test, not(mabeam_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Keys whose home slot is 0 in every array of at most `1 << bits` slots.
    fn colliding_keys(n: usize, bits: u32) -> Vec<u64> {
        let mask = (1u64 << bits) - 1;
        (0u64..).filter(|k| mix(*k) & mask == 0).take(n).collect()
    }

    /// A record that names its key and a version, and checks itself.
    fn record(key: u64, version: u64) -> [u64; 3] {
        [key, version, key ^ version.rotate_left(17) ^ 0x5eed]
    }

    fn assert_consistent(key: u64, r: [u64; 3]) {
        assert_eq!(r[0], key, "record of another key returned for {key}: {r:?}");
        assert_eq!(r, record(key, r[1]), "torn record for {key}: {r:?}");
    }

    /// Slot `slot`'s state, checked against its control byte.
    fn slot_state<const W: usize>(w: &TableWriter<W>, slot: usize) -> u64 {
        let (state, ctrl) = (w.array().slots[slot].state(), w.array().ctrl(slot));
        let agrees = match state {
            EMPTY => ctrl == CTRL_EMPTY,
            TOMBSTONE => ctrl == CTRL_TOMBSTONE,
            _ => ctrl == ctrl_tag(mix(w.array().slots[slot].key())),
        };
        assert!(
            agrees,
            "slot {slot}: state {state} but control byte {ctrl:#x}"
        );
        state
    }

    /// The slot that holds live key `k`.
    fn slot_of<const W: usize>(w: &TableWriter<W>, k: u64) -> usize {
        match w.array().place(k, mix(k)) {
            Place::Found(slot) => slot,
            Place::Vacant(_) => panic!("key {k} is not live"),
        }
    }

    #[test]
    fn insert_overwrite_remove_and_get() {
        let (mut w, r) = snapshot_table::<2>(4);
        assert!(w.is_empty() && r.is_empty());
        for key in [0, 1, u64::MAX, 42] {
            w.insert(key, [key, 1]);
        }
        assert_eq!((w.len(), r.len()), (4, 4));
        for key in [0, 1, u64::MAX, 42] {
            assert_eq!(w.get(key), Some([key, 1]));
            assert_eq!(r.get(key), Some([key, 1]));
        }
        w.insert(0, [0, 2]);
        assert_eq!(r.get(0), Some([0, 2]), "overwrite is seen");
        assert_eq!(w.len(), 4, "overwrite does not add a key");
        assert!(w.remove(0));
        assert!(!w.remove(0), "second remove reports absence");
        assert!(!w.remove(7), "never-inserted key");
        assert_eq!((w.get(0), r.get(0)), (None, None));
        assert_eq!(r.get(1), Some([1, 1]));
        assert_eq!((w.len(), r.len()), (3, 3));
        w.insert(0, [0, 3]);
        assert_eq!(r.get(0), Some([0, 3]), "re-insert after remove");
    }

    #[test]
    fn initial_capacity_is_rounded_to_a_power_of_two_within_bounds() {
        assert_eq!(snapshot_table::<1>(0).0.capacity(), 2);
        assert_eq!(snapshot_table::<1>(3).0.capacity(), 4);
        assert_eq!(snapshot_table::<1>(64).0.capacity(), 64);
        assert_eq!(max_used(2), 1);
        assert_eq!(max_used(4), 3);
        assert_eq!(max_used(1 << 20), 3 << 18);
    }

    #[test]
    fn capacity_for_is_the_smallest_capacity_that_never_grows() {
        let lives = (0..600).chain([1000, 4095, 49_152, 49_153, 100_000]);
        for live in lives {
            let capacity = capacity_for(live);
            assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
            let (mut w, r) = snapshot_table::<1>(capacity);
            for key in 0..live as u64 {
                w.insert(key, [key]);
            }
            assert_eq!(w.capacity(), capacity, "{live} keys grew the table");
            assert_eq!((w.allocated_arrays(), r.len()), (1, live));
            if capacity > MIN_CAPACITY {
                let (mut w, _r) = snapshot_table::<1>(capacity / 2);
                for key in 0..live as u64 {
                    w.insert(key, [key]);
                }
                assert!(w.capacity() > capacity / 2, "{live}: half would do");
            }
        }
        assert_eq!(capacity_for(usize::MAX), MAX_INITIAL_CAPACITY);
    }

    #[test]
    fn prefetch_changes_nothing() {
        let (mut w, r) = snapshot_table::<2>(16);
        for key in 0..100u64 {
            w.insert(key, [key, key + 1]);
        }
        let (capacity, len) = (w.capacity(), w.len());
        for key in 0..200u64 {
            w.prefetch(key);
        }
        assert_eq!((w.capacity(), w.len(), r.len()), (capacity, len, 100));
        for key in 0..200u64 {
            let expected = (key < 100).then_some([key, key + 1]);
            assert_eq!(r.get(key), expected, "{key}");
        }
    }

    #[test]
    fn colliding_keys_share_one_chain() {
        let keys = colliding_keys(48, 10);
        let (mut w, r) = snapshot_table::<3>(1024);
        for &k in &keys[..40] {
            w.insert(k, record(k, 1));
        }
        assert_eq!(w.capacity(), 1024, "no rebuild: 40 keys in 1024 slots");
        for (i, &k) in keys[..40].iter().enumerate() {
            assert_eq!(slot_of(&w, k), i, "chain from slot 0 is filled in order");
            assert_eq!(r.get(k), Some(record(k, 1)));
        }
        for &k in &keys[40..] {
            assert_eq!(r.get(k), None, "absent key probes the whole chain");
        }
        // Remove every other key in the middle: tombstones keep the chain intact.
        for &k in keys[..39].iter().step_by(2) {
            assert!(w.remove(k));
        }
        assert_eq!(w.tombstones, 20);
        for (i, &k) in keys[..40].iter().enumerate() {
            let expected = (i % 2 == 1 || i == 39).then(|| record(k, 1));
            assert_eq!(r.get(k), expected, "key #{i}");
        }
    }

    #[test]
    fn new_key_reuses_the_first_tombstone_of_its_chain() {
        let keys = colliding_keys(4, 10);
        let (mut w, r) = snapshot_table::<3>(1024);
        for &k in &keys[..3] {
            w.insert(k, record(k, 1));
        }
        assert!(w.remove(keys[1]));
        assert_eq!(
            slot_state(&w, 1),
            TOMBSTONE,
            "next slot is occupied: tombstone"
        );
        assert_eq!(w.tombstones, 1);
        w.insert(keys[3], record(keys[3], 1));
        assert_eq!(slot_of(&w, keys[3]), 1, "the tombstone is reused");
        assert_eq!(w.tombstones, 0);
        for &k in [keys[0], keys[2], keys[3]].iter() {
            assert_eq!(r.get(k), Some(record(k, 1)));
        }
        assert_eq!(r.get(keys[1]), None);
    }

    /// The writer keeps no index: an overwrite of a key that sits past a tombstone on its
    /// chain must find the key, not take the tombstone (which would hold the key twice).
    #[test]
    fn overwrite_past_a_tombstone_keeps_one_slot_per_key() {
        let keys = colliding_keys(3, 4);
        let (mut w, r) = snapshot_table::<3>(16);
        for &k in &keys {
            w.insert(k, record(k, 1));
        }
        assert!(w.remove(keys[0]));
        assert_eq!(slot_state(&w, 0), TOMBSTONE);
        w.insert(keys[2], record(keys[2], 2));
        assert_eq!(slot_of(&w, keys[2]), 2, "overwritten in place");
        assert_eq!(slot_state(&w, 0), TOMBSTONE, "the tombstone is not taken");
        assert_eq!((w.len(), w.tombstones), (2, 1));
        assert!(w.remove(keys[2]));
        assert_eq!(r.get(keys[2]), None, "no second copy left behind");
        assert_eq!(w.get(keys[1]), Some(record(keys[1], 1)));
        let mut live: Vec<u64> = w.iter().map(|(k, _)| k).collect();
        live.sort_unstable();
        assert_eq!(live, vec![keys[1]]);
    }

    #[test]
    fn tombstones_before_an_empty_slot_are_cleaned_up() {
        let keys = colliding_keys(4, 10);
        let (mut w, r) = snapshot_table::<3>(1024);
        for &k in &keys {
            w.insert(k, record(k, 1));
        }
        assert!(w.remove(keys[1]));
        assert!(w.remove(keys[2]));
        assert_eq!(w.tombstones, 2);
        // Slot 4 is EMPTY: removing the last key of the chain clears it and walks back.
        assert!(w.remove(keys[3]));
        assert_eq!(w.tombstones, 0);
        for slot in 1..=4 {
            assert_eq!(slot_state(&w, slot), EMPTY, "slot {slot}");
        }
        assert_eq!(slot_state(&w, 0), OCCUPIED);
        assert_eq!(r.get(keys[0]), Some(record(keys[0], 1)));
        for &k in &keys[1..] {
            assert_eq!(r.get(k), None);
        }
        // Wrap-around: a chain that starts in the last slot.
        let (mut w, r) = snapshot_table::<1>(8);
        let tail: Vec<u64> = (0u64..).filter(|k| mix(*k) & 7 == 7).take(2).collect();
        w.insert(tail[0], [1]);
        w.insert(tail[1], [2]);
        assert_eq!((slot_of(&w, tail[0]), slot_of(&w, tail[1])), (7, 0));
        assert!(w.remove(tail[0]));
        assert_eq!(w.tombstones, 1, "slot 0 after it is occupied");
        assert_eq!(r.get(tail[1]), Some([2]), "found through the wrapped chain");
        assert!(w.remove(tail[1]));
        assert_eq!(w.tombstones, 0, "clean-up walks back across the wrap");
        assert_eq!((slot_state(&w, 7), slot_state(&w, 0)), (EMPTY, EMPTY));
    }

    #[test]
    fn scan_into_reports_every_live_record_once_sorted() {
        let (mut w, r) = snapshot_table::<3>(2);
        for k in 0..500u64 {
            w.insert(k * 7, record(k * 7, 1));
        }
        for k in (0..500u64).filter(|k| k % 3 == 0) {
            assert!(w.remove(k * 7));
        }
        let mut out = vec![(1, [0; 3]); 3];
        r.scan_into(&mut out);
        let expected: Vec<_> = (0..500u64)
            .filter(|k| k % 3 != 0)
            .map(|k| (k * 7, record(k * 7, 1)))
            .collect();
        assert_eq!(out, expected);
        assert_eq!(r.len(), expected.len());
    }

    #[test]
    fn compact_clears_tombstones_and_reuses_retired_arrays() {
        let keys = colliding_keys(3, 10);
        let (mut w, r) = snapshot_table::<3>(1024);
        for &k in &keys {
            w.insert(k, record(k, 1));
        }
        assert!(w.remove(keys[0]));
        assert_eq!(w.tombstones, 1);
        w.compact();
        assert_eq!(
            (w.tombstones, w.capacity(), w.allocated_arrays()),
            (0, 1024, 2)
        );
        w.compact();
        w.compact();
        assert_eq!(
            w.allocated_arrays(),
            2,
            "compactions alternate between two arrays"
        );
        assert_eq!(r.get(keys[0]), None);
        for &k in &keys[1..] {
            assert_eq!(r.get(k), Some(record(k, 1)));
            assert_eq!(w.get(k), Some(record(k, 1)));
        }
    }

    #[test]
    fn readers_outlive_the_writer() {
        let (mut w, r) = snapshot_table::<1>(2);
        for k in 0..100 {
            w.insert(k, [k + 1]);
        }
        let r2 = w.reader();
        drop(w);
        assert_eq!(r.get(5), Some([6]));
        assert_eq!(r2.len(), 100);
        drop(r);
        assert_eq!(r2.get(99), Some([100]));
    }

    #[test]
    fn churn_keeps_the_number_of_arrays_small() {
        let (mut w, r) = snapshot_table::<1>(2);
        for i in 0..100_000u64 {
            w.insert(i, [i]);
            if i >= 100 {
                assert!(w.remove(i - 100));
            }
        }
        assert_eq!(w.len(), 100);
        assert_eq!(r.get(99_999), Some([99_999]));
        assert_eq!(r.get(99_899), None);
        let capacity = w.capacity();
        assert!(
            capacity <= 256,
            "100 live keys need at most 256 slots, got {capacity}"
        );
        // At most two arrays per size 2, 4, …, capacity.
        let sizes = capacity.trailing_zeros() as usize;
        assert!(
            w.allocated_arrays() <= 2 * sizes,
            "{} arrays for {sizes} sizes",
            w.allocated_arrays()
        );
        // Many rebuilds happened, so retired arrays were reused, not leaked.
        assert!(w.epoch_counter > 3 * 100, "only {} epochs", w.epoch_counter);
    }

    /// `get_with`'s decoders run on records the writer is overwriting: every result the
    /// reader gets was decoded from one whole record (all words equal), in whatever order
    /// the decoder loads them, and a key's results never go back in time. The writer
    /// overwrites one key 200,000 times with `[n; 8]` while it grows the table under it.
    #[test]
    fn decoders_never_return_a_torn_record() {
        const WRITES: u64 = 200_000;
        let (mut w, r) = snapshot_table::<8>(2);
        w.insert(0, [0; 8]);
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let reader = {
            let (done, started) = (Arc::clone(&done), Arc::clone(&started));
            std::thread::spawn(move || {
                started.store(true, Ordering::Release);
                let mut last = 0u64;
                loop {
                    let finished = done.load(Ordering::Acquire);
                    let (a, b, c) = r
                        .get_with(0, |rec| (rec.word(7), rec.word(0), rec.word(3)))
                        .expect("key 0 is present throughout");
                    assert!(a == b && b == c, "torn record decoded: {a} {b} {c}");
                    assert!(a >= last, "read {a} after {last}");
                    last = a;
                    if finished {
                        return last;
                    }
                }
            })
        };
        // Start writing only once the reader runs, so the two overlap.
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        for n in 1..=WRITES {
            w.insert(0, [n; 8]);
            if n % 64 == 0 {
                w.insert(n, [n; 8]);
            }
        }
        done.store(true, Ordering::Release);
        let last = reader.join().expect("reader panicked");
        assert_eq!(last, WRITES, "the read after the last write sees it");
    }

    /// The writer grows the table from 2 slots to thousands, churns and overwrites, while a
    /// reader checks every record it gets and that keys that are always present are found.
    #[test]
    fn concurrent_reader_during_growth_and_churn() {
        const STABLE: u64 = 8;
        const ROUNDS: u64 = 20_000;
        let (mut w, r) = snapshot_table::<3>(2);
        for k in 0..STABLE {
            w.insert(k, record(k, 0));
        }
        // Keys below `removed_below` (among the churn keys) were removed and never come back;
        // the writer publishes it with `Release` after the removal.
        let removed_below = Arc::new(AtomicU64::new(STABLE));
        let done = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let reader = {
            let (removed_below, done) = (Arc::clone(&removed_below), Arc::clone(&done));
            let started = Arc::clone(&started);
            std::thread::spawn(move || {
                started.store(true, Ordering::Release);
                let mut passes = 0u64;
                let mut scan = Vec::new();
                loop {
                    let finished = done.load(Ordering::Acquire);
                    for k in 0..STABLE {
                        let rec = r.get(k).unwrap_or_else(|| panic!("stable key {k} missing"));
                        assert_consistent(k, rec);
                    }
                    let gone = removed_below.load(Ordering::Acquire);
                    for k in [gone.saturating_sub(1), gone.saturating_sub(7)] {
                        if k >= STABLE {
                            assert_eq!(r.get(k), None, "key {k} returned after its removal");
                        }
                    }
                    for k in gone..gone + 16 {
                        if let Some(rec) = r.get(k) {
                            assert_consistent(k, rec);
                        }
                    }
                    if passes & 63 == 0 {
                        r.scan_into(&mut scan);
                        assert!(scan.windows(2).all(|p| p[0].0 < p[1].0), "duplicate key");
                        for (k, rec) in &scan {
                            assert_consistent(*k, *rec);
                        }
                        assert!(scan.iter().filter(|(k, _)| *k < STABLE).count() == 8);
                    }
                    passes += 1;
                    if finished {
                        return passes;
                    }
                }
            })
        };
        // Start writing only once the reader runs, so the two overlap.
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        assert_eq!(
            w.capacity(),
            16,
            "8 stable keys, before the growth under test"
        );
        for round in 0..ROUNDS {
            let k = STABLE + round;
            w.insert(k, record(k, round));
            w.insert(round % STABLE, record(round % STABLE, round));
            // Keep a window of 2000 live churn keys, then slide it.
            if round >= 2_000 {
                let old = k - 2_000;
                assert!(w.remove(old));
                removed_below.store(old + 1, Ordering::Release);
            }
        }
        done.store(true, Ordering::Release);
        let passes = reader.join().expect("reader thread panicked");
        assert!(passes > 0);
        assert!(w.capacity() >= 4096, "grew to {}", w.capacity());
    }

    /// Every slot's control byte agrees with its state (and, when OCCUPIED, with its key).
    fn assert_ctrl_agrees<const W: usize>(w: &TableWriter<W>) {
        for slot in 0..w.capacity() {
            slot_state(w, slot);
        }
    }

    /// Random inserts, overwrites and removals over a small key space (so chains collide,
    /// tombstones pile up and get cleaned, and the table rebuilds), checked after every
    /// operation against a `HashMap`: what the writer and a reader return, and every
    /// slot's control byte against its state.
    #[test]
    fn random_operations_match_a_hash_map_and_keep_the_control_bytes() {
        let mut map = std::collections::HashMap::new();
        let (mut w, r) = snapshot_table::<3>(2);
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 97;
            if x >> 62 == 0 {
                assert_eq!(w.remove(key), map.remove(&key).is_some(), "step {step}");
            } else {
                w.insert(key, record(key, step));
                map.insert(key, record(key, step));
            }
            if step % 64 == 0 {
                assert_ctrl_agrees(&w);
            }
            let probe = (x >> 20) % 100;
            assert_eq!(
                r.get(probe),
                map.get(&probe).copied(),
                "step {step}, key {probe}"
            );
            assert_eq!(
                w.get(probe),
                map.get(&probe).copied(),
                "step {step}, key {probe}"
            );
            assert_eq!(w.len(), map.len());
        }
        assert_ctrl_agrees(&w);
        for key in 0..100 {
            assert_eq!(r.get(key), map.get(&key).copied(), "key {key}");
        }
    }

    /// Keys that start their probe in slot 0 of a 16-slot array and share one control
    /// byte, so every probe for one of them reads the others' slots.
    fn same_home_and_tag(n: usize) -> Vec<u64> {
        let tag = home_and_tag(0, 16).1;
        (0u64..)
            .filter(|&k| home_and_tag(k, 16) == (0, tag))
            .take(n)
            .collect()
    }

    /// Stress: a reader looks up 3 stable keys while the writer removes and re-inserts 3
    /// others, 200,000 times each, that share their home slot and their control byte and
    /// sit in front of them on the chain: the reader keeps passing tombstones, tags that
    /// match and slots that belong to other keys, mid change. Every lookup of a stable
    /// key finds its own record; a churned key is absent or whole, and never returns a
    /// record whose removal happened-before the lookup.
    #[test]
    fn lookups_among_keys_with_one_tag_never_confuse_them() {
        const ROUNDS: u64 = 200_000;
        let keys = same_home_and_tag(6);
        let (churn, stable) = (keys[..3].to_vec(), keys[3..].to_vec());
        let (mut w, r) = snapshot_table::<3>(16);
        for &k in churn.iter().chain(&stable) {
            w.insert(k, record(k, 0));
        }
        for (slot, &k) in churn.iter().enumerate() {
            assert_eq!(slot_of(&w, k), slot, "churned keys lead the chain");
        }
        // Round whose removals have all been applied, published with `Release`.
        let removed_in = Arc::new(AtomicU64::new(0));
        let (done, started) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let reader = {
            let (removed_in, done) = (Arc::clone(&removed_in), Arc::clone(&done));
            let started = Arc::clone(&started);
            let (stable, churn) = (stable.clone(), churn.clone());
            std::thread::spawn(move || {
                started.store(true, Ordering::Release);
                let mut lookups = 0u64;
                while !done.load(Ordering::Acquire) {
                    for &k in &stable {
                        assert_eq!(r.get(k), Some(record(k, 0)), "stable key {k}");
                    }
                    let before = removed_in.load(Ordering::Acquire);
                    for &k in &churn {
                        if let Some(found) = r.get(k) {
                            assert_consistent(k, found);
                            assert!(
                                found[1] >= before,
                                "key {k}: record of round {} after round {before}'s removal",
                                found[1]
                            );
                        }
                    }
                    lookups += 6;
                }
                lookups
            })
        };
        // Start writing only once the reader runs, so the two overlap.
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        for round in 1..=ROUNDS {
            for &k in churn.iter().rev() {
                assert!(w.remove(k));
            }
            removed_in.store(round, Ordering::Release);
            for &k in &churn {
                w.insert(k, record(k, round));
            }
            assert_eq!(w.capacity(), 16, "6 keys in 16 slots: no growth");
        }
        done.store(true, Ordering::Release);
        let lookups = reader.join().expect("reader thread panicked");
        assert!(lookups > 0);
        assert_ctrl_agrees(&w);
    }
}
