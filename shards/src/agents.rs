//! One shard's agent states, published as fixed-size records for lock-free reads.
//!
//! Each agent lives once, as its published record. Writes are staged; [`AgentShard::publish`]
//! writes every staged agent's record once, so a batch that updates one agent a thousand
//! times publishes it once.

use std::fmt;

use hashbrown::HashMap;

use crate::table::{capacity_for, snapshot_table, TableReader, TableWriter};

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

    /// The status a published record holds in its low byte of word 1 (see
    /// [`AgentSnapshot::to_words`]); `None` if that byte is not a status.
    fn from_record_word(word1: u64) -> Option<Self> {
        Self::from_code(word1 & 0xff)
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
                status: AgentStatus::from_record_word(w[1])?,
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

/// Reads only agent `id`'s status from a published table: the slot's header and one
/// record word, under the slot's seqlock, instead of the whole 11-word record. `None`
/// if the agent is absent.
///
/// ```
/// use mabeam_shards::agents::{lookup_status, AgentShard, AgentState, AgentStatus};
///
/// let mut shard = AgentShard::new(16);
/// let state = AgentState { status: AgentStatus::Busy, load: 1, tasks_completed: 0, data: [0; 4] };
/// shard.update(7, state, 0).unwrap();
/// shard.publish();
/// assert_eq!(lookup_status(&shard.reader(), 7), Some(AgentStatus::Busy));
/// assert_eq!(lookup_status(&shard.reader(), 8), None);
/// ```
#[inline]
pub fn lookup_status(reader: &TableReader<RECORD_WORDS>, id: u64) -> Option<AgentStatus> {
    // A torn read may show any word: `from_code` rejects what is not a status, and a
    // torn result is thrown away by `get_with` anyway.
    reader
        .get_with(id, |record| AgentStatus::from_record_word(record.word(1)))
        .flatten()
}

/// An agent as the shard holds it: what readers see plus the coordination bookkeeping.
#[derive(Clone, Copy)]
struct Agent {
    snapshot: AgentSnapshot,
    /// Coordination sessions the agent is in (bounded by the engine's open sessions).
    sessions: u32,
    /// The status to go back to when the last session ends: the one before the first
    /// session, or the last one written during the sessions.
    saved: AgentStatus,
}

/// Bits of record word 1 that hold the shard's bookkeeping (the saved status and the
/// number of open sessions); readers decode only the low nine bits.
const SAVED_SHIFT: u32 = 16;
const SESSIONS_SHIFT: u32 = 32;

impl Agent {
    /// The published record, with the bookkeeping in word 1's high bits.
    fn to_words(self) -> [u64; RECORD_WORDS] {
        let mut words = self.snapshot.to_words();
        words[1] |= self.saved.code() << SAVED_SHIFT | u64::from(self.sessions) << SESSIONS_SHIFT;
        words
    }

    /// The agent held in a record this shard wrote with [`to_words`](Self::to_words).
    fn from_words(words: &[u64; RECORD_WORDS]) -> Self {
        let snapshot = AgentSnapshot::from_words(words)
            .expect("the shard decodes only records it encoded itself");
        Self {
            snapshot,
            // Truncation is the point: the high half of word 1 holds the count.
            sessions: (words[1] >> SESSIONS_SHIFT) as u32,
            saved: AgentStatus::from_code(words[1] >> SAVED_SHIFT & 0xff)
                .expect("the shard decodes only records it encoded itself"),
        }
    }
}

/// One shard's agents.
///
/// Each agent is held once, as its published record: the table is the store, and the
/// shard reads an agent back from its own slot (no second map of agents beside the
/// table). Writes between two [`publish`](Self::publish) calls are staged, one entry per
/// agent, and published once each.
///
/// Invariants: an agent exists iff it is staged live or (not staged and) in the table;
/// `staged_at` maps each staged id to its entry in `staged`; `staged_new` counts the live
/// staged agents that are not in the table; after [`publish`](Self::publish) nothing is
/// staged and the table holds exactly every agent. Removals are published at once (a
/// removed agent is never readable after its removal is published).
pub struct AgentShard {
    table: TableWriter<RECORD_WORDS>,
    /// Agents written since the last publish, in first-write order; `None` once removed.
    staged: Vec<Option<Agent>>,
    /// Staged id → index in `staged`.
    staged_at: HashMap<u64, usize>,
    /// Live staged agents not yet in the table.
    staged_new: usize,
    capacity: usize,
}

impl fmt::Debug for AgentShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentShard")
            .field("agents", &self.len())
            .field("staged", &self.staged_at.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl AgentShard {
    /// An empty shard holding at most `capacity` agents.
    pub fn new(capacity: usize) -> Self {
        Self::with_reserve(capacity, 0)
    }

    /// An empty shard holding at most `capacity` agents, with the table room for its
    /// first `reserve` agents (at most `capacity`) allocated and touched now: the table
    /// does not grow, and so does not stop the shard to copy itself, until more are
    /// written. The cost is paid here: 112-byte table slots, 1⅓ to 2⅔ of them
    /// per reserved agent ([`capacity_for`]).
    pub fn with_reserve(capacity: usize, reserve: usize) -> Self {
        let reserve = reserve.min(capacity);
        let (table, _) = snapshot_table(capacity.clamp(16, 1024).max(capacity_for(reserve)));
        Self {
            table,
            staged: Vec::new(),
            staged_at: HashMap::new(),
            staged_new: 0,
            capacity,
        }
    }

    /// A reader of the published table, for any thread.
    pub fn reader(&self) -> TableReader<RECORD_WORDS> {
        self.table.reader()
    }

    /// The staged entry of agent `id`, staging it (from the table, or new) first; `None`
    /// if it does not exist and `create` is false. Refuses a new agent beyond capacity.
    fn staged(
        &mut self,
        id: u64,
        now: u64,
        create: bool,
    ) -> Result<Option<&mut Agent>, AgentError> {
        // `Some` with a `None` entry: removed earlier in this batch (its entry is reused).
        let staged_at = self.staged_at.get(&id).copied();
        if let Some(at) = staged_at {
            if self.staged[at].is_some() {
                return Ok(self.staged[at].as_mut());
            }
        }
        let agent = match self.table.get(id) {
            Some(words) => Agent::from_words(&words),
            None if !create => return Ok(None),
            None if self.len() >= self.capacity => {
                return Err(AgentError::Full {
                    capacity: self.capacity,
                })
            }
            None => {
                self.staged_new += 1;
                Agent {
                    snapshot: AgentSnapshot {
                        id,
                        state: AgentState::default(),
                        coordination: None,
                        version: 0,
                        updated_at: now,
                    },
                    sessions: 0,
                    saved: AgentStatus::Idle,
                }
            }
        };
        let at = match staged_at {
            Some(at) => at,
            None => {
                self.staged.push(None);
                let at = self.staged.len() - 1;
                self.staged_at.insert(id, at);
                at
            }
        };
        Ok(Some(self.staged[at].insert(agent)))
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
        let agent = self
            .staged(id, now, true)?
            .expect("staged with create: the agent exists or was refused");
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
        let agent = self.staged(id, now, false)?.ok_or(AgentError::NotFound)?;
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
        if self.get_agent(id)?.sessions == 0 {
            return None;
        }
        let agent = self.staged(id, now, false).ok()??;
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
        let staged = match self.staged_at.get(&id) {
            Some(&at) => self.staged[at].take(),
            None => None,
        };
        let published = self.table.get(id);
        let agent = match (staged, published) {
            (Some(agent), Some(_)) => agent,
            (Some(agent), None) => {
                self.staged_new -= 1;
                agent
            }
            (None, Some(words)) => Agent::from_words(&words),
            (None, None) => return Err(AgentError::NotFound),
        };
        if published.is_some() {
            self.table.remove(id);
        }
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
        for agent in self.staged.drain(..).flatten() {
            self.table.insert(agent.snapshot.id, agent.to_words());
            f(&agent.snapshot);
            published += 1;
        }
        self.staged_at.clear();
        self.staged_new = 0;
        published
    }

    /// The owner's view of agent `id`, staged writes included.
    fn get_agent(&self, id: u64) -> Option<Agent> {
        match self.staged_at.get(&id) {
            Some(&at) => self.staged[at],
            None => self.table.get(id).map(|words| Agent::from_words(&words)),
        }
    }

    /// The owner's view of agent `id` (including unpublished writes).
    pub fn get(&self, id: u64) -> Option<AgentSnapshot> {
        self.get_agent(id).map(|a| a.snapshot)
    }

    /// Every agent with its bookkeeping, staged writes included.
    fn agents(&self) -> impl Iterator<Item = Agent> + '_ {
        let published = self
            .table
            .iter()
            .filter(|(id, _)| !self.staged_at.contains_key(id))
            .map(|(_, words)| Agent::from_words(&words));
        published.chain(self.staged.iter().flatten().copied())
    }

    /// Every agent, for export.
    pub fn snapshots(&self) -> impl Iterator<Item = AgentSnapshot> + '_ {
        self.agents().map(|a| a.snapshot)
    }

    /// Restores a snapshot as it was exported (version and time kept).
    pub fn restore(&mut self, snapshot: AgentSnapshot) -> Result<(), AgentError> {
        let agent = self
            .staged(snapshot.id, snapshot.updated_at, true)?
            .expect("staged with create: the agent exists or was refused");
        agent.snapshot = snapshot;
        Ok(())
    }

    /// Every agent with its coordination bookkeeping `(snapshot, sessions, saved)`:
    /// the number of open sessions it is in and the status it goes back to when the
    /// last one ends. For export.
    pub fn records(&self) -> impl Iterator<Item = (AgentSnapshot, u32, AgentStatus)> + '_ {
        self.agents().map(|a| (a.snapshot, a.sessions, a.saved))
    }

    /// Restores an exported record (see [`records`](Self::records)) as it was, and
    /// marks it for publication.
    pub fn restore_record(
        &mut self,
        snapshot: AgentSnapshot,
        sessions: u32,
        saved: AgentStatus,
    ) -> Result<(), AgentError> {
        let agent = self
            .staged(snapshot.id, snapshot.updated_at, true)?
            .expect("staged with create: the agent exists or was refused");
        agent.snapshot = snapshot;
        agent.sessions = sessions;
        agent.saved = saved;
        Ok(())
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.table.len() + self.staged_new
    }

    /// True if the shard holds no agent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    /// The shard keeps each agent only in its published record: the session bookkeeping
    /// must survive the round trip through the table between batches.
    #[test]
    fn session_bookkeeping_survives_publishing() {
        let mut shard = AgentShard::new(10);
        let reader = shard.reader();
        shard.update(1, with_status(AgentStatus::Busy), 0).unwrap();
        shard.join_session(1, 40, 1).unwrap();
        shard.join_session(1, 41, 2).unwrap();
        assert_eq!(shard.publish(), 1);
        let seen = lookup(&reader, 1).unwrap();
        assert_eq!(
            (seen.state.status, seen.coordination, seen.version),
            (AgentStatus::Coordinating, Some(41), 3)
        );
        assert_eq!(
            shard.records().collect::<Vec<_>>(),
            vec![(seen, 2, AgentStatus::Busy)],
            "two sessions, Busy saved"
        );
        shard.leave_session(1, 40, 3).unwrap();
        shard.publish();
        let s = shard.leave_session(1, 41, 4).unwrap();
        assert_eq!((s.state.status, s.coordination), (AgentStatus::Busy, None));
        shard.publish();
        assert_eq!(lookup(&reader, 1), Some(s));
        assert_eq!(shard.records().next().map(|r| r.1), Some(0));
    }

    /// A removal and a new write of the same agent in one batch: the new agent starts
    /// over, is counted once, and is what gets published.
    #[test]
    fn removed_and_written_again_in_one_batch() {
        let mut shard = AgentShard::new(2);
        let reader = shard.reader();
        shard.update(1, state(1), 0).unwrap();
        shard.publish();
        shard.update(1, state(2), 1).unwrap();
        assert_eq!(shard.remove(1).unwrap().state.load, 2, "the staged write");
        assert_eq!(lookup(&reader, 1), None, "unpublished at once");
        assert_eq!(shard.len(), 0);
        let s = shard.update(1, state(3), 2).unwrap();
        assert_eq!(s.version, 1, "a new agent");
        shard.update(2, state(4), 2).unwrap();
        assert_eq!(shard.len(), 2);
        assert_eq!(
            shard.update(3, state(5), 2),
            Err(AgentError::Full { capacity: 2 }),
            "staged new agents count against the capacity"
        );
        assert_eq!(shard.snapshots().count(), 2, "export sees staged agents");
        assert_eq!(shard.publish(), 2);
        assert_eq!(lookup(&reader, 1).unwrap().state.load, 3);
        assert_eq!(shard.len(), 2);
        assert_eq!(shard.snapshots().count(), 2);
        shard.remove(2).unwrap();
        assert_eq!(shard.len(), 1);
        assert_eq!(shard.get(2), None);
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
