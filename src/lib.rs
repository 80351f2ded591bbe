//! # mabeam
//!
//! A thread-per-core shard engine for multi-agent systems: an agent registry, agent
//! state, auctions, market data, pricing, coordination and barriers, without an async
//! runtime.
//!
//! - Each shard is a pinned OS thread that owns a hash-partitioned part of the state in
//!   plain `hashbrown` maps. No locks on the write path.
//! - Writes are messages over the shard's bounded mailbox, applied in batches; results
//!   come back as [`Ticket`]s or into a channel the caller owns. Shards send each other
//!   messages on lanes of their own (one per ordered pair), which hosts cannot fill.
//! - Reads never send a message: shards publish fixed-size records behind seqlocks, and
//!   any thread reads them without locking or allocating.
//! - [`Engine`] owns the threads; [`EngineHandle`] (`Clone + Send + Sync + 'static`) is
//!   what other threads hold.
//!
//! # Backpressure and latency
//!
//! Each shard admits at most [`Config::mailbox_capacity`] commands not yet applied, and
//! admits a fire-and-forget write only while the work queued is below
//! [`Config::write_delay`] (50 µs) at the shard's measured cost per command, so an
//! acknowledged call never waits behind more than about that much fire-and-forget
//! work. A write that finds no room waits up to [`Config::send_timeout`]
//! and then returns [`Error::Busy`]; a `try_` form returns it at once.
//!
//! # Errors: one path per call
//!
//! Engine failures ([`Error::Busy`], [`Error::ShutDown`], [`Error::ShardDown`],
//! [`Error::Internal`], [`Error::Timeout`]) have one place in each call's type:
//! - a ticketed call (`Ticket<Result<T, ServiceError>>`) reports them as the **outer**
//!   `Err` of [`Ticket::wait`]; the inner `Result` carries only the service's own
//!   answers (a refused bid, an unknown id), never `ServiceError::Engine`;
//! - a call that answers directly (`Result<T, ServiceError>`) wraps them as
//!   `ServiceError::Engine(e)` (every service error converts `From<Error>`, so `?`
//!   works on both levels).
//!
//! # Shutdown and faults
//!
//! [`Engine::shutdown`] applies every write whose call returned `Ok`, and none that
//! returned [`Error::ShutDown`]; every ticket resolves. A shard thread that dies turns
//! into [`Error::ShardDown`] for every call that needs it. See the guarantees on
//! [`Engine::shutdown`] and [`BatchWriter`].
//!
//! # Sizing
//!
//! `Config::default()` starts one pinned shard per core, less [`Config::host_cores`]
//! (1) for the host's own threads, at least one. A shard sharing a core with a busy host
//! thread answers only when the scheduler lets it; on a 2-core machine one shard is
//! faster than two for a synchronous host and for the load tool alike (measured in
//! `BENCHMARKS.md`).
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
pub mod state;
mod tasks;
#[doc(hidden)]
pub mod testing;

mod engine;

/// The README's example, compiled and run as a doctest so that it stays a working
/// program.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;

pub use batch_writer::BatchWriter;
pub use economics::EconomicsConfig;
pub use engine::{Config, Engine, EngineHandle, Mode, ShutdownReport, MAX_SHARDS};
pub use mabeam_shards::Error;
pub use runtime::clock::{Clock, ManualClock};
pub use runtime::{Buffered, Completion, ShardReport, StartError, StartReport, Ticket};
pub use tasks::{TaskError, TaskStats, Tasks};
