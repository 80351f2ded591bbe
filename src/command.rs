//! The messages a shard's mailbox carries.

use mabeam_shards::agents::{AgentError, AgentSnapshot, AgentState};
use mabeam_shards::registry::{Entry, Metadata, Name, RegistryError};

use crate::ticket::Reply;

/// One message to a shard.
pub(crate) enum Command {
    /// Several commands sent as one message by a [`BatchWriter`](crate::BatchWriter).
    Batch(Vec<Command>),
    /// Answered once everything before it in this mailbox is applied and published.
    Flush(Reply<()>),
    /// Apply everything already queued, then stop.
    Shutdown,
    /// Fault injection ([`Testing::stall`](crate::testing::Testing::stall)): say so on
    /// `stalled`, then block until `release` disconnects.
    Stall {
        stalled: flume::Sender<()>,
        release: flume::Receiver<()>,
    },
    /// Fault injection: a handler that panics.
    Panic(Reply<()>),
    /// A registry command (boxed: registrations are rare and their entries large).
    Registry(Box<RegistryCommand>),
    /// An agent command.
    Agent(AgentCommand),
    /// An auction, market or pricing-cache command.
    Economics(crate::economics::EconomicsCommand),
    /// A coordination-session command.
    Coordination(crate::coordination::CoordinationCommand),
    /// An events command (subscriptions, host events, history), boxed: it is large and
    /// off the hot path.
    Events(Box<crate::events::EventCommand>),
}

impl Command {
    /// A registry command.
    pub(crate) fn registry(c: RegistryCommand) -> Self {
        Command::Registry(Box::new(c))
    }

    /// An events command.
    pub(crate) fn events(c: crate::events::EventCommand) -> Self {
        Command::Events(Box::new(c))
    }
}

/// Registry commands; `lease` is the token of the [`Lease`](crate::Lease) that asks.
pub(crate) enum RegistryCommand {
    Register {
        entry: Entry,
        lease: u64,
        reply: Reply<Result<(), RegistryError>>,
    },
    UpdateMetadata {
        name: Name,
        lease: u64,
        metadata: Metadata,
        reply: Reply<Result<Entry, RegistryError>>,
    },
    Unregister {
        name: Name,
        lease: u64,
        reply: Reply<Result<Entry, RegistryError>>,
    },
    /// Centralized mode's read: a round trip instead of a snapshot read.
    Lookup {
        name: Name,
        reply: Reply<Option<Entry>>,
    },
    /// Centralized mode's scan: every entry of the shard.
    Scan { reply: Reply<Vec<Entry>> },
}

/// Agent commands.
pub(crate) enum AgentCommand {
    Update {
        id: u64,
        state: AgentState,
        reply: Reply<Result<AgentSnapshot, AgentError>>,
    },
    Remove {
        id: u64,
        reply: Reply<Result<AgentSnapshot, AgentError>>,
    },
    /// Centralized mode's read.
    Get {
        id: u64,
        reply: Reply<Option<AgentSnapshot>>,
    },
    /// From a coordination session's shard: the agent takes part in `session`.
    JoinSession { id: u64, session: u64 },
    /// From a coordination session's shard: `session` has ended.
    LeaveSession { id: u64, session: u64 },
}

#[cfg(test)]
mod tests {
    /// Every message is moved through the mailbox and the batch buffer: keep the hot
    /// variants small (large, rare commands are boxed).
    #[test]
    fn commands_stay_small() {
        assert!(std::mem::size_of::<super::Command>() <= 112);
        assert!(std::mem::size_of::<super::AgentCommand>() <= 88);
    }
}
