//! Agent states: fire-and-forget or acknowledged writes to the owning shard, snapshot
//! reads from any thread.
//!
//! Bound: at most `Config::agent_capacity` agents per shard; a write that would create
//! one more is refused with [`AgentError::Full`]. An acknowledged write reports it in its
//! ticket; a fire-and-forget write has nobody to report to, so the shard drops it (use
//! [`Agents::update_acked`] where a full shard must be noticed).

use std::sync::Arc;

pub use mabeam_shards::agents::{AgentError, AgentSnapshot, AgentState, AgentStatus};
use mabeam_shards::agents::{AgentShard, RECORD_WORDS};
use mabeam_shards::table::TableReader;

use crate::engine::{Inner, ServiceCtx};
use crate::events::Payload;
use crate::runtime::{Reply, SendWait, TaggedResult, Ticket};
use crate::telemetry::ops::read;

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

/// The shard side: applies one agent command.
pub(crate) fn apply(agents: &mut AgentShard, cmd: AgentCommand, ctx: &mut ServiceCtx<'_>) {
    match cmd {
        AgentCommand::Update { id, state, reply } => {
            let r = agents.update(id, state, ctx.now);
            ctx.answer(reply, r);
        }
        AgentCommand::Remove { id, reply } => {
            let r = agents.remove(id);
            ctx.answer(reply, r);
        }
        AgentCommand::Get { id, reply } => {
            let r = agents.get(id);
            ctx.reply(reply, r);
        }
        AgentCommand::JoinSession { id, session } => {
            // `initiate` checked the agent was published; one removed since is not
            // marked (a mark never creates an agent, `NotFound` is the only refusal) and
            // the session itself goes on.
            let _ = agents.join_session(id, session, ctx.now);
        }
        AgentCommand::LeaveSession { id, session } => {
            agents.leave_session(id, session, ctx.now);
        }
    }
}

/// The shard side, once per batch: publishes each agent written in the batch once, with
/// one `agent.state.updated` event.
pub(crate) fn publish(agents: &mut AgentShard, ctx: &mut ServiceCtx<'_>) {
    let events = &mut *ctx.events;
    let now = ctx.now;
    agents.publish_each(|snapshot| {
        events.service(
            "agent.state.updated",
            || Payload::AgentUpdated(*snapshot),
            Some(snapshot.id),
            now,
        );
    });
}

/// The agents of an engine; get it with [`Engine::agents`](crate::EngineHandle::agents).
#[derive(Clone, Copy)]
pub struct Agents<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Agents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Agents", f)
    }
}

impl<'e> Agents<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    fn shard(&self, id: u64) -> usize {
        self.inner.shard_of(id)
    }

    fn send_update(&self, id: u64, state: AgentState, wait: SendWait) -> Result<(), AgentError> {
        if self.inner.centralized() {
            // The round trip of the GenServer shape; like the sharded form, a
            // fire-and-forget write reports engine failures only.
            let _rule_answer = self.update_acked(id, state).wait()?;
            return Ok(());
        }
        let cmd = AgentCommand::Update {
            id,
            state,
            reply: Reply::Nobody,
        };
        Ok(self.inner.send(self.shard(id), cmd, wait)?)
    }

    /// Writes `state` for agent `id` without waiting for it to be applied (the
    /// original's cast). Waits up to `Config::send_timeout` for mailbox space, then
    /// returns `Engine(Busy)`. Visible to readers after the shard's next batch; call
    /// [`Engine::flush`](crate::EngineHandle::flush) to wait for it.
    pub fn update(&self, id: u64, state: AgentState) -> Result<(), AgentError> {
        self.send_update(id, state, SendWait::Timeout)
    }

    /// Like [`update`](Self::update), but returns `Engine(Busy)` at once if the mailbox
    /// is full.
    pub fn try_update(&self, id: u64, state: AgentState) -> Result<(), AgentError> {
        self.send_update(id, state, SendWait::Try)
    }

    /// Writes `state` and returns a ticket that resolves with the published snapshot.
    pub fn update_acked(
        &self,
        id: u64,
        state: AgentState,
    ) -> Ticket<Result<AgentSnapshot, AgentError>> {
        self.inner
            .call(self.shard(id), |reply| AgentCommand::Update {
                id,
                state,
                reply,
            })
    }

    /// Writes `state`; the result goes to `tx` as a [`TaggedResult`] tagged `tag`. A full
    /// `tx` drops the result (the shard never blocks on a caller's channel).
    pub fn update_to(
        &self,
        id: u64,
        state: AgentState,
        tx: &flume::Sender<TaggedResult<Result<AgentSnapshot, AgentError>>>,
        tag: u64,
    ) -> Result<(), AgentError> {
        let reply = Reply::channel(tx.clone(), tag);
        let cmd = AgentCommand::Update { id, state, reply };
        Ok(self.inner.send(self.shard(id), cmd, SendWait::Timeout)?)
    }

    /// The published state of agent `id`: a snapshot read, no message, no lock, no
    /// allocation.
    #[inline]
    pub fn get(&self, id: u64) -> Result<Option<AgentSnapshot>, AgentError> {
        self.read(id, read::AGENTS_GET, mabeam_shards::agents::lookup, |s| s)
    }

    /// The published status of agent `id`, read alone: [`get`](Self::get) for a caller
    /// that needs only the status, which loads the slot's header and one word of the
    /// record instead of all eleven and copies nothing else out. The same guarantees as
    /// `get` (a status some published snapshot of the agent had during the call).
    ///
    /// ```
    /// use mabeam::agents::{AgentState, AgentStatus};
    /// use mabeam::{Config, Engine};
    ///
    /// let engine = Engine::start(Config::default())?;
    /// let busy = AgentState { status: AgentStatus::Busy, load: 1, tasks_completed: 0, data: [0; 4] };
    /// engine.agents().update_acked(7, busy).wait()??;
    /// assert_eq!(engine.agents().status(7)?, Some(AgentStatus::Busy));
    /// assert_eq!(engine.agents().status(8)?, None);
    /// # engine.shutdown();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn status(&self, id: u64) -> Result<Option<AgentStatus>, AgentError> {
        let status = mabeam_shards::agents::lookup_status;
        self.read(id, read::AGENTS_STATUS, status, |s| s.state.status)
    }

    /// A snapshot read of agent `id`, counted as read `op`: `from_table` on the owning
    /// shard's table, or, in the centralized shape, `from_snapshot` of the shard's answer.
    #[inline]
    fn read<T>(
        &self,
        id: u64,
        op: usize,
        from_table: impl FnOnce(&TableReader<RECORD_WORDS>, u64) -> Option<T>,
        from_snapshot: impl FnOnce(AgentSnapshot) -> T,
    ) -> Result<Option<T>, AgentError> {
        let shard = self.shard(id);
        self.inner.rt.check_readable(shard)?;
        self.inner.read(op);
        if self.inner.centralized() {
            let snapshot = self
                .inner
                .round_trip(|reply| AgentCommand::Get { id, reply })?;
            return Ok(snapshot.map(from_snapshot));
        }
        Ok(from_table(&self.inner.ports[shard].agents, id))
    }

    /// Removes agent `id`; the ticket resolves with its last snapshot or `NotFound`.
    pub fn remove(&self, id: u64) -> Ticket<Result<AgentSnapshot, AgentError>> {
        self.inner
            .call(self.shard(id), |reply| AgentCommand::Remove { id, reply })
    }

    /// Number of published agents, summed over the shards.
    pub fn count(&self) -> Result<usize, AgentError> {
        self.inner.rt.check_all_readable()?;
        self.inner.read(read::AGENTS_COUNT);
        Ok(self.inner.ports.iter().map(|p| p.agents.len()).sum())
    }
}
