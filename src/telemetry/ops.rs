//! The operations telemetry counts: every command a shard applies is one of [`OPS`]
//! (its `(service, op)` labels), and every snapshot read one of [`READS`].

use crate::agents::AgentCommand;
use crate::coordination::CoordinationCommand;
use crate::economics::EconomicsCommand;
use crate::engine::Command;
use crate::events::EventCommand;
use crate::registry::RegistryCommand;

/// `(service, op)` of each shard operation, by index.
pub(crate) const OPS: [(&str, &str); 27] = [
    ("registry", "register"),
    ("registry", "update"),
    ("registry", "release"),
    ("registry", "lookup"),
    ("registry", "scan"),
    ("agents", "update"),
    ("agents", "remove"),
    ("agents", "get"),
    ("agents", "join_session"),
    ("agents", "leave_session"),
    ("auctions", "create"),
    ("auctions", "bid"),
    ("auctions", "close"),
    ("auctions", "cancel"),
    ("auctions", "status"),
    ("auctions", "list_active"),
    ("market", "update"),
    ("market", "state"),
    ("pricing", "calculate"),
    ("pricing", "cached"),
    ("coordination", "initiate"),
    ("coordination", "vote"),
    ("coordination", "status"),
    ("events", "publish"),
    ("events", "subscribe"),
    ("events", "other"),
    ("registry", "claim"),
];

/// Number of shard operations.
pub(crate) const OP_COUNT: usize = OPS.len();

/// The index in [`OPS`] of `(service, op)`, if it is one.
#[cfg(test)]
pub(crate) fn op_index(service: &str, op: &str) -> Option<usize> {
    OPS.iter().position(|&(s, o)| s == service && o == op)
}

/// `pricing/calculate` in [`OPS`]: what a shard's `PricingPut` is, and the operation
/// the caller's round trip of `Pricer::calculate` is timed as.
pub(crate) const PRICING_CALCULATE: usize = 18;

/// The operation a command is.
pub(crate) fn op_of(cmd: &Command) -> usize {
    match cmd {
        Command::Registry(c) => match **c {
            RegistryCommand::Register { .. } => 0,
            RegistryCommand::UpdateMetadata { .. } => 1,
            RegistryCommand::Unregister { .. } => 2,
            RegistryCommand::Lookup { .. } => 3,
            RegistryCommand::Scan { .. } => 4,
            RegistryCommand::Claim { .. } => 26,
        },
        Command::Agent(c) => match c {
            AgentCommand::Update { .. } => 5,
            AgentCommand::Remove { .. } => 6,
            AgentCommand::Get { .. } => 7,
            AgentCommand::JoinSession { .. } => 8,
            AgentCommand::LeaveSession { .. } => 9,
        },
        Command::Economics(c) => match c {
            EconomicsCommand::Create { .. } => 10,
            EconomicsCommand::Bid { .. } => 11,
            EconomicsCommand::Close { .. } => 12,
            EconomicsCommand::Cancel { .. } => 13,
            EconomicsCommand::Status { .. } => 14,
            EconomicsCommand::ListActive { .. } => 15,
            EconomicsCommand::MarketUpdate { .. } => 16,
            EconomicsCommand::MarketState { .. } => 17,
            EconomicsCommand::PricingPut { .. } => PRICING_CALCULATE,
            EconomicsCommand::PricingGet { .. } => 19,
        },
        Command::Coordination(c) => match c {
            CoordinationCommand::Initiate { .. } => 20,
            CoordinationCommand::Respond { .. } => 21,
            CoordinationCommand::Status { .. } => 22,
        },
        Command::Events(c) => match **c {
            EventCommand::Publish { .. } | EventCommand::Raise { .. } => 23,
            EventCommand::Subscribe { .. } => 24,
            _ => 25,
        },
    }
}

/// `(service, op)` of each snapshot read, by index.
pub(crate) const READS: [(&str, &str); 13] = [
    ("registry", "lookup"),
    ("registry", "entries"),
    ("registry", "count"),
    ("agents", "get"),
    ("agents", "count"),
    ("auctions", "status"),
    ("auctions", "list_active"),
    ("market", "state"),
    ("pricing", "cached"),
    ("coordination", "status"),
    ("registry", "find_by_capability"),
    ("registry", "query"),
    ("agents", "status"),
];

/// Number of snapshot reads.
pub(crate) const READ_COUNT: usize = READS.len();

/// Snapshot read indices, for the services' read paths.
pub(crate) mod read {
    pub(crate) const REGISTRY_LOOKUP: usize = 0;
    pub(crate) const REGISTRY_ENTRIES: usize = 1;
    pub(crate) const REGISTRY_COUNT: usize = 2;
    pub(crate) const AGENTS_GET: usize = 3;
    pub(crate) const AGENTS_COUNT: usize = 4;
    pub(crate) const AUCTIONS_STATUS: usize = 5;
    pub(crate) const AUCTIONS_LIST: usize = 6;
    pub(crate) const MARKET_STATE: usize = 7;
    pub(crate) const PRICING_CACHED: usize = 8;
    pub(crate) const COORDINATION_STATUS: usize = 9;
    pub(crate) const REGISTRY_FIND: usize = 10;
    pub(crate) const REGISTRY_QUERY: usize = 11;
    pub(crate) const AGENTS_STATUS: usize = 12;
}

/// Engine error kinds counted per operation when a call is refused before or after it
/// reaches a shard.
/// `Error` is `#[non_exhaustive]`: a kind added later counts as `Other` until it is
/// named here.
pub(crate) const ENGINE_KINDS: [&str; 7] = [
    "Busy",
    "ShutDown",
    "ShardDown",
    "Internal",
    "Timeout",
    "AlreadyTaken",
    "Other",
];

/// The index in [`ENGINE_KINDS`] of `e`.
pub(crate) fn engine_kind(e: &crate::Error) -> usize {
    use crate::Error;
    match e {
        Error::Busy => 0,
        Error::ShutDown => 1,
        Error::ShardDown(_) => 2,
        Error::Internal(_) => 3,
        Error::Timeout => 4,
        Error::AlreadyTaken => 5,
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pricing_calculate_is_its_label() {
        assert_eq!(OPS[PRICING_CALCULATE], ("pricing", "calculate"));
    }

    #[test]
    fn labels_are_unique() {
        for (i, a) in OPS.iter().enumerate() {
            assert_eq!(op_index(a.0, a.1), Some(i));
        }
        for (i, a) in READS.iter().enumerate() {
            assert_eq!(READS.iter().position(|b| b == a), Some(i));
        }
    }
}
