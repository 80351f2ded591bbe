//! An engine's whole observable state as plain data: what
//! [`EngineHandle::export`](crate::EngineHandle::export) returns and
//! [`Engine::start_from`](crate::Engine::start_from) (or [`Config::restore`]) starts from,
//! with any shard count and in either shape.
//!
//! # What is in it
//!
//! Registry entries, agents (with their coordination bookkeeping), open and retained
//! auctions with their bids and deadlines, market states with their VWAP windows, the
//! pricing cache, coordination sessions, barriers' parties and generations, the event
//! history, and the id sequences that keep new ids distinct from restored ones. It is
//! one consistent cut across the shards (see `runtime/export.rs` for the protocol and
//! its invariants).
//!
//! # Canonical order
//!
//! Every list is sorted by its key (names, ids, keys; events by shard, then sequence),
//! so two exports of the same observable state are equal (`==`) whatever the shard
//! counts of the engines they came from.
//!
//! # What is not in it, and how restored things behave
//!
//! - **Leases.** A lease is a host object, not data. A restored registry entry is held by
//!   nobody: it is readable (lookup, capability search, queries) but nobody can change or
//!   remove it until a host takes it with
//!   [`Registry::claim`](crate::registry::Registry::claim), which returns a fresh
//!   [`Lease`](crate::registry::Lease) (once per entry; a second claim gets
//!   `NotLeaseHolder`).
//! - **Subscriptions, tickets, queued tasks, barrier waiters**: they are threads and
//!   channels of the running engine; a restored barrier starts its current generation
//!   with nobody arrived.
//! - **The pricing cache's eviction order**: a restored shard evicts its entries in key
//!   order first (the cache is a cache; its contents are kept).
//!
//! # Ids after a restore with another shard count
//!
//! Auction and coordination-session ids carry the shard that created them in their top
//! bits (`prefix << 48 | sequence`). Ids route to shard `prefix % shards` (the
//! remainder is only computed when the prefix is not a shard of this engine), and a
//! restore puts every auction and session on exactly that shard, so restored ids keep
//! working with any shard count and no lookup table. An id whose prefix no shard of this
//! engine or of the state it was restored from could have made is refused without a
//! message, as before. The read path pays one compare against that prefix bound (a field
//! of the engine, read-only after start) and one predicted branch; see `BENCHMARKS.md`. New ids stay distinct from restored ones: the state keeps each prefix's next
//! auction sequence and the session sequence, and a restored engine continues after
//! them.
//!
//! # Bounds
//!
//! A restore refuses (with [`RestoreError`], before any thread starts: never a partial
//! engine) a state that does not fit the configuration it is started with: more entries,
//! agents, open auctions, retained auctions, market keys or cached prices on one shard
//! than configured, more capability names than [`MAX_CAPABILITIES`], more barriers than
//! `max_barriers`, duplicate keys, or records that break their own rules.
//!
//! [`MAX_CAPABILITIES`]: crate::registry::MAX_CAPABILITIES
//! [`Config::restore`]: crate::Config::restore

pub mod file;
pub(crate) mod restore;

use std::fmt;

pub use mabeam_shards::agents::{AgentState, AgentStatus};
pub use mabeam_shards::auction::Outcome;
pub use mabeam_shards::auction::{AuctionParts, BidsParts};
pub use mabeam_shards::coordination::{Completion, Protocol, SessionParts, SessionState};
pub use mabeam_shards::market::MarketState;
pub use mabeam_shards::pricing::Pricing;
pub use mabeam_shards::registry::Health;

pub use file::{StateFileError, FORMAT_VERSION, MAGIC};

use crate::runtime::StartError;

/// An engine's whole observable state; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EngineState {
    /// Engine clock time when the cut was taken, in nanoseconds.
    pub taken_at: u64,
    /// The interned capability names, in id order (registry records refer to them by
    /// index).
    pub capabilities: Vec<String>,
    /// Registry entries, by name.
    pub registry: Vec<RegistryRecord>,
    /// Agents, by id.
    pub agents: Vec<AgentRecord>,
    /// Open and retained auctions, by id.
    pub auctions: Vec<AuctionParts>,
    /// For each auction id prefix (the creating shard), the next sequence it hands out.
    pub auction_sequences: Vec<u64>,
    /// Market keys with their VWAP windows, by key.
    pub markets: Vec<MarketRecord>,
    /// Cached pricing results, by key.
    pub pricing: Vec<PricingRecord>,
    /// Coordination sessions (collecting and retained ended ones), by id.
    pub sessions: Vec<SessionParts>,
    /// The next coordination session sequence.
    pub session_sequence: u64,
    /// Barriers, by id.
    pub barriers: Vec<BarrierRecord>,
    /// The event history, by shard then sequence.
    pub events: Vec<EventRecord>,
    /// For each event shard number, the last sequence it handed out.
    pub event_sequences: Vec<u64>,
}

/// A registry entry, without its lease (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RegistryRecord {
    /// The registered name.
    pub name: String,
    /// The host's handle.
    pub handle: u64,
    /// Capabilities, as indices into [`EngineState::capabilities`], ascending.
    pub capabilities: Vec<u16>,
    /// Health.
    pub health: Health,
    /// Load.
    pub load: u64,
    /// Node.
    pub node: u32,
}

/// An agent's published state and its coordination bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AgentRecord {
    /// The agent's id.
    pub id: u64,
    /// Its state as published (status `Coordinating` while in a session).
    pub state: AgentState,
    /// The session it joined last, while in at least one.
    pub coordination: Option<u64>,
    /// Writes applied to it.
    pub version: u64,
    /// Time of its last write.
    pub updated_at: u64,
    /// Open sessions it takes part in.
    pub sessions: u32,
    /// The status it goes back to when its last session ends.
    pub saved: AgentStatus,
}

/// One market key: its state and its VWAP window.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MarketRecord {
    /// The key's published state.
    pub state: MarketState,
    /// The window's trades `(at, price, volume)`, oldest first.
    pub window: Vec<(u64, u64, u64)>,
}

/// One cached pricing result.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PricingRecord {
    /// The cache key (a hash of the input).
    pub key: u64,
    /// The second hash that guards against key collisions.
    pub check: u64,
    /// The result.
    pub pricing: Pricing,
}

/// A barrier: its parties and the generations it has completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BarrierRecord {
    /// The barrier id.
    pub id: u64,
    /// Parties per generation.
    pub parties: u32,
    /// Generations completed.
    pub generation: u64,
}

/// One event of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EventRecord {
    /// The shard that produced it (in the engine that produced it).
    pub shard: u16,
    /// Its sequence on that shard.
    pub seq: u64,
    /// Its topic.
    pub topic: String,
    /// When it was produced.
    pub timestamp: u64,
    /// Its correlation id.
    pub correlation: Option<u64>,
    /// Its payload.
    pub payload: EventPayload,
}

/// An event's payload as plain data (the [`Payload`](crate::events::Payload) variants;
/// fixed-size records as their published words).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum EventPayload {
    /// `registry.registered`.
    Registered {
        /// The name.
        name: String,
        /// The handle.
        handle: u64,
    },
    /// `registry.unregistered`.
    Unregistered {
        /// The name.
        name: String,
        /// The handle.
        handle: u64,
    },
    /// `agent.state.updated`: the agent snapshot's record words.
    AgentUpdated(Vec<u64>),
    /// `auction.created`: the status record words.
    AuctionCreated(Vec<u64>),
    /// `auction.bid`.
    AuctionBid {
        /// The auction.
        auction: u64,
        /// The bidder.
        bidder: u64,
        /// The amount, if shown.
        amount: Option<u64>,
    },
    /// `auction.closed`.
    AuctionClosed(Outcome),
    /// `auction.cancelled`.
    AuctionCancelled {
        /// The auction.
        auction: u64,
    },
    /// `market.data.updated`.
    MarketUpdated(MarketState),
    /// `coordination.initiated`.
    CoordinationInitiated {
        /// The session.
        session: u64,
        /// Its participants.
        participants: u32,
    },
    /// `coordination.completed`.
    CoordinationCompleted(Completion),
    /// `coordination.barrier.reached`.
    BarrierReached {
        /// The barrier.
        barrier: u64,
        /// The generation completed.
        generation: u64,
    },
    /// A host payload.
    Host(Vec<u8>),
}

/// Why a restore refused a state (nothing was started).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The configuration itself is invalid.
    Config(StartError),
    /// The state does not fit a bound of the configuration.
    OverBound {
        /// The configuration field, as a path from `Config`.
        field: &'static str,
        /// What the state needs.
        needed: usize,
        /// What the configuration allows.
        limit: usize,
    },
    /// A record breaks its own rules or repeats a key.
    Invalid {
        /// Which part of the state.
        part: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::OverBound {
                field,
                needed,
                limit,
            } => write!(
                f,
                "the state needs {needed} for `{field}`, configured {limit}"
            ),
            Self::Invalid { part, reason } => write!(f, "invalid {part} in the state: {reason}"),
        }
    }
}

impl std::error::Error for RestoreError {}

impl From<StartError> for RestoreError {
    fn from(e: StartError) -> Self {
        Self::Config(e)
    }
}
