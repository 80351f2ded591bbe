//! Fault injection for tests of backpressure and handler failures. Not part of the
//! supported API: hidden from the docs, stable only for mabeam's own tests.

use crate::command::Command;
use crate::engine::{Inner, SendMode};
use crate::ticket::Ticket;
use crate::Error;
use std::sync::Arc;

/// Fault injection on an engine; see [`Engine::testing`](crate::Engine::testing).
pub struct Testing<'e> {
    pub(crate) inner: &'e Arc<Inner>,
}

/// Holds a shard stalled until dropped.
#[derive(Debug)]
pub struct Stall {
    _release: flume::Sender<()>,
}

impl Testing<'_> {
    /// Makes shard `shard` stop draining its mailbox until the returned guard is
    /// dropped; returns once the shard is stalled (its mailbox is then empty of
    /// everything sent before).
    pub fn stall(&self, shard: usize) -> Result<Stall, Error> {
        let (release, wait) = flume::bounded(1);
        let (stalled_tx, stalled) = flume::bounded(1);
        self.inner.send(
            shard,
            Command::Stall {
                stalled: stalled_tx,
                release: wait,
            },
            SendMode::Timeout,
        )?;
        stalled.recv().map_err(|_| Error::ShutDown)?;
        Ok(Stall { _release: release })
    }

    /// Sends a command whose handler panics; its ticket resolves with
    /// `Error::Internal` and the shard goes on.
    pub fn panic_in_handler(&self, shard: usize) -> Ticket<()> {
        self.inner.call(shard, SendMode::Timeout, Command::Panic)
    }
}
