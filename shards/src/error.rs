//! The engine's own failures, shared by every service's error type.

use std::fmt;

/// Why the engine could not carry out a call, whatever the service.
///
/// Re-exported by `mabeam` as `mabeam::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ShutDown => f.write_str("the engine has shut down"),
            Self::Busy => f.write_str("the shard's mailbox is full (backpressure)"),
            Self::Timeout => f.write_str("timed out waiting for the result"),
            Self::AlreadyTaken => f.write_str("the ticket's result was already taken"),
            Self::Internal(msg) => write!(f, "internal error in a shard handler: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
