//! One shard's agent states, published as fixed-size records for lock-free reads.
//!
//! Writes mark an agent dirty; [`AgentShard::publish`] writes every dirty agent's record
//! once, so a batch that updates one agent a thousand times publishes it once.

use std::fmt;

use hashbrown::HashMap;

use crate::table::{snapshot_table, TableReader, TableWriter};

/// Words in a published agent record.
pub const RECORD_WORDS: usize = 11;

/// What an agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AgentStatus {
    /// Ready for work.
    #[default]
    Idle,
    /// Working.
    Busy,
    /// Taking part in a coordination session.
    Coordinating,
    /// Not available.
    Offline,
}

impl AgentStatus {
    fn code(self) -> u64 {
        self as u64
    }

    fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::Idle),
            1 => Some(Self::Busy),
            2 => Some(Self::Coordinating),
            3 => Some(Self::Offline),
            _ => None,
        }
    }
}

/// The state a host writes for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AgentState {
    /// What the agent is doing.
    pub status: AgentStatus,
    /// Load, in units the host chooses.
    pub load: u64,
    /// Tasks the agent has completed.
    pub tasks_completed: u64,
    /// Four words of host data, published as they are.
    pub data: [u64; 4],
}

/// An agent's state as readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentSnapshot {
    /// The agent's id.
    pub id: u64,
    /// The last state written.
    pub state: AgentState,
    /// While the agent takes part in at least one coordination session, the one it
    /// joined last (which may have ended if an earlier one is still open); `None` once it
    /// is in none.
    pub coordination: Option<u64>,
    /// Number of writes applied to this agent (1 after the first update). A coordination
    /// session's mark and its release (joining and leaving a session, which change
    /// `status` and `coordination`) count as writes too.
    pub version: u64,
    /// Engine clock time of the last write (session marks included), in nanoseconds.
    pub updated_at: u64,
}

impl AgentSnapshot {
    /// Encodes the snapshot as a published record.
    pub fn to_words(&self) -> [u64; RECORD_WORDS] {
        let (has_session, session) = match self.coordination {
            Some(s) => (1, s),
            None => (0, 0),
        };
        [
            self.id,
            self.state.status.code() | has_session << 8,
            self.state.load,
            self.state.tasks_completed,
            self.state.data[0],
            self.state.data[1],
            self.state.data[2],
            self.state.data[3],
            session,
            self.version,
            self.updated_at,
        ]
    }

    /// Decodes a published record; `None` if the words are not a valid snapshot.
    #[inline]
    pub fn from_words(w: &[u64; RECORD_WORDS]) -> Option<Self> {
        Some(Self {
            id: w[0],
            state: AgentState {
                status: AgentStatus::from_code(w[1] & 0xff)?,
                load: w[2],
                tasks_completed: w[3],
                data: [w[4], w[5], w[6], w[7]],
            },
            coordination: (w[1] >> 8 & 1 == 1).then_some(w[8]),
            version: w[9],
            updated_at: w[10],
        })
    }
}

/// Why an agent write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// No agent with this id.
    NotFound,
    /// The shard holds its maximum number of agents.
    Full {
        /// The per-shard bound that was hit.
        capacity: usize,
    },
    /// The engine could not carry out the call.
    Engine(crate::Error),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no agent with this id"),
            Self::Full { capacity } => write!(f, "agent shard full ({capacity} agents)"),
            Self::Engine(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for AgentError {}

impl From<crate::Error> for AgentError {
    fn from(e: crate::Error) -> Self {
        Self::Engine(e)
    }
}

/// Reads agent `id` from a published table: lock-free, allocation-free.
#[inline]
pub fn lookup(reader: &TableReader<RECORD_WORDS>, id: u64) -> Option<AgentSnapshot> {
    AgentSnapshot::from_words(&reader.get(id)?)
}

struct Agent {
    snapshot: AgentSnapshot,
    dirty: bool,
    /// Coordination sessions the agent is in (bounded by the engine's open sessions).
    sessions: u32,
    /// The status to go back to when the last session ends: the one before the first
    /// session, or the last one written during the sessions.
    saved: AgentStatus,
}

/// One shard's agents.
///
/// Invariants: after [`publish`](Self::publish), the table holds exactly the snapshot of
/// every agent in `agents`; an id is in `dirty` iff its `dirty` flag is set; removals are
/// published at once (a removed agent is never readable after its removal is published).
pub struct AgentShard {
    agents: HashMap<u64, Agent>,
    dirty: Vec<u64>,
    table: TableWriter<RECORD_WORDS>,
    capacity: usize,
}

impl fmt::Debug for AgentShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentShard")
            .field("agents", &self.agents.len())
            .field("dirty", &self.dirty.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl AgentShard {
    /// An empty shard holding at most `capacity` agents.
    pub fn new(capacity: usize) -> Self {
        let (table, _) = snapshot_table(capacity.clamp(16, 1024));
        Self {
            agents: HashMap::new(),
            dirty: Vec::new(),
            table,
            capacity,
        }
    }

    /// A reader of the published table, for any thread.
    pub fn reader(&self) -> TableReader<RECORD_WORDS> {
        self.table.reader()
    }

    fn entry(&mut self, id: u64, now: u64) -> Result<&mut Agent, AgentError> {
        if !self.agents.contains_key(&id) && self.agents.len() >= self.capacity {
            return Err(AgentError::Full {
                capacity: self.capacity,
            });
        }
        let agent = self.agents.entry(id).or_insert_with(|| Agent {
            snapshot: AgentSnapshot {
                id,
                state: AgentState::default(),
                coordination: None,
                version: 0,
                updated_at: now,
            },
            dirty: false,
            sessions: 0,
            saved: AgentStatus::Idle,
        });
        if !agent.dirty {
            agent.dirty = true;
            self.dirty.push(id);
        }
        Ok(agent)
    }

    /// Writes `state` for agent `id`, creating it if it is new. While the agent is in a
    /// coordination session its published status stays `Coordinating`, and the written
    /// status is the one it goes back to when its last session ends.
    pub fn update(
        &mut self,
        id: u64,
        state: AgentState,
        now: u64,
    ) -> Result<AgentSnapshot, AgentError> {
        let agent = self.entry(id, now)?;
        let s = &mut agent.snapshot;
        s.state = state;
        if agent.sessions > 0 {
            agent.saved = state.status;
            s.state.status = AgentStatus::Coordinating;
        }
        s.version += 1;
        s.updated_at = now;
        Ok(*s)
    }

    /// Marks agent `id` as taking part in `session`: its status becomes `Coordinating`
    /// (the status it had is saved by the first of overlapping sessions). Refused with
    /// [`AgentError::NotFound`] for an agent this shard does not hold: a mark never
    /// creates an agent.
    pub fn join_session(
        &mut self,
        id: u64,
        session: u64,
        now: u64,
    ) -> Result<AgentSnapshot, AgentError> {
        if !self.agents.contains_key(&id) {
            return Err(AgentError::NotFound);
        }
        let agent = self.entry(id, now)?;
        if agent.sessions == 0 {
            agent.saved = agent.snapshot.state.status;
        }
        agent.sessions = agent.sessions.saturating_add(1);
        let s = &mut agent.snapshot;
        s.coordination = Some(session);
        s.state.status = AgentStatus::Coordinating;
        s.version += 1;
        s.updated_at = now;
        Ok(*s)
    }

    /// Ends agent `id`'s part in `session`. When it was the agent's last open session,
    /// its status goes back to the saved one (see [`join_session`](Self::join_session)
    /// and [`update`](Self::update)) and `coordination` to `None`; before that it stays
    /// `Coordinating`. Does nothing (returns `None`) if the agent is gone or in no
    /// session (a removal forgets the agent's sessions: an agent removed and written
    /// again during a session is not in it).
    pub fn leave_session(&mut self, id: u64, _session: u64, now: u64) -> Option<AgentSnapshot> {
        if self.agents.get(&id)?.sessions == 0 {
            return None;
        }
        let agent = self.entry(id, now).ok()?;
        agent.sessions -= 1;
        let s = &mut agent.snapshot;
        // Only the count of sessions is kept (bounded state), not their ids: while one
        // is still open, the latest joined id stays.
        if agent.sessions == 0 {
            s.coordination = None;
            s.state.status = agent.saved;
        }
        s.version += 1;
        s.updated_at = now;
        Some(*s)
    }

    /// Removes agent `id` and unpublishes it at once.
    pub fn remove(&mut self, id: u64) -> Result<AgentSnapshot, AgentError> {
        let agent = self.agents.remove(&id).ok_or(AgentError::NotFound)?;
        self.table.remove(id);
        // A stale `dirty` entry for `id` is skipped by `publish`.
        Ok(agent.snapshot)
    }

    /// Publishes every agent written since the last call; returns how many.
    pub fn publish(&mut self) -> usize {
        self.publish_each(|_| {})
    }

    /// Publishes every agent written since the last call, calling `f` with each
    /// published snapshot; returns how many.
    pub fn publish_each(&mut self, mut f: impl FnMut(&AgentSnapshot)) -> usize {
        let mut published = 0;
        for id in self.dirty.drain(..) {
            if let Some(agent) = self.agents.get_mut(&id) {
                if agent.dirty {
                    agent.dirty = false;
                    self.table.insert(id, agent.snapshot.to_words());
                    f(&agent.snapshot);
                    published += 1;
                }
            }
        }
        published
    }

    /// The owner's view of agent `id` (including unpublished writes).
    pub fn get(&self, id: u64) -> Option<AgentSnapshot> {
        self.agents.get(&id).map(|a| a.snapshot)
    }

    /// Every agent, for export.
    pub fn snapshots(&self) -> impl Iterator<Item = AgentSnapshot> + '_ {
        self.agents.values().map(|a| a.snapshot)
    }

    /// Restores a snapshot as it was exported (version and time kept).
    pub fn restore(&mut self, snapshot: AgentSnapshot) -> Result<(), AgentError> {
        let agent = self.entry(snapshot.id, snapshot.updated_at)?;
        agent.snapshot = snapshot;
        Ok(())
    }

    /// Every agent with its coordination bookkeeping `(snapshot, sessions, saved)`:
    /// the number of open sessions it is in and the status it goes back to when the
    /// last one ends. For export.
    pub fn records(&self) -> impl Iterator<Item = (AgentSnapshot, u32, AgentStatus)> + '_ {
        self.agents
            .values()
            .map(|a| (a.snapshot, a.sessions, a.saved))
    }

    /// Restores an exported record (see [`records`](Self::records)) as it was, and
    /// marks it for publication.
    pub fn restore_record(
        &mut self,
        snapshot: AgentSnapshot,
        sessions: u32,
        saved: AgentStatus,
    ) -> Result<(), AgentError> {
        let agent = self.entry(snapshot.id, snapshot.updated_at)?;
        agent.snapshot = snapshot;
        agent.sessions = sessions;
        agent.saved = saved;
        Ok(())
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True if the shard holds no agent.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(load: u64) -> AgentState {
        AgentState {
            status: AgentStatus::Busy,
            load,
            tasks_completed: 2,
            data: [1, 2, 3, u64::MAX],
        }
    }

    #[test]
    fn record_round_trips() {
        let s = AgentSnapshot {
            id: u64::MAX,
            state: state(5),
            coordination: Some(0),
            version: 3,
            updated_at: 9,
        };
        assert_eq!(AgentSnapshot::from_words(&s.to_words()), Some(s));
    }

    #[test]
    fn writes_are_published_once_per_batch() {
        let mut shard = AgentShard::new(10);
        let reader = shard.reader();
        for load in 0..100 {
            shard.update(7, state(load), load).unwrap();
        }
        assert_eq!(lookup(&reader, 7), None, "not published before publish()");
        assert_eq!(shard.publish(), 1);
        let snap = lookup(&reader, 7).unwrap();
        assert_eq!(snap.state.load, 99);
        assert_eq!(snap.version, 100);
        assert_eq!(snap.updated_at, 99);
        assert_eq!(shard.publish(), 0);
    }

    #[test]
    fn remove_unpublishes_at_once() {
        let mut shard = AgentShard::new(10);
        let reader = shard.reader();
        shard.update(1, state(1), 0).unwrap();
        shard.publish();
        shard.update(1, state(2), 0).unwrap();
        shard.remove(1).unwrap();
        assert_eq!(lookup(&reader, 1), None);
        assert_eq!(shard.publish(), 0, "stale dirty entry skipped");
        assert_eq!(shard.remove(1), Err(AgentError::NotFound));
    }

    #[test]
    fn capacity_is_enforced() {
        let mut shard = AgentShard::new(1);
        shard.update(1, state(1), 0).unwrap();
        shard.update(1, state(2), 0).unwrap();
        assert_eq!(
            shard.update(2, state(1), 0),
            Err(AgentError::Full { capacity: 1 })
        );
    }

    #[test]
    fn sessions_pin_the_status() {
        let mut shard = AgentShard::new(10);
        shard.update(1, state(1), 0).unwrap();
        shard.join_session(1, 44, 1).unwrap();
        let s = shard.update(1, state(3), 2).unwrap();
        assert_eq!(s.state.status, AgentStatus::Coordinating);
        assert_eq!(s.coordination, Some(44));
        let s = shard.leave_session(1, 44, 3).unwrap();
        assert_eq!(s.state.status, AgentStatus::Busy, "the status last written");
        assert_eq!(s.state.load, 3);
        assert_eq!(s.coordination, None);
        assert_eq!(shard.leave_session(1, 44, 4), None, "in no session");
    }

    fn with_status(status: AgentStatus) -> AgentState {
        AgentState {
            status,
            ..AgentState::default()
        }
    }

    /// Issue 9, defect 6: a mark never creates an agent.
    #[test]
    fn a_mark_for_an_unknown_agent_creates_nothing() {
        let mut shard = AgentShard::new(10);
        assert_eq!(shard.join_session(8888, 1, 0), Err(AgentError::NotFound));
        assert_eq!(shard.get(8888), None);
        assert!(shard.is_empty());
        assert_eq!(shard.publish(), 0);
        assert_eq!(shard.leave_session(8888, 1, 1), None);
        assert!(shard.is_empty());
    }

    /// Issue 9, defect 6: the status before the first session comes back after the last.
    #[test]
    fn overlapping_sessions_restore_the_status_after_the_last() {
        let mut shard = AgentShard::new(10);
        shard.update(1, with_status(AgentStatus::Busy), 0).unwrap();
        let s = shard.join_session(1, 10, 1).unwrap();
        assert_eq!(s.state.status, AgentStatus::Coordinating);
        let s = shard.join_session(1, 11, 2).unwrap();
        assert_eq!(
            (s.state.status, s.coordination),
            (AgentStatus::Coordinating, Some(11))
        );
        let s = shard.leave_session(1, 10, 3).unwrap();
        assert_eq!(
            s.state.status,
            AgentStatus::Coordinating,
            "one session is still open"
        );
        assert_eq!(s.coordination, Some(11));
        let s = shard.leave_session(1, 11, 4).unwrap();
        assert_eq!((s.state.status, s.coordination), (AgentStatus::Busy, None));
        assert_eq!(shard.leave_session(1, 11, 5), None, "no session left");
        assert_eq!(shard.get(1).unwrap().state.status, AgentStatus::Busy);

        // A write during a session is what the agent returns to.
        let s = shard.join_session(1, 12, 6).unwrap();
        assert_eq!(s.state.status, AgentStatus::Coordinating);
        let s = shard
            .update(1, with_status(AgentStatus::Offline), 7)
            .unwrap();
        assert_eq!(s.state.status, AgentStatus::Coordinating);
        let s = shard.leave_session(1, 12, 8).unwrap();
        assert_eq!(s.state.status, AgentStatus::Offline);
    }
}
