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
//!   answers (a refused bid, an unknown id), never `ServiceError::Engine` — hence
//!   `wait()??`, explained with an example in
//!   [`Ticket`'s docs](Ticket#two-levels-of-errors-wait);
//! - a call that answers directly (`Result<T, ServiceError>`) wraps them as
//!   `ServiceError::Engine(e)` (every service error converts `From<Error>`, so `?`
//!   works on both levels).
//!
//! Every error type implements `Display` and `std::error::Error`, and every error enum
//! is `#[non_exhaustive]`: a match on one needs a wildcard arm, and a new variant is not
//! a breaking change.
//!
//! # Shutdown and faults
//!
//! [`Engine::shutdown`] applies every write whose call returned `Ok`, and none that
//! returned [`Error::ShutDown`]; every ticket resolves. A shard thread that dies turns
//! into [`Error::ShardDown`] for every call that needs it. See the guarantees on
//! [`Engine::shutdown`] and [`BatchWriter`].
//!
//! # Observing it
//!
//! [`EngineHandle::telemetry`] gives counters and latency histograms of the shards, the
//! operations and the callers as a [`TelemetrySnapshot`](telemetry::TelemetrySnapshot),
//! with [`to_prometheus`](telemetry::TelemetrySnapshot::to_prometheus) for a scraper
//! (`Config::telemetry`, on by default; the `metrics` feature reports the same figures
//! through the `metrics` facade). [`EngineHandle::resources`] shows threads, pinning,
//! resident memory, mailboxes, table sizes, subscriptions and retained events.
//!
//! # Sizing
//!
//! `Config::default()` starts one pinned shard per core, less [`Config::host_cores`]
//! (1) for the host's own threads, at least one. A shard sharing a core with a busy host
//! thread answers only when the scheduler lets it; on a 2-core machine one shard is
//! faster than two for a synchronous host and for the load tool alike (measured in
//! `BENCHMARKS.md`). The README's sizing guide covers 4 and many cores, containers with a
//! CPU quota, pinning and the priority of busy host threads.
//!
//! [`Config`] is `#[non_exhaustive]`: start from `Config::default()` (or
//! `Config::centralized()`) and change it with its `with_*` setters, as below, or by
//! assigning fields of a mutable value.
//!
//! # Conventions
//!
//! Every public type implements `Debug`, readably: service handles print the engine's
//! shape, an [`auctions::AuctionId`] its shard and sequence (`AuctionId(shard 1, #7)`),
//! and a [`registry::CapabilitySet`] its capability ids (`CapabilitySet{0, 3}`: the
//! names live in the engine, and [`registry::Registry::capability_names`] gives them). Old names kept as deprecated
//! aliases: `Completion` (now [`TaggedResult`]) and `pricing::PricingService` (now
//! [`pricing::Pricer`]).
//!
//! ```
//! use mabeam::{Config, Engine};
//! use mabeam::registry::MetadataSpec;
//!
//! let engine = Engine::start(Config::default().with_shards(2).with_pin_threads(false))?;
//! let lease = engine.registry().register("planner", 42, &MetadataSpec::with_capabilities(&["plan"]))?;
//! assert_eq!(engine.registry().lookup("planner")?.unwrap().handle, 42);
//! assert_eq!(engine.registry().find_by_capability(&["plan"])?.len(), 1);
//! drop(lease); // removes the entry
//! engine.flush()?;
//! assert!(engine.registry().lookup("planner")?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs, missing_debug_implementations)]
// Every example in the docs, the README's included, compiles without a warning.
#![doc(test(attr(deny(warnings))))]

/// Builder-style setters `with_field(value) -> Self` for configuration structs, which are
/// `#[non_exhaustive]` (no struct literal outside the crate, so that adding a field is
/// not a breaking change): `Config::default().with_shards(2)`.
macro_rules! setters {
    ($ty:ident { $($with:ident => $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $with(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

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
pub mod resources;
pub mod state;
mod tasks;
pub mod telemetry;
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
pub use engine::{Config, Engine, EngineHandle, Mode, Reserve, ShutdownReport, MAX_SHARDS};
pub use mabeam_shards::Error;
pub use runtime::clock::{Clock, ManualClock};
pub use runtime::{Buffered, ShardReport, StartError, StartReport, TaggedResult, Ticket};
pub use tasks::{TaskError, TaskStats, Tasks};

/// The former name of [`TaggedResult`], which clashed with the unrelated
/// [`coordination::Completion`].
#[deprecated(note = "renamed to `TaggedResult` (`coordination::Completion` is unrelated)")]
pub type Completion<T> = TaggedResult<T>;
