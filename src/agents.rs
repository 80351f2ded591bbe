//! Agent states: fire-and-forget or acknowledged writes to the owning shard, snapshot
//! reads from any thread.
//!
//! Bound: at most `Config::agent_capacity` agents per shard; a write that would create
//! one more is refused with [`AgentError::Full`]. An acknowledged write reports it in its
//! ticket; a fire-and-forget write has nobody to report to, so the shard drops it (use
//! [`Agents::update_acked`] where a full shard must be noticed).

use std::sync::Arc;

pub use mabeam_shards::agents::{AgentError, AgentSnapshot, AgentState, AgentStatus};

use crate::command::{AgentCommand, Command};
use crate::engine::{Inner, SendMode};
use crate::ticket::{Completion, Reply, Ticket};

/// The agents of an engine; get it with [`Engine::agents`](crate::Engine::agents).
#[derive(Clone, Copy)]
pub struct Agents<'e> {
    inner: &'e Arc<Inner>,
}

impl<'e> Agents<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    fn shard(&self, id: u64) -> usize {
        self.inner.shard_of(id)
    }

    fn send_update(&self, id: u64, state: AgentState, mode: SendMode) -> Result<(), AgentError> {
        if self.inner.centralized() {
            // The round trip of the GenServer shape; like the sharded form, a
            // fire-and-forget write reports engine failures only.
            let _rule_answer = self.update_acked(id, state).wait()?;
            return Ok(());
        }
        let cmd = Command::Agent(AgentCommand::Update {
            id,
            state,
            reply: Reply::Nobody,
        });
        Ok(self.inner.send(self.shard(id), cmd, mode)?)
    }

    /// Writes `state` for agent `id` without waiting for it to be applied (the
    /// original's cast). Waits up to `Config::send_timeout` for mailbox space, then
    /// returns `Engine(Busy)`. Visible to readers after the shard's next batch; call
    /// [`Engine::flush`](crate::Engine::flush) to wait for it.
    pub fn update(&self, id: u64, state: AgentState) -> Result<(), AgentError> {
        self.send_update(id, state, SendMode::Timeout)
    }

    /// Like [`update`](Self::update), but returns `Engine(Busy)` at once if the mailbox
    /// is full.
    pub fn try_update(&self, id: u64, state: AgentState) -> Result<(), AgentError> {
        self.send_update(id, state, SendMode::Try)
    }

    /// Writes `state` and returns a ticket that resolves with the published snapshot.
    pub fn update_acked(
        &self,
        id: u64,
        state: AgentState,
    ) -> Ticket<Result<AgentSnapshot, AgentError>> {
        self.inner.call(self.shard(id), SendMode::Timeout, |reply| {
            Command::Agent(AgentCommand::Update { id, state, reply })
        })
    }

    /// Writes `state`; the result goes to `tx` as a [`Completion`] tagged `tag`. A full
    /// `tx` drops the result (the shard never blocks on a caller's channel).
    pub fn update_to(
        &self,
        id: u64,
        state: AgentState,
        tx: &flume::Sender<Completion<Result<AgentSnapshot, AgentError>>>,
        tag: u64,
    ) -> Result<(), AgentError> {
        let reply = Reply::channel(tx.clone(), tag);
        let cmd = Command::Agent(AgentCommand::Update { id, state, reply });
        Ok(self.inner.send(self.shard(id), cmd, SendMode::Timeout)?)
    }

    /// The published state of agent `id`: a snapshot read, no message, no lock, no
    /// allocation.
    #[inline]
    pub fn get(&self, id: u64) -> Result<Option<AgentSnapshot>, AgentError> {
        self.inner.check_open()?;
        if self.inner.centralized() {
            return Ok(self
                .inner
                .round_trip(|reply| Command::Agent(AgentCommand::Get { id, reply }))?);
        }
        Ok(mabeam_shards::agents::lookup(
            &self.inner.ports[self.shard(id)].agents,
            id,
        ))
    }

    /// Removes agent `id`; the ticket resolves with its last snapshot or `NotFound`.
    pub fn remove(&self, id: u64) -> Ticket<Result<AgentSnapshot, AgentError>> {
        self.inner.call(self.shard(id), SendMode::Timeout, |reply| {
            Command::Agent(AgentCommand::Remove { id, reply })
        })
    }

    /// Number of published agents, summed over the shards.
    pub fn count(&self) -> Result<usize, AgentError> {
        self.inner.check_open()?;
        Ok(self.inner.ports.iter().map(|p| p.agents.len()).sum())
    }
}
