//! The engine's own failures, shared by every service's error type.

use std::fmt;

/// Why the engine could not carry out a call, whatever the service.
///
/// Re-exported by `mabeam` as `mabeam::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The engine has shut down (or is shutting down); nothing more is accepted.
    ShutDown,
    /// The target shard's mailbox stayed full for the whole send timeout (or, for a
    /// `try_` call, was full at once).
    Busy,
    /// A `wait_timeout` ran out before the result arrived; the ticket stays usable.
    Timeout,
    /// The ticket's result was already taken.
    AlreadyTaken,
    /// The handler of this command panicked; the shard dropped the command and goes on.
    Internal(&'static str),
    /// Shard `0`'s thread died (it panicked outside a handler). Calls that need that
    /// shard fail with this from then on; a call it had accepted and not answered gets it
    /// too, applied or not (the shard's state is lost with it).
    ShardDown(usize),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown => f.write_str("the engine has shut down"),
            Self::Busy => f.write_str("the shard's mailbox is full (backpressure)"),
            Self::Timeout => f.write_str("timed out waiting for the result"),
            Self::AlreadyTaken => f.write_str("the ticket's result was already taken"),
            Self::Internal(msg) => write!(f, "internal error in a shard handler: {msg}"),
            Self::ShardDown(shard) => write!(f, "shard {shard} is down (its thread died)"),
        }
    }
}

impl std::error::Error for Error {}
