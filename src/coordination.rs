//! Coordination sessions: all-acknowledge, majority, unanimous and threshold votes
//! among agents, each with a deadline — the original's event-driven ProtocolManager.
//!
//! [`Coordination::initiate`] validates on the calling thread and returns the session
//! id at once; the session then lives on one shard (the id carries it). That shard
//! marks each participant's agent state as coordinating by messages to the agents' own
//! shards, collects acknowledgements and votes from host code, and completes when the
//! protocol decides, when it can no longer decide, or when the deadline passes. The
//! completion is published as `coordination.completed` and in the session's status
//! snapshot, and each participant's agent goes back to the status it had before (or was
//! written during the session) once its last open session ends; an agent in overlapping
//! sessions stays coordinating until all of them end.
//!
//! # Participants must be registered agents
//!
//! [`Coordination::initiate`] checks each participant on the calling thread, from the
//! agents' published snapshots (no message, no shard waits on another), and refuses an
//! unknown one with [`CoordinationError::UnknownAgent`], creating nothing. "Known" means
//! published when `initiate` reads it: an agent written but not yet applied is unknown
//! (call [`Engine::flush`](crate::EngineHandle::flush) after registering). Race with a
//! concurrent removal: an agent removed after the check is still a participant (its votes
//! count), but the mark that reaches its shard finds no agent and creates none, so it is
//! simply not marked; an agent removed and written again while a session is open is not
//! marked by that session, and the end of that session may end its marking by another
//! one early (only a count of sessions is kept per agent).
//!
//! Bounds: at most `Config::coordination.max_open` sessions open engine-wide
//! (`TooManySessions` beyond), and `Config::coordination.retained` ended sessions kept
//! per shard for status reads (oldest evicted first).

mod state;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hashbrown::HashMap;
use mabeam_shards::coordination::SESSION_STATUS_WORDS;
pub use mabeam_shards::coordination::{
    Completion, CoordinationError, Protocol, Session, SessionState, SessionStatus, MAX_PARTICIPANTS,
};
use mabeam_shards::table::{snapshot_table, TableReader, TableWriter};

use crate::agents::{AgentCommand, AgentError, Agents};
use crate::engine::{Inner, ServiceCtx};
use crate::events::Payload;
use crate::runtime::{shard_for, Reply, SendWait, Ticket};
use crate::Error;

/// Bits of a session id that hold the engine-wide sequence.
const SESSION_SEQ_BITS: u32 = 48;

/// Bounds of coordination (`#[non_exhaustive]`: start from
/// [`CoordinationConfig::default()`] and use the `with_*` setters or assign fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoordinationConfig {
    /// Most sessions open at once, engine-wide.
    pub max_open: usize,
    /// Ended sessions kept per shard for status reads.
    pub retained: usize,
}

setters!(CoordinationConfig {
    with_max_open => max_open: usize,
    with_retained => retained: usize,
});

impl Default for CoordinationConfig {
    fn default() -> Self {
        Self {
            max_open: 65_536,
            retained: 4096,
        }
    }
}

/// Engine-wide coordination state: id sequence and the open-session count.
pub(crate) struct CoordinationShared {
    next: AtomicU64,
    open: Arc<AtomicUsize>,
}

impl CoordinationShared {
    pub(crate) fn new() -> Self {
        Self {
            next: AtomicU64::new(0),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Coordination commands.
pub(crate) enum CoordinationCommand {
    Initiate {
        session: Box<Session>,
    },
    Respond {
        id: u64,
        agent: u64,
        /// `None` acknowledges, `Some(choice)` votes.
        choice: Option<u32>,
        reply: Reply<Result<Option<Completion>, CoordinationError>>,
    },
    /// Centralized mode's status read.
    Status {
        id: u64,
        reply: Reply<Option<SessionStatus>>,
    },
}

/// One shard's sessions.
///
/// Invariants: the table holds the status of every session in `sessions`; `deadlines`
/// has an entry for every collecting session (plus stale ones, skipped); `ended` lists
/// the ended sessions still kept, oldest first, at most `retained`.
pub(crate) struct CoordinationShard {
    sessions: HashMap<u64, Session>,
    deadlines: BinaryHeap<Reverse<(u64, u64)>>,
    ended: VecDeque<u64>,
    retained: usize,
    table: TableWriter<SESSION_STATUS_WORDS>,
    open: Arc<AtomicUsize>,
}

impl CoordinationShard {
    pub(crate) fn new(
        config: &CoordinationConfig,
        shared: &CoordinationShared,
    ) -> (Self, TableReader<SESSION_STATUS_WORDS>) {
        let (table, reader) = snapshot_table(64);
        let shard = Self {
            sessions: HashMap::new(),
            deadlines: BinaryHeap::new(),
            ended: VecDeque::new(),
            retained: config.retained,
            table,
            open: shared.open.clone(),
        };
        (shard, reader)
    }

    /// The earliest session deadline on this shard.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse((d, _))| *d)
    }

    pub(crate) fn apply(&mut self, cmd: CoordinationCommand, ctx: &mut ServiceCtx<'_>) {
        match cmd {
            CoordinationCommand::Initiate { session } => {
                let id = session.id();
                for &agent in session.participants() {
                    let cmd = AgentCommand::JoinSession {
                        id: agent,
                        session: id,
                    };
                    ctx.forward(shard_for(agent, ctx.shards()), cmd);
                }
                let participants = session.participants().len() as u32;
                self.table.insert(id, session.status().to_words());
                self.deadlines.push(Reverse((session.deadline(), id)));
                self.sessions.insert(id, *session);
                ctx.events.service(
                    "coordination.initiated",
                    || Payload::CoordinationInitiated {
                        session: id,
                        participants,
                    },
                    Some(id),
                    ctx.now,
                );
            }
            CoordinationCommand::Respond {
                id,
                agent,
                choice,
                reply,
            } => {
                let r = match self.sessions.get_mut(&id) {
                    None => Err(CoordinationError::UnknownSession { id }),
                    Some(session) => {
                        // A response at or after the deadline expires the session (before
                        // the sweep does) and is refused as late. Completing may evict the
                        // session (`retained = 0`), so the answer is taken first.
                        let deadline = session.deadline();
                        if let Some(done) = session.expire_if_due(ctx.now) {
                            self.complete(id, done, ctx);
                            ctx.answer(
                                reply,
                                Err(CoordinationError::DeadlinePassed {
                                    deadline,
                                    now: ctx.now,
                                }),
                            );
                            return;
                        }
                        let r = match choice {
                            None => session.acknowledge(agent, ctx.now),
                            Some(c) => session.vote(agent, c, ctx.now),
                        };
                        if r.is_ok() {
                            self.table.insert(id, session.status().to_words());
                        }
                        if let Ok(Some(done)) = &r {
                            self.complete(id, done.clone(), ctx);
                        }
                        r
                    }
                };
                ctx.answer(reply, r);
            }
            CoordinationCommand::Status { id, reply } => {
                ctx.reply(reply, self.sessions.get(&id).map(Session::status));
            }
        }
    }

    /// Expires the sessions whose deadline has passed.
    pub(crate) fn advance(&mut self, ctx: &mut ServiceCtx<'_>) {
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > ctx.now {
                break;
            }
            self.deadlines.pop();
            if let Some(done) = self
                .sessions
                .get_mut(&id)
                .and_then(|s| s.expire_if_due(ctx.now))
            {
                self.complete(id, done, ctx);
            }
        }
    }

    /// Publishes a completion, frees the participants, and applies retention.
    fn complete(&mut self, id: u64, done: Completion, ctx: &mut ServiceCtx<'_>) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(session) = self.sessions.get(&id) {
            self.table.insert(id, session.status().to_words());
            for &agent in session.participants() {
                let cmd = AgentCommand::LeaveSession {
                    id: agent,
                    session: id,
                };
                ctx.forward(shard_for(agent, ctx.shards()), cmd);
            }
        }
        ctx.events.service(
            "coordination.completed",
            || Payload::CoordinationCompleted(done),
            Some(id),
            ctx.now,
        );
        self.ended.push_back(id);
        // Sessions that ended early leave stale deadline entries; keep the heap bounded
        // by the sessions held.
        if self.deadlines.len() > 2 * self.sessions.len() + 64 {
            let sessions = &self.sessions;
            self.deadlines.retain(|Reverse((_, sid))| {
                sessions
                    .get(sid)
                    .is_some_and(|s| s.status().state == SessionState::Collecting)
            });
        }
        while self.ended.len() > self.retained {
            if let Some(old) = self.ended.pop_front() {
                self.sessions.remove(&old);
                self.table.remove(old);
            }
        }
    }
}

/// Coordination of an engine; get it with
/// [`Engine::coordination`](crate::EngineHandle::coordination).
#[derive(Clone, Copy)]
pub struct Coordination<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Coordination<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Coordination", f)
    }
}

impl<'e> Coordination<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The shard of session `id`: its prefix, taken modulo the shard count when the
    /// session was restored from an engine with more shards (see [`crate::state`]); `None`
    /// for a prefix that cannot be one of this engine's.
    fn shard(&self, id: u64) -> Option<usize> {
        let prefix = id >> SESSION_SEQ_BITS;
        (prefix < self.inner.id_prefixes)
            .then(|| crate::runtime::shard_for_prefix(prefix, self.inner.ports.len()))
    }

    /// Starts a session among `agents` that must end by `deadline` (engine clock
    /// nanoseconds). Validates here and returns the id at once; the session starts on
    /// its shard asynchronously (a response sent after this returns is queued behind the
    /// start, since both go to the same shard). Every participant must be a published
    /// agent, else `UnknownAgent` naming the first one that is not, and nothing is
    /// created (see the [module documentation](self) for the race with a removal).
    pub fn initiate(
        &self,
        agents: &[u64],
        protocol: Protocol,
        deadline: u64,
    ) -> Result<u64, CoordinationError> {
        self.inner.check_open()?;
        let shared = &self.inner.coordination;
        let max = self.inner.config.coordination.max_open;
        if shared.open.fetch_add(1, Ordering::Relaxed) >= max {
            shared.open.fetch_sub(1, Ordering::Relaxed);
            return Err(CoordinationError::TooManySessions { limit: max });
        }
        let seq = shared.next.fetch_add(1, Ordering::Relaxed) & ((1 << SESSION_SEQ_BITS) - 1);
        let shard = (seq % self.inner.ports.len() as u64) as usize;
        let id = (shard as u64) << SESSION_SEQ_BITS | seq;
        let session = match Session::new(
            id,
            agents,
            protocol,
            deadline,
            self.inner.config.clock.now(),
        )
        .and_then(|s| self.check_agents(agents).map(|()| s))
        {
            Ok(s) => s,
            Err(e) => {
                shared.open.fetch_sub(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let cmd = CoordinationCommand::Initiate {
            session: Box::new(session),
        };
        if let Err(e) = self.inner.send(shard, cmd, SendWait::Timeout) {
            shared.open.fetch_sub(1, Ordering::Relaxed);
            return Err(e.into());
        }
        Ok(id)
    }

    /// Refuses the first participant without a published agent record.
    fn check_agents(&self, agents: &[u64]) -> Result<(), CoordinationError> {
        let registry = Agents::new(self.inner);
        for &agent in agents {
            match registry.get(agent) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(CoordinationError::UnknownAgent { agent }),
                Err(AgentError::Engine(e)) => return Err(e.into()),
                // A read never answers with a write's refusal (`NotFound`, `Full`).
                Err(_) => {
                    return Err(Error::Internal("an agent read refused with a write error").into())
                }
            }
        }
        Ok(())
    }

    fn respond(
        &self,
        id: u64,
        agent: u64,
        choice: Option<u32>,
    ) -> Ticket<Result<Option<Completion>, CoordinationError>> {
        let Some(shard) = self.shard(id) else {
            return self
                .inner
                .ready(Ok(Err(CoordinationError::UnknownSession { id })));
        };
        self.inner
            .call(shard, |reply| CoordinationCommand::Respond {
                id,
                agent,
                choice,
                reply,
            })
    }

    /// Agent `agent` acknowledges session `id` (all-acknowledge protocol). The ticket
    /// resolves with the completion if this response completed the session. Refused
    /// like [`vote`](Self::vote) (a late acknowledgement gets `DeadlinePassed`).
    pub fn acknowledge(
        &self,
        id: u64,
        agent: u64,
    ) -> Ticket<Result<Option<Completion>, CoordinationError>> {
        self.respond(id, agent, None)
    }

    /// Agent `agent` votes for `choice` in session `id`. Refused for an agent outside
    /// the session (`NotParticipant`), a second vote (`AlreadyResponded`), an unknown id
    /// (`UnknownSession`, also once an ended session is evicted, see
    /// `Config::coordination.retained`), a vote at or after the deadline
    /// (`DeadlinePassed`, whether or not the timer sweep already ended the session as
    /// timed out; a late vote ends a still-collecting session as timed out) or a session
    /// that ended before its deadline (`Completed`).
    pub fn vote(
        &self,
        id: u64,
        agent: u64,
        choice: u32,
    ) -> Ticket<Result<Option<Completion>, CoordinationError>> {
        self.respond(id, agent, Some(choice))
    }

    /// The session's published status; `None` if unknown (or evicted). A snapshot read.
    pub fn status(&self, id: u64) -> Result<Option<SessionStatus>, Error> {
        let Some(shard) = self.shard(id) else {
            self.inner.check_open()?;
            return Ok(None);
        };
        self.inner.rt.check_readable(shard)?;
        self.inner
            .read(crate::telemetry::ops::read::COORDINATION_STATUS);
        if self.inner.centralized() {
            return self
                .inner
                .round_trip(|reply| CoordinationCommand::Status { id, reply });
        }
        let table = &self.inner.ports[shard].coordination;
        Ok(table.get(id).and_then(|w| SessionStatus::from_words(&w)))
    }
}
