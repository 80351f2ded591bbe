//! # mabeam
//!
//! A thread-per-core shard engine for multi-agent systems: an agent registry, agent
//! state, auctions, market data, pricing, coordination and barriers, without an async
//! runtime.
//!
//! - Each shard is a pinned OS thread that owns a hash-partitioned part of the state in
//!   plain `hashbrown` maps. No locks on the write path.
//! - Writes are messages over the shard's bounded `flume` mailbox, applied in batches;
//!   results come back as [`Ticket`]s or into a channel the caller owns.
//! - Reads never send a message: shards publish fixed-size records behind seqlocks, and
//!   any thread reads them without locking or allocating.
//!
//! ```
//! use mabeam::{Config, Engine};
//! use mabeam::registry::MetadataSpec;
//!
//! let engine = Engine::start(Config { shards: 2, pin_threads: false, ..Config::default() })?;
//! let lease = engine.registry().register("planner", 42, &MetadataSpec::with_capabilities(&["plan"]))?;
//! assert_eq!(engine.registry().lookup("planner")?.unwrap().handle, 42);
//! assert_eq!(engine.registry().find_by_capability(&["plan"])?.len(), 1);
//! drop(lease); // removes the entry
//! engine.flush()?;
//! assert!(engine.registry().lookup("planner")?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

// The layers, bottom up: `runtime` knows no service; each service module holds its
// host-side handle and its shard-side applier; `engine` composes them.
mod runtime;

pub mod agents;
pub mod auctions;
pub mod barriers;
mod batch_writer;
pub mod coordination;
mod economics;
pub mod events;
pub mod market;
pub mod pricing;
pub mod registry;
mod tasks;
#[doc(hidden)]
pub mod testing;

mod engine;

pub use batch_writer::BatchWriter;
pub use economics::EconomicsConfig;
pub use engine::{Config, Engine, EngineHandle, Mode, ShutdownReport, MAX_SHARDS};
pub use mabeam_shards::Error;
pub use runtime::clock::{Clock, ManualClock};
pub use runtime::{Buffered, Completion, ShardReport, StartError, StartReport, Ticket};
pub use tasks::{TaskError, TaskStats, Tasks};
