//! # mabeam-shards
//!
//! What one mabeam shard is, with no threads of its own:
//!
//! - the lock-free primitives the engine publishes and hands results through
//!   ([`seqlock`], [`table`], [`oneshot`], [`barrier`], [`interner`]) and those its
//!   runtime moves messages and stops with ([`mailbox`], [`lane`], [`doorbell`],
//!   [`termination`]), written against the [`sync`] shim so that `loom-tests/`
//!   model-checks the very same code under `--cfg mabeam_loom`;
//! - the per-shard state machines ([`registry`], [`agents`], [`auction`], [`market`],
//!   [`pricing`], [`coordination`], [`topic`]), plain deterministic code that
//!   takes time as an argument.
//!
//! Nothing here spawns a thread, reads a clock or sleeps, so every rule is tested
//! deterministically.
#![warn(missing_docs, missing_debug_implementations)]

pub mod sync;

pub mod error;
pub use error::Error;

pub mod barrier;
pub mod doorbell;
pub mod hash;
pub mod interner;
pub mod lane;
pub mod mailbox;
pub mod oneshot;
pub mod seqlock;
pub mod table;
pub mod termination;

pub mod agents;
pub mod auction;
pub mod coordination;
pub mod market;
pub mod pricing;
pub mod registry;
pub mod topic;
