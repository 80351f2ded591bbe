//! What a shard's host mailbox carries: a service command, a batch of them, or one of
//! the runtime's own messages.

use std::sync::Arc;

use super::export::ExportCtl;
use super::ticket::Reply;

/// One message in a shard's host mailbox.
pub(crate) enum Envelope<C> {
    /// One service command.
    One(C),
    /// Several commands sent as one message by a batching writer; weighs one per command.
    Batch(Vec<C>),
    /// Answered once everything before it in this mailbox is applied, published, and
    /// what it sent to other shards is in their lanes.
    Flush(Reply<()>),
    /// Fault injection for tests.
    Fault(Fault),
    /// Answered at the end of the batch with a copy of the shard's telemetry (not
    /// counted as applied).
    Observe(Reply<Box<crate::telemetry::shard::Observation>>),
    /// An export's freeze marker (see [`export`](super::export)): at the end of its
    /// batch the shard freezes; `frozen` is answered like a flush.
    Export {
        /// The export's control block.
        ctl: Arc<ExportCtl>,
        /// Answered once the shard is frozen and its last forwards are in lanes.
        frozen: Reply<()>,
    },
}

impl<C> Envelope<C> {
    /// The commands this message carries: what it counts for in the mailbox's admission
    /// limits. The same message always weighs the same.
    #[inline]
    pub(crate) fn weight(&self) -> u64 {
        match self {
            Envelope::Batch(cmds) => (cmds.len() as u64).max(1),
            _ => 1,
        }
    }
}

/// Fault injection ([`Testing`](crate::testing::Testing)).
pub(crate) enum Fault {
    /// Say so on `stalled`, then block until `release` disconnects.
    Stall {
        /// Told once the shard is stalled.
        stalled: flume::Sender<()>,
        /// The shard blocks until this disconnects.
        release: flume::Receiver<()>,
    },
    /// A handler that panics: its reply resolves with `Internal`, the shard goes on.
    Panic(Reply<()>),
    /// The shard thread panics outside any handler and dies.
    Kill,
}
