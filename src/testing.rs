//! Fault injection for tests of backpressure, handler failures and dead shards. Not part
//! of the supported API: hidden from the docs, stable only for mabeam's own tests.

use std::sync::Arc;

use crate::engine::Inner;
use crate::events::EventCommand;
use crate::runtime::{Fault, Ticket};
use crate::Error;

/// Fault injection on an engine; see [`EngineHandle::testing`](crate::EngineHandle::testing).
pub struct Testing<'e> {
    pub(crate) inner: &'e Arc<Inner>,
}

/// Holds a shard stalled until dropped.
#[derive(Debug)]
pub struct Stall {
    _release: flume::Sender<()>,
}

impl std::fmt::Debug for Testing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Testing", f)
    }
}

impl Testing<'_> {
    /// Makes shard `shard` stop draining its mailbox until the returned guard is
    /// dropped; returns once the shard is stalled (everything sent before is applied).
    pub fn stall(&self, shard: usize) -> Result<Stall, Error> {
        let (release, wait) = flume::bounded(1);
        let (stalled_tx, stalled) = flume::bounded(1);
        self.inner.rt.fault(
            shard,
            Fault::Stall {
                stalled: stalled_tx,
                release: wait,
            },
        )?;
        stalled.recv().map_err(|_| Error::ShutDown)?;
        Ok(Stall { _release: release })
    }

    /// Sends a command whose handler panics; its ticket resolves with
    /// `Error::Internal` and the shard goes on.
    pub fn panic_in_handler(&self, shard: usize) -> Ticket<()> {
        let (ticket, reply) = self.inner.rt.ticket();
        let _ = self.inner.rt.fault(shard, Fault::Panic(reply));
        ticket
    }

    /// Makes shard `shard`'s thread panic outside any handler, so that it dies. Returns
    /// once the message is queued; the shard dies when it reaches it.
    pub fn kill_shard(&self, shard: usize) -> Result<(), Error> {
        self.inner.rt.fault(shard, Fault::Kill)
    }

    /// The subscriptions shard `shard` holds in its index (a dropped subscription leaves
    /// it once the shard has applied its unsubscribe: flush first).
    pub fn subscribers(&self, shard: usize) -> Result<usize, Error> {
        self.inner
            .call(shard, |reply| EventCommand::Subscribers { reply })
            .wait()
    }

    /// The barriers the engine holds.
    pub fn barriers(&self) -> usize {
        self.inner.barriers.len()
    }
}
