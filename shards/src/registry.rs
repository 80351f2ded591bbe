//! One shard's part of the agent registry: names → handle + metadata, published as
//! fixed-size records in a [`SnapshotTable`](crate::table) for lock-free lookups.
//!
//! The engine routes each name to one shard by a stable hash; this state machine is what
//! that shard does with it. It is plain deterministic code: no threads, no clock.
//!
//! # Record layout
//!
//! A registry entry is published as [`RECORD_WORDS`] `u64` words, keyed by
//! [`name_key`]`(name)`:
//!
//! | words | content |
//! |---|---|
//! | 0 | name length in bytes |
//! | 1..=8 | name bytes, little-endian, zero padded ([`MAX_NAME_LEN`] = 64) |
//! | 9 | handle |
//! | 10 | health (bits 0..8), node (bits 32..64) |
//! | 11 | load |
//! | 12..16 | capability bitset ([`MAX_CAPABILITIES`] = 256 interned capabilities) |
//!
//! Readers compare the stored name with the one they look up, so a 64-bit key collision
//! can never return another name's entry; a writer refuses to register a name whose key
//! is already used by a different name ([`RegistryError::KeyCollision`]).

use std::fmt;

use hashbrown::HashMap;

use crate::table::{capacity_for, snapshot_table, TableReader, TableWriter};

/// Longest registry name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;
/// Number of distinct capability names an engine can intern (the bitset width).
pub const MAX_CAPABILITIES: usize = 256;
/// Words in a published registry record.
pub const RECORD_WORDS: usize = 16;

const NAME_WORDS: usize = MAX_NAME_LEN / 8;
const CAP_WORDS: usize = MAX_CAPABILITIES / 64;

/// Why a registry call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The name is empty or longer than [`MAX_NAME_LEN`] bytes.
    InvalidName {
        /// Length of the refused name in bytes.
        len: usize,
    },
    /// The name holds a control character (`char::is_control`: C0 including tab, newline
    /// and NUL, DEL, or C1) at byte offset `at`; see [`Name::new`] for the rule.
    ControlCharacter {
        /// Byte offset of the first control character.
        at: usize,
    },
    /// Another lease holds this name.
    AlreadyRegistered,
    /// No entry has this name.
    NotFound,
    /// The entry exists but belongs to another lease.
    NotLeaseHolder,
    /// The shard holds its maximum number of entries.
    Full {
        /// The per-shard bound that was hit.
        capacity: usize,
    },
    /// The call needs a new capability name while [`MAX_CAPABILITIES`] distinct names
    /// are in use engine-wide (held by stored entries); names free up as entries go.
    TooManyCapabilities,
    /// A capability name breaks the name rule of [`Name::new`]: it is empty, longer than
    /// [`MAX_NAME_LEN`] bytes, or holds a control character.
    InvalidCapability,
    /// The name's 64-bit key equals the key of a different registered name
    /// (probability about n²/2⁶⁵ for n names).
    KeyCollision,
    /// The engine could not carry out the call.
    Engine(crate::Error),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName { len } => write!(
                f,
                "invalid name: {len} bytes, names must be 1 to {MAX_NAME_LEN} bytes of UTF-8"
            ),
            Self::ControlCharacter { at } => write!(
                f,
                "invalid name: control character at byte {at}, names must not hold control characters"
            ),
            Self::AlreadyRegistered => f.write_str("name already registered"),
            Self::NotFound => f.write_str("no entry with this name"),
            Self::NotLeaseHolder => f.write_str("entry belongs to another lease"),
            Self::Full { capacity } => {
                write!(f, "registry shard full ({capacity} entries)")
            }
            Self::TooManyCapabilities => write!(
                f,
                "more than {MAX_CAPABILITIES} distinct capability names in this engine"
            ),
            Self::InvalidCapability => write!(
                f,
                "invalid capability: names must be 1 to {MAX_NAME_LEN} bytes of UTF-8"
            ),
            Self::KeyCollision => f.write_str("name's 64-bit key collides with another name"),
            Self::Engine(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RegistryError {}

impl From<crate::Error> for RegistryError {
    fn from(e: crate::Error) -> Self {
        Self::Engine(e)
    }
}

/// A validated registry name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8 without control
/// characters (the rule is on [`Name::new`]), stored inline.
///
/// The bytes are kept as whole words (`raw[i]` holds bytes `8i..8i + 8` in memory order,
/// zero padded), built from the string eight bytes at a time: hashing, encoding and
/// comparing a name then read whole words that were written as whole words, which a
/// byte-wise copy followed by word reads does not give (the processor cannot forward a
/// word load from several narrower stores, and waits for them to reach the cache).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    raw: [u64; NAME_WORDS],
    len: u8,
}

impl Name {
    /// Validates `name` against the name rule: 1 to [`MAX_NAME_LEN`] bytes of UTF-8
    /// (else [`RegistryError::InvalidName`]) with no control character (`char::is_control`:
    /// C0 including NUL, tab, newline and carriage return, DEL, and C1; else
    /// [`RegistryError::ControlCharacter`]). Spaces and other non-control whitespace are
    /// allowed. Capability names follow the same rule.
    ///
    /// ```
    /// use mabeam_shards::registry::{Name, RegistryError};
    /// assert_eq!(Name::new("worker-1").unwrap().as_str(), "worker-1");
    /// assert_eq!(Name::new(""), Err(RegistryError::InvalidName { len: 0 }));
    /// assert_eq!(Name::new("a\0b"), Err(RegistryError::ControlCharacter { at: 1 }));
    /// ```
    #[inline(always)]
    pub fn new(name: &str) -> Result<Self, RegistryError> {
        let len = name.len();
        if len == 0 || len > MAX_NAME_LEN {
            return Err(RegistryError::InvalidName { len });
        }
        let mut raw = [0u64; NAME_WORDS];
        let mut suspect = 0;
        for (i, (r, w)) in raw.iter_mut().zip(le_words(name.as_bytes())).enumerate() {
            // The padding of a partial last word reads as spaces, which are no suspects.
            let valid = len - i * 8;
            let padded = if valid < 8 {
                w | SPACES << (8 * valid)
            } else {
                w
            };
            suspect |= control_suspects(padded);
            *r = u64::from_le(w);
        }
        if suspect != 0 {
            if let Some(at) = first_control(name.as_bytes()) {
                return Err(RegistryError::ControlCharacter { at });
            }
        }
        Ok(Self {
            raw,
            len: len as u8,
        })
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` in `new` or checked in `from_words`.
        std::str::from_utf8(self.bytes())
            .expect("Name holds valid UTF-8: built from &str or validated on decode")
    }

    /// The name's `len` bytes, in memory order (not yet checked to be UTF-8 when called
    /// from `from_words`).
    #[inline]
    fn bytes(&self) -> &[u8] {
        // SAFETY: `raw` is `NAME_WORDS` initialised `u64`s, i.e. `MAX_NAME_LEN` initialised
        // bytes with no padding, and `u8` needs no alignment; `len <= MAX_NAME_LEN`
        // (checked in `new` and `from_words`, the only constructors, before they build a
        // `Name`). The slice borrows `self`, so it cannot outlive the words.
        unsafe { std::slice::from_raw_parts(self.raw.as_ptr().cast::<u8>(), usize::from(self.len)) }
    }

    /// The stable 64-bit key of this name (see [`name_key`]).
    #[inline]
    pub fn key(&self) -> u64 {
        let len = usize::from(self.len);
        key_of_words(len, (0..len.div_ceil(8)).map(|i| self.word(i)))
    }

    /// Name word `i`: bytes `8i..8i + 8` as a little-endian number, zero padded.
    #[inline]
    fn word(&self, i: usize) -> u64 {
        u64::from_le(self.raw[i])
    }

    #[inline]
    fn to_words(self) -> [u64; 1 + NAME_WORDS] {
        let mut w = [0u64; 1 + NAME_WORDS];
        w[0] = u64::from(self.len);
        for i in 0..NAME_WORDS {
            w[1 + i] = self.word(i);
        }
        w
    }

    fn from_words(w: &[u64]) -> Option<Self> {
        let len = usize::try_from(w[0]).ok()?;
        if len == 0 || len > MAX_NAME_LEN {
            return None;
        }
        let mut raw = [0u64; NAME_WORDS];
        for (i, r) in raw.iter_mut().enumerate() {
            *r = u64::to_le(w[1 + i]);
        }
        let name = Self {
            raw,
            len: len as u8,
        };
        std::str::from_utf8(name.bytes()).ok()?;
        // Names are zero padded; a record with bytes past its length is not a name.
        if (len..MAX_NAME_LEN).any(|i| (w[1 + i / 8] >> (8 * (i % 8))) & 0xff != 0) {
            return None;
        }
        Some(name)
    }

    /// True if the record whose word `i` is `word(i)` holds exactly this name.
    ///
    /// Compares the length word and the name words that hold bytes; the words after them
    /// are zero in every published record (records are only ever written by
    /// [`Entry::to_words`] of a valid name, and a reader's answer counts only if its
    /// seqlock read was consistent), so they need no check. Any words give an answer
    /// without a panic, so it can run on a torn record inside
    /// [`TableReader::get_with`], which then throws the answer away.
    #[inline]
    fn matches(&self, word: impl Fn(usize) -> u64) -> bool {
        let len = usize::from(self.len);
        word(0) == len as u64 && (0..len.div_ceil(8)).all(|i| word(1 + i) == self.word(i))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stable 64-bit key of a name: its bytes taken eight at a time (little-endian, the
/// last word zero padded), each folded into the state by a multiply and a shift, seeded
/// with the length.
///
/// Every step is a bijection of the state, so two names of the same length that differ
/// in one word always get different keys. There is no finalizer: the table and the
/// shard routing mix the key again (a bijective finalizer would change no collision).
///
/// Stable across runs and platforms; the engine also routes names to shards with it. It
/// is never stored: an export holds names, and a restore keys them again.
pub fn name_key(name: &str) -> u64 {
    key_of_bytes(name.as_bytes())
}

#[inline]
fn key_of_bytes(bytes: &[u8]) -> u64 {
    key_of_words(bytes.len(), le_words(bytes))
}

/// The bytes as little-endian words, eight bytes each, the last one zero padded; loaded
/// whole (a partial last word with two overlapping loads), never byte by byte.
#[inline]
fn le_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    chunks
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .chain((!tail.is_empty()).then(|| tail_word(tail)))
}

/// The 1 to 7 `bytes` as a little-endian word, zero padded: two overlapping loads (the
/// bytes they share are the same, so OR-ing them is exact).
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    debug_assert!((1..8).contains(&n));
    if n >= 4 {
        let lo = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let hi = u32::from_le_bytes([bytes[n - 4], bytes[n - 3], bytes[n - 2], bytes[n - 1]]);
        u64::from(lo) | u64::from(hi) << (8 * (n - 4))
    } else {
        u64::from(bytes[0])
            | u64::from(bytes[n / 2]) << (8 * (n / 2))
            | u64::from(bytes[n - 1]) << (8 * (n - 1))
    }
}

/// The key of a `len`-byte string whose words (zero padded) are `words`: one multiply
/// per word, where FNV-1a took one per byte. Each step is a bijection of the state, so
/// two strings of the same length first differing in word `i` differ in state after it.
#[inline]
fn key_of_words(len: usize, words: impl Iterator<Item = u64>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ len as u64;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
    }
    h
}

/// 0x01 in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// 0x20 (a space) in every byte.
const SPACES: u64 = ONES * 0x20;

/// Nonzero if a byte of `w` is zero (the borrow trick: exact as a test for any, never a
/// false negative).
#[inline]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & (ONES * 0x80)
}

/// Nonzero if a byte of `w` may start a control character: a byte below 0x20, 0x7F or
/// 0xC2 (see [`first_control`]). Eight bytes at a time; [`first_control`] settles the
/// suspects (0xC2 also starts U+00A0..=U+00BF, which are not controls).
#[inline]
fn control_suspects(w: u64) -> u64 {
    // A byte below 0x20 (exact for a bound up to 0x80, like `zero_bytes`).
    let low = w.wrapping_sub(SPACES) & !w & (ONES * 0x80);
    low | zero_bytes(w ^ (ONES * 0x7f)) | zero_bytes(w ^ (ONES * 0xc2))
}

/// Byte offset of the first control character (`char::is_control`, the general category
/// Cc: U+0000..=U+001F and U+007F..=U+009F) in the UTF-8 `bytes`, found without decoding:
/// C0 and DEL are the single bytes below 0x20 and 0x7F, C1 the two-byte sequences 0xC2
/// 0x80..=0x9F (0xC2 is always a lead byte in valid UTF-8, and no other sequence encodes
/// these code points).
#[inline]
fn first_control(bytes: &[u8]) -> Option<usize> {
    bytes.iter().enumerate().position(|(i, &b)| {
        b < 0x20 || b == 0x7f || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)))
    })
}

pub use crate::hash::mix64;

/// Health of a registered agent, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Health {
    /// Working normally.
    #[default]
    Healthy,
    /// Working with reduced capacity.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl Health {
    /// The numeric code used in records and queries (0, 1, 2).
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The health with this code.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::Healthy),
            1 => Some(Self::Degraded),
            2 => Some(Self::Unhealthy),
            _ => None,
        }
    }
}

/// A set of interned capabilities: bit `i` is the capability with id `i`.
///
/// `Debug` prints the ids in the set, ascending (`CapabilitySet{0, 3}`): the names live
/// in the engine's interner, which a `Copy` set read from a snapshot cannot reach. Ask
/// the registry for them (`Registry::capability_names` in `mabeam`).
///
/// ```
/// use mabeam_shards::registry::CapabilitySet;
/// let mut set = CapabilitySet::EMPTY;
/// set.insert(3).unwrap();
/// set.insert(0).unwrap();
/// assert_eq!(format!("{set:?}"), "CapabilitySet{0, 3}");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapabilitySet([u64; CAP_WORDS]);

impl fmt::Debug for CapabilitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CapabilitySet")?;
        f.debug_set().entries(self.ids()).finish()
    }
}

impl CapabilitySet {
    /// The empty set.
    pub const EMPTY: Self = Self([0; CAP_WORDS]);

    /// Adds capability `id`; ids at or above [`MAX_CAPABILITIES`] are refused.
    pub fn insert(&mut self, id: usize) -> Result<(), RegistryError> {
        if id >= MAX_CAPABILITIES {
            return Err(RegistryError::TooManyCapabilities);
        }
        self.0[id / 64] |= 1 << (id % 64);
        Ok(())
    }

    /// True if capability `id` is in the set.
    pub fn contains(&self, id: usize) -> bool {
        id < MAX_CAPABILITIES && self.0[id / 64] & (1 << (id % 64)) != 0
    }

    /// True if every capability of `other` is in `self`.
    pub fn is_superset(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & b == *b)
    }

    /// The ids in the set, ascending.
    pub fn ids(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_CAPABILITIES).filter(move |&i| self.contains(i))
    }

    /// Number of capabilities in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True if the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

/// An entry's metadata in its fixed-size, published form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Metadata {
    /// Interned capabilities.
    pub capabilities: CapabilitySet,
    /// Health.
    pub health: Health,
    /// Load, in units the host chooses (queue length, permille of capacity, …).
    pub load: u64,
    /// The node the agent runs on, as a host-chosen number.
    pub node: u32,
}

/// A registry entry as readers see it: no heap data, `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The registered name.
    pub name: Name,
    /// The host's handle for the agent (a process id, an index, …).
    pub handle: u64,
    /// The entry's metadata.
    pub metadata: Metadata,
}

/// The record word holding an entry's handle (after the length and the name words);
/// [`Entry::to_words`] writes it, [`Entry::from_words`] and [`lookup_handle_keyed`] read it.
const HANDLE_WORD: usize = 1 + NAME_WORDS;

impl Entry {
    /// Encodes the entry as a published record.
    pub fn to_words(&self) -> [u64; RECORD_WORDS] {
        let mut w = [0u64; RECORD_WORDS];
        w[..1 + NAME_WORDS].copy_from_slice(&self.name.to_words());
        w[HANDLE_WORD] = self.handle;
        w[10] = self.metadata.health.code() | (u64::from(self.metadata.node) << 32);
        w[11] = self.metadata.load;
        w[12..16].copy_from_slice(&self.metadata.capabilities.0);
        w
    }

    /// Decodes a published record; `None` if the words are not a valid entry.
    #[inline]
    pub fn from_words(w: &[u64; RECORD_WORDS]) -> Option<Self> {
        Self::with_name(Name::from_words(w)?, |i| w[i])
    }

    /// The entry of the record whose word `i` is `word(i)` and whose name words are known
    /// to hold `name` (no second decode or UTF-8 check of the name). Reads each other word
    /// once, so it can decode straight from a [`RecordView`](crate::table::RecordView).
    #[inline]
    fn with_name(name: Name, word: impl Fn(usize) -> u64) -> Option<Self> {
        let status = word(10);
        Some(Self {
            name,
            handle: word(HANDLE_WORD),
            metadata: Metadata {
                capabilities: CapabilitySet(core::array::from_fn(|i| word(12 + i))),
                health: Health::from_code(status & 0xff)?,
                load: word(11),
                node: (status >> 32) as u32,
            },
        })
    }
}

/// Looks `name` up in a published registry table: lock-free, allocation-free.
#[inline]
pub fn lookup(reader: &TableReader<RECORD_WORDS>, name: &Name) -> Option<Entry> {
    lookup_keyed(reader, name, name.key())
}

/// [`lookup`] for a caller that has computed `key = name.key()` already (to route the
/// name to its shard), so the name is hashed once.
///
/// The stored name is compared with `name` whatever `key` is, so a wrong `key` can only
/// make the lookup miss, never return another name's entry.
#[inline(always)]
pub fn lookup_keyed(reader: &TableReader<RECORD_WORDS>, name: &Name, key: u64) -> Option<Entry> {
    // Decoded inside the slot's seqlock read: a torn record can only give a result that
    // `get_with` throws away (`matches` and `with_name` accept any words).
    reader
        .get_with(key, |r| {
            if name.matches(|i| r.word(i)) {
                Entry::with_name(*name, |i| r.word(i))
            } else {
                None
            }
        })
        .flatten()
}

/// The handle registered under `name`, from a published registry table: [`lookup_keyed`]
/// without building and returning the whole [`Entry`] (`key` must be `name.key()`; a
/// wrong key can only make it miss).
#[inline(always)]
pub fn lookup_handle_keyed(
    reader: &TableReader<RECORD_WORDS>,
    name: &Name,
    key: u64,
) -> Option<u64> {
    reader
        .get_with(key, |r| {
            name.matches(|i| r.word(i)).then(|| r.word(HANDLE_WORD))
        })
        .flatten()
}

/// The lease token of an entry nobody holds: an entry restored from an export, until a
/// host claims it. Lease tokens handed out start at 1.
pub const UNOWNED: u64 = 0;

struct Held {
    entry: Entry,
    lease: u64,
}

/// One shard's registry: the owning shard's state plus the table it publishes.
///
/// Invariants: every entry in `entries` is published in the table under its name's key
/// with exactly its current contents, and the table holds nothing else; every change is
/// validated before anything is mutated.
pub struct RegistryShard {
    entries: HashMap<u64, Held>,
    table: TableWriter<RECORD_WORDS>,
    capacity: usize,
}

impl fmt::Debug for RegistryShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryShard")
            .field("entries", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl RegistryShard {
    /// An empty registry shard holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self::with_reserve(capacity, 0)
    }

    /// An empty registry shard holding at most `capacity` entries, with the room for its
    /// first `reserve` entries (at most `capacity`) allocated and touched now: neither
    /// its map nor its table grows, and so neither stops the shard to copy itself, until
    /// more are registered. The cost is paid here: 152-byte table slots, 1⅓ to 2⅔ of them
    /// per reserved entry ([`capacity_for`]), and the map's room for `reserve` entries.
    pub fn with_reserve(capacity: usize, reserve: usize) -> Self {
        let reserve = reserve.min(capacity);
        let (table, _) = snapshot_table(capacity.clamp(16, 1024).max(capacity_for(reserve)));
        Self {
            entries: HashMap::with_capacity(reserve),
            table,
            capacity,
        }
    }

    /// A reader of the published table, for any thread.
    pub fn reader(&self) -> TableReader<RECORD_WORDS> {
        self.table.reader()
    }

    /// Registers `entry` under `lease`.
    pub fn register(&mut self, entry: Entry, lease: u64) -> Result<(), RegistryError> {
        let key = entry.name.key();
        if let Some(held) = self.entries.get(&key) {
            return Err(if held.entry.name == entry.name {
                RegistryError::AlreadyRegistered
            } else {
                RegistryError::KeyCollision
            });
        }
        if self.entries.len() >= self.capacity {
            return Err(RegistryError::Full {
                capacity: self.capacity,
            });
        }
        self.table.insert(key, entry.to_words());
        self.entries.insert(key, Held { entry, lease });
        Ok(())
    }

    fn held_mut(&mut self, name: &Name, lease: u64) -> Result<&mut Held, RegistryError> {
        match self.entries.get_mut(&name.key()) {
            Some(held) if held.entry.name == *name => {
                if held.lease == lease {
                    Ok(held)
                } else {
                    Err(RegistryError::NotLeaseHolder)
                }
            }
            _ => Err(RegistryError::NotFound),
        }
    }

    /// Replaces the metadata of `name`, if `lease` holds it.
    pub fn update_metadata(
        &mut self,
        name: &Name,
        lease: u64,
        metadata: Metadata,
    ) -> Result<Entry, RegistryError> {
        let held = self.held_mut(name, lease)?;
        held.entry.metadata = metadata;
        let entry = held.entry;
        self.table.insert(name.key(), entry.to_words());
        Ok(entry)
    }

    /// Removes `name`, if `lease` holds it.
    pub fn unregister(&mut self, name: &Name, lease: u64) -> Result<Entry, RegistryError> {
        let entry = self.held_mut(name, lease)?.entry;
        self.entries.remove(&name.key());
        self.table.remove(name.key());
        Ok(entry)
    }

    /// Hands an entry held by nobody ([`UNOWNED`], as a restore leaves them) to `lease`.
    /// [`RegistryError::NotLeaseHolder`] if someone holds it already.
    pub fn claim(&mut self, name: &Name, lease: u64) -> Result<Entry, RegistryError> {
        let held = self.held_mut(name, UNOWNED)?;
        held.lease = lease;
        Ok(held.entry)
    }

    /// The entry of `name`, from the owner's state.
    pub fn get(&self, name: &Name) -> Option<Entry> {
        self.entries
            .get(&name.key())
            .filter(|h| h.entry.name == *name)
            .map(|h| h.entry)
    }

    /// Every entry with its lease, for export.
    pub fn entries(&self) -> impl Iterator<Item = (Entry, u64)> + '_ {
        self.entries.values().map(|h| (h.entry, h.lease))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the shard holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, handle: u64) -> Entry {
        Entry {
            name: Name::new(name).unwrap(),
            handle,
            metadata: Metadata {
                load: 7,
                node: 3,
                health: Health::Degraded,
                ..Metadata::default()
            },
        }
    }

    #[test]
    fn names_are_validated() {
        assert!(Name::new("a").is_ok());
        assert!(Name::new(&"x".repeat(64)).is_ok());
        assert_eq!(
            Name::new(&"x".repeat(65)),
            Err(RegistryError::InvalidName { len: 65 })
        );
        assert_eq!(Name::new(""), Err(RegistryError::InvalidName { len: 0 }));
        assert_eq!(Name::new("ünïcødé").unwrap().as_str(), "ünïcødé");
    }

    #[test]
    fn control_characters_are_found_without_decoding() {
        // Every scalar value, alone and after a prefix, against `char::is_control`.
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            let mut s = String::from("ab\u{e9}");
            s.push(c);
            s.push('z');
            let expected = s
                .char_indices()
                .find(|(_, c)| c.is_control())
                .map(|(i, _)| i);
            assert_eq!(
                first_control(s.as_bytes()),
                expected,
                "{c:?} ({:#x})",
                c as u32
            );
        }
        assert_eq!(
            first_control("\u{c2}\u{a0}".as_bytes()),
            None,
            "NBSP is not Cc"
        );
    }

    #[test]
    fn words_are_the_zero_padded_little_endian_bytes() {
        let bytes: Vec<u8> = (1..=20).collect();
        for len in 0..=bytes.len() {
            let expected: Vec<u64> = bytes[..len]
                .chunks(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..c.len()].copy_from_slice(c);
                    u64::from_le_bytes(b)
                })
                .collect();
            assert_eq!(
                le_words(&bytes[..len]).collect::<Vec<_>>(),
                expected,
                "len {len}"
            );
        }
    }

    #[test]
    fn control_characters_are_found_in_every_word() {
        let controls = (0..=0x10_ffffu32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control());
        for c in controls.chain(['\u{a0}', '\u{bf}', '\u{7e}', ' ', 'é', '\u{c2}']) {
            for before in 0..MAX_NAME_LEN - 2 {
                let s = format!("{}{c}", "x".repeat(before));
                let expected = c.is_control().then_some(before);
                let got = Name::new(&s).err();
                assert_eq!(
                    got,
                    expected.map(|at| RegistryError::ControlCharacter { at }),
                    "{c:?} after {before} bytes"
                );
                let s = format!("{s}y");
                assert_eq!(
                    Name::new(&s).err(),
                    got,
                    "{c:?} after {before} bytes, then y"
                );
            }
        }
    }

    #[test]
    fn keys_of_names_and_strings_agree() {
        for len in 1..=MAX_NAME_LEN {
            let s: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let name = Name::new(&s).unwrap();
            assert_eq!(name.key(), name_key(&s), "len {len}");
        }
        assert_ne!(
            name_key("a"),
            name_key("a\0"),
            "the length is part of the key"
        );
        assert_ne!(name_key("agent-1"), name_key("agent-2"));
        let keys: std::collections::HashSet<u64> = (0..100_000)
            .map(|i| name_key(&format!("agent-{i}")))
            .collect();
        assert_eq!(keys.len(), 100_000);
    }

    #[test]
    fn lookup_compares_the_whole_name_whatever_the_key() {
        let mut shard = RegistryShard::new(10);
        let reader = shard.reader();
        let long = entry(&"n".repeat(MAX_NAME_LEN), 1);
        let short = entry("agent-1", 2);
        shard.register(long, 1).unwrap();
        shard.register(short, 2).unwrap();
        assert_eq!(lookup(&reader, &long.name), Some(long));
        assert_eq!(lookup(&reader, &short.name), Some(short));
        // The right record under the wrong name: refused by the name compare.
        assert_eq!(lookup_keyed(&reader, &short.name, long.name.key()), None);
        let key = short.name.key();
        assert_eq!(lookup_handle_keyed(&reader, &short.name, key), Some(2));
        assert_eq!(
            lookup_handle_keyed(&reader, &short.name, long.name.key()),
            None
        );
        let near = Name::new(&format!("{}m", "n".repeat(MAX_NAME_LEN - 1))).unwrap();
        assert_eq!(lookup_keyed(&reader, &near, long.name.key()), None);
        let prefix = Name::new("agent-").unwrap();
        assert_eq!(lookup_keyed(&reader, &prefix, short.name.key()), None);
    }

    #[test]
    fn record_round_trips() {
        let mut e = entry("agent/ß-42", 99);
        e.metadata.capabilities.insert(0).unwrap();
        e.metadata.capabilities.insert(255).unwrap();
        assert_eq!(Entry::from_words(&e.to_words()), Some(e));
        for len in 1..=MAX_NAME_LEN {
            let s = "ß".repeat(len / 2) + &"x".repeat(len % 2);
            let e = entry(&s, 1);
            assert_eq!(e.name.as_str(), s);
            assert_eq!(Entry::from_words(&e.to_words()), Some(e), "len {len}");
        }
        let mut w = entry("abc", 1).to_words();
        w[1] |= 0x7a << 24;
        assert_eq!(Entry::from_words(&w), None, "a byte past the length");
    }

    #[test]
    fn register_lookup_update_unregister() {
        let mut shard = RegistryShard::new(10);
        let reader = shard.reader();
        let e = entry("a", 1);
        shard.register(e, 100).unwrap();
        assert_eq!(lookup(&reader, &e.name), Some(e));
        assert_eq!(
            shard.register(entry("a", 2), 101),
            Err(RegistryError::AlreadyRegistered)
        );
        let meta = Metadata {
            load: 1,
            ..Metadata::default()
        };
        assert_eq!(
            shard.update_metadata(&e.name, 101, meta),
            Err(RegistryError::NotLeaseHolder)
        );
        shard.update_metadata(&e.name, 100, meta).unwrap();
        assert_eq!(lookup(&reader, &e.name).unwrap().metadata, meta);
        assert_eq!(
            shard.unregister(&e.name, 101),
            Err(RegistryError::NotLeaseHolder)
        );
        shard.unregister(&e.name, 100).unwrap();
        assert_eq!(lookup(&reader, &e.name), None);
        assert_eq!(shard.unregister(&e.name, 100), Err(RegistryError::NotFound));
    }

    #[test]
    fn capacity_is_enforced() {
        let mut shard = RegistryShard::new(2);
        shard.register(entry("a", 1), 1).unwrap();
        shard.register(entry("b", 1), 2).unwrap();
        assert_eq!(
            shard.register(entry("c", 1), 3),
            Err(RegistryError::Full { capacity: 2 })
        );
        shard.unregister(&Name::new("a").unwrap(), 1).unwrap();
        shard.register(entry("c", 1), 3).unwrap();
    }

    #[test]
    fn capability_sets() {
        let mut a = CapabilitySet::EMPTY;
        a.insert(3).unwrap();
        a.insert(70).unwrap();
        let mut b = CapabilitySet::EMPTY;
        b.insert(70).unwrap();
        assert!(a.is_superset(&b));
        assert!(!b.is_superset(&a));
        assert_eq!(a.ids().collect::<Vec<_>>(), vec![3, 70]);
        assert_eq!(
            a.insert(MAX_CAPABILITIES),
            Err(RegistryError::TooManyCapabilities)
        );
    }
}
