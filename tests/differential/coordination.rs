//! The reference model of coordination sessions, written from the rules documented on
//! `mabeam_shards::coordination` (re-exported as `mabeam::coordination`: the rules table,
//! the exclusive deadline, `DeadlinePassed` for every late response, `Completed` for a
//! session that ended before its deadline), the engine's `mabeam::coordination` docs
//! (participants must be published agents, `UnknownAgent` naming the first one that is
//! not; at most `coordination.max_open` open sessions engine-wide; `coordination.retained`
//! ended sessions kept per shard, oldest-ended first; the session's shard is its id's
//! prefix) and the agents' docs (a participant is `Coordinating` with `coordination` set
//! to the session it joined last; a write during a session is what it goes back to; when
//! its last session ends it goes back to the saved status and `coordination` to `None`;
//! only a count of sessions is kept per agent, a removal forgets it).
//!
//! Determinism: a session marks and frees its participants by shard-to-shard messages,
//! so the test flushes before every initiate (the agents it checks are published) and
//! after every initiate and response (the marks and frees are applied before the next
//! agent write). Deadlines pass only in the driver's time steps, which flush before and
//! after, so every late response finds its session already timed out by the sweep.
//!
//! Events: `coordination.initiated` and `coordination.completed` go to a subscription of
//! `coordination.*` (which cannot match the barrier events of the events model) and are
//! compared, as a multiset ordered by session, at every status read.

use std::collections::{HashMap, VecDeque};

use mabeam::coordination::{
    Completion, CoordinationError, Protocol, SessionState, SessionStatus, MAX_PARTICIPANTS,
};
use mabeam::events::{Payload, Subscription};
use mabeam::Engine;

use super::{random_state, AgentsModel, Rng, AGENT_IDS};

/// Bits of a session id below its shard prefix (`mabeam::coordination` docs: the id
/// carries the shard).
const SEQ_BITS: u32 = 48;

/// An event as the model sees it: (session, 0 initiated / 1 completed, participants,
/// completion, timestamp).
type View = (u64, u8, u32, Option<Completion>, u64);

struct ModelSession {
    id: u64,
    protocol: Protocol,
    participants: Vec<u64>,
    responded: Vec<bool>,
    /// `(choice, votes)` in order of first vote.
    tally: Vec<(u32, u32)>,
    /// Index into `tally` of the leading choice: the first to reach the top count.
    top: Option<usize>,
    state: SessionState,
    decided: Option<u32>,
    deadline: u64,
    completed_at: Option<u64>,
    evicted: bool,
}

impl ModelSession {
    fn responses(&self) -> u32 {
        self.responded.iter().filter(|r| **r).count() as u32
    }

    fn status(&self) -> SessionStatus {
        SessionStatus {
            id: self.id,
            protocol: self.protocol,
            state: self.state,
            participants: self.participants.len() as u32,
            responses: self.responses(),
            decided: self.decided,
            top: self.top.map(|i| self.tally[i]),
            deadline: self.deadline,
            completed_at: self.completed_at,
        }
    }

    fn completion(&self) -> Completion {
        let mut votes = self.tally.clone();
        // Votes descending, ties in order of first vote (a stable sort keeps it).
        votes.sort_by_key(|v| std::cmp::Reverse(v.1));
        Completion {
            session: self.id,
            protocol: self.protocol,
            state: self.state,
            decided: self.decided,
            votes,
            participants: self.participants.len() as u32,
            responses: self.responses(),
            at: self
                .completed_at
                .expect("only an ended session has a completion"),
        }
    }
}

/// Votes a choice needs among `n` participants (the documented rules table).
fn needed(protocol: Protocol, n: u32) -> u32 {
    match protocol {
        Protocol::AllAcknowledge | Protocol::Unanimous => n,
        // More than half.
        Protocol::Majority => n / 2 + 1,
        // ceil(f * n / 1000).
        Protocol::Threshold { fraction_permille } => {
            (u32::from(fraction_permille) * n).div_ceil(1000)
        }
    }
}

pub struct CoordinationModel {
    shards: usize,
    max_open: usize,
    retained: usize,
    sessions: Vec<ModelSession>,
    index: HashMap<u64, usize>,
    /// Per shard, the ended sessions still kept, oldest-ended first.
    ended: Vec<VecDeque<u64>>,
    open: usize,
    sub: Subscription,
    events: Vec<View>,
}

impl CoordinationModel {
    pub fn new(engine: &Engine, shards: usize, max_open: usize, retained: usize) -> Self {
        let sub = engine
            .events()
            .subscribe("coordination.*", 1 << 16)
            .expect("subscribe coordination events");
        Self {
            shards,
            max_open,
            retained,
            sessions: Vec::new(),
            index: HashMap::new(),
            ended: vec![VecDeque::new(); shards],
            open: 0,
            sub,
            events: Vec::new(),
        }
    }

    /// Ends session `i` at `now`: frees its participants, publishes the completion and
    /// applies the shard's retention.
    fn finish(
        &mut self,
        i: usize,
        state: SessionState,
        decided: Option<u32>,
        now: u64,
        agents: &mut AgentsModel,
    ) -> Completion {
        let s = &mut self.sessions[i];
        s.state = state;
        s.decided = decided;
        s.completed_at = Some(now);
        let done = s.completion();
        for &a in &s.participants {
            agents.leave(a, now);
        }
        self.open -= 1;
        self.events.push((s.id, 1, 0, Some(done.clone()), now));
        let shard = (s.id >> SEQ_BITS) as usize % self.shards;
        let ended = &mut self.ended[shard];
        ended.push_back(s.id);
        while ended.len() > self.retained {
            let old = ended.pop_front().expect("longer than retained");
            let j = self.index[&old];
            self.sessions[j].evicted = true;
        }
        done
    }

    /// The timer sweep at `now`: every collecting session whose deadline is at or before
    /// `now` times out, in deadline order.
    pub fn advance(&mut self, now: u64, agents: &mut AgentsModel) {
        let mut due: Vec<(u64, u64, usize)> = self
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.state == SessionState::Collecting && s.deadline <= now)
            .map(|(i, s)| (s.deadline, s.id, i))
            .collect();
        due.sort_unstable();
        for (_, _, i) in due {
            self.finish(i, SessionState::TimedOut, None, now, agents);
        }
    }

    fn initiate_want(
        &self,
        participants: &[u64],
        protocol: Protocol,
        deadline: u64,
        now: u64,
        agents: &AgentsModel,
    ) -> Result<(), CoordinationError> {
        if self.open >= self.max_open {
            return Err(CoordinationError::TooManySessions {
                limit: self.max_open,
            });
        }
        // The driver makes at most one of these faults at a time.
        if participants.is_empty() {
            return Err(CoordinationError::NoParticipants);
        }
        if participants.len() > MAX_PARTICIPANTS {
            return Err(CoordinationError::TooManyParticipants {
                count: participants.len(),
                max: MAX_PARTICIPANTS,
            });
        }
        if let Protocol::Threshold { fraction_permille } = protocol {
            if !(1..=1000).contains(&fraction_permille) {
                return Err(CoordinationError::InvalidThreshold { fraction_permille });
            }
        }
        if deadline <= now {
            return Err(CoordinationError::DeadlineNotInFuture { deadline, now });
        }
        for (k, a) in participants.iter().enumerate() {
            if participants[..k].contains(a) {
                return Err(CoordinationError::DuplicateParticipant { agent: *a });
            }
        }
        if let Some(&agent) = participants.iter().find(|a| !agents.agents.contains_key(a)) {
            return Err(CoordinationError::UnknownAgent { agent });
        }
        Ok(())
    }

    fn respond_want(
        &mut self,
        id: u64,
        agent: u64,
        choice: Option<u32>,
        now: u64,
        agents: &mut AgentsModel,
    ) -> Result<Option<Completion>, CoordinationError> {
        let Some(&i) = self.index.get(&id).filter(|&&i| !self.sessions[i].evicted) else {
            return Err(CoordinationError::UnknownSession { id });
        };
        let s = &self.sessions[i];
        if matches!(s.state, SessionState::Collecting | SessionState::TimedOut) && now >= s.deadline
        {
            let deadline = s.deadline;
            if s.state == SessionState::Collecting {
                // A late response ends a still-collecting session as timed out.
                self.finish(i, SessionState::TimedOut, None, now, agents);
            }
            return Err(CoordinationError::DeadlinePassed { deadline, now });
        }
        if s.state != SessionState::Collecting {
            return Err(CoordinationError::Completed { state: s.state });
        }
        let Some(pos) = s.participants.iter().position(|&a| a == agent) else {
            return Err(CoordinationError::NotParticipant { agent });
        };
        if s.responded[pos] {
            return Err(CoordinationError::AlreadyResponded { agent });
        }
        let is_vote = s.protocol != Protocol::AllAcknowledge;
        if is_vote != choice.is_some() {
            return Err(CoordinationError::WrongProtocol {
                protocol: s.protocol,
            });
        }
        let s = &mut self.sessions[i];
        s.responded[pos] = true;
        let n = s.participants.len() as u32;
        let need = needed(s.protocol, n);
        let Some(choice) = choice else {
            if s.responses() == n {
                return Ok(Some(self.finish(
                    i,
                    SessionState::Decided,
                    None,
                    now,
                    agents,
                )));
            }
            return Ok(None);
        };
        let t = match s.tally.iter().position(|&(c, _)| c == choice) {
            Some(t) => t,
            None => {
                s.tally.push((choice, 0));
                s.tally.len() - 1
            }
        };
        s.tally[t].1 += 1;
        let votes = s.tally[t].1;
        if s.top.map_or(true, |top| votes > s.tally[top].1) {
            s.top = Some(t);
        }
        if votes >= need {
            return Ok(Some(self.finish(
                i,
                SessionState::Decided,
                Some(choice),
                now,
                agents,
            )));
        }
        let top = s.tally[s.top.expect("a vote was counted")].1;
        let remaining = n - s.responses();
        let impossible = match s.protocol {
            Protocol::Unanimous => s.tally.len() > 1,
            _ => top + remaining < need,
        };
        if impossible {
            return Ok(Some(self.finish(
                i,
                SessionState::NoDecision,
                None,
                now,
                agents,
            )));
        }
        Ok(None)
    }

    fn status_want(&self, id: u64) -> Option<SessionStatus> {
        let &i = self.index.get(&id)?;
        let s = &self.sessions[i];
        (!s.evicted).then(|| s.status())
    }

    /// A session id to act on: mostly a recent one (evicted ones included), sometimes one
    /// that was never handed out (a sequence far beyond the case's, or a prefix no shard
    /// of a 1-shard engine has).
    fn pick(&self, rng: &mut Rng) -> u64 {
        if self.sessions.is_empty() || rng.below(10) == 0 {
            (rng.below(4) << SEQ_BITS) | (1 << 40) | rng.below(8)
        } else {
            let n = self.sessions.len() as u64;
            self.sessions[(n - 1 - rng.below(n.min(6))) as usize].id
        }
    }
}

fn random_protocol(rng: &mut Rng) -> Protocol {
    match rng.below(4) {
        0 => Protocol::AllAcknowledge,
        1 => Protocol::Majority,
        2 => Protocol::Unanimous,
        _ => Protocol::Threshold {
            fraction_permille: match rng.below(4) {
                0 => 1000,
                1 => 500,
                2 => 667,
                _ => 1 + rng.below(1000) as u16,
            },
        },
    }
}

/// One coordination operation, compared with the model.
pub fn step(
    engine: &Engine,
    m: &mut CoordinationModel,
    agents: &mut AgentsModel,
    rng: &mut Rng,
    now: u64,
    ctx: &dyn Fn(&str) -> String,
) {
    let coord = engine.coordination();
    match rng.below(11) {
        0..=2 => {
            // The agents the check reads must be published.
            engine.flush().unwrap();
            let mut known: Vec<u64> = agents.agents.keys().copied().collect();
            known.sort_unstable();
            let mut protocol = random_protocol(rng);
            let mut deadline = if rng.below(4) == 0 {
                u64::MAX
            } else {
                now + 1 + rng.below(5_000)
            };
            let mut participants: Vec<u64> = Vec::new();
            if !known.is_empty() {
                let n = 1 + rng.below(4.min(known.len() as u64));
                while participants.len() < n as usize {
                    let a = known[rng.below(known.len() as u64) as usize];
                    if !participants.contains(&a) {
                        participants.push(a);
                    }
                }
            }
            // Now and then (always, without known agents) exactly one fault.
            if known.is_empty() || rng.below(6) == 0 {
                match rng.below(6) {
                    0 => participants.clear(),
                    1 if !participants.is_empty() => {
                        let a = participants[rng.below(participants.len() as u64) as usize];
                        participants.push(a);
                    }
                    2 => {
                        protocol = Protocol::Threshold {
                            fraction_permille: if rng.below(2) == 0 { 0 } else { 1001 },
                        }
                    }
                    3 => deadline = now - rng.below(2),
                    4 => participants = (0..=MAX_PARTICIPANTS as u64).collect(),
                    _ => {
                        // An agent that is not published: never written in this case, or
                        // one of the driver's ids not written (or removed) yet.
                        let unknown = if rng.below(2) == 0 {
                            AGENT_IDS + 1_000 + rng.below(5)
                        } else {
                            (0..AGENT_IDS)
                                .find(|a| !agents.agents.contains_key(a))
                                .unwrap_or(AGENT_IDS + 7)
                        };
                        let at = rng.below(participants.len() as u64 + 1) as usize;
                        participants.insert(at, unknown);
                    }
                }
            }
            let what = format!("initiate {participants:?} {protocol:?} deadline {deadline}");
            let got = coord.initiate(&participants, protocol, deadline);
            let want = m.initiate_want(&participants, protocol, deadline, now, agents);
            match (got, want) {
                (Ok(id), Ok(())) => {
                    let shard = (id >> SEQ_BITS) as usize;
                    assert!(shard < m.shards, "{}", ctx(&format!("{what}: id {id:#x}")));
                    assert!(
                        !m.index.contains_key(&id),
                        "{}",
                        ctx(&format!("{what}: id {id:#x} handed out twice"))
                    );
                    for &a in &participants {
                        agents.join(a, id, now);
                    }
                    m.index.insert(id, m.sessions.len());
                    m.sessions.push(ModelSession {
                        id,
                        protocol,
                        responded: vec![false; participants.len()],
                        participants,
                        tally: Vec::new(),
                        top: None,
                        state: SessionState::Collecting,
                        decided: None,
                        deadline,
                        completed_at: None,
                        evicted: false,
                    });
                    m.open += 1;
                    m.events.push((
                        id,
                        0,
                        m.sessions.last().map_or(0, |s| s.participants.len() as u32),
                        None,
                        now,
                    ));
                    // The marks reach the agents' shards before the next agent write.
                    engine.flush().unwrap();
                }
                (got, want) => assert_eq!(got.map(|_| ()), want, "{}", ctx(&what)),
            }
        }
        3..=7 => {
            let id = m.pick(rng);
            let session = m.index.get(&id).map(|&i| &m.sessions[i]);
            let agent = match session {
                Some(s) if rng.below(6) != 0 => {
                    s.participants[rng.below(s.participants.len() as u64) as usize]
                }
                _ => rng.below(AGENT_IDS + 2),
            };
            let is_vote = session.map_or(rng.below(2) == 0, |s| {
                s.protocol != Protocol::AllAcknowledge
            });
            // A response of the wrong kind only from a participant that may still respond
            // (the order of that check against the others is not documented).
            let may_respond = session.is_some_and(|s| {
                s.state == SessionState::Collecting
                    && now < s.deadline
                    && s.participants
                        .iter()
                        .position(|&a| a == agent)
                        .is_some_and(|p| !s.responded[p])
            });
            let is_vote = if may_respond && rng.below(12) == 0 {
                !is_vote
            } else {
                is_vote
            };
            let choice = is_vote.then(|| rng.below(3) as u32);
            let got = match choice {
                Some(c) => coord.vote(id, agent, c).wait(),
                None => coord.acknowledge(id, agent).wait(),
            }
            .expect("response ticket");
            let want = m.respond_want(id, agent, choice, now, agents);
            assert_eq!(
                got,
                want,
                "{}",
                ctx(&format!("respond {id:#x} agent {agent} choice {choice:?}"))
            );
            // The frees reach the agents' shards before the next agent write.
            engine.flush().unwrap();
        }
        8 => {
            // A participant of a recent session is written (its written status is what
            // it goes back to) or removed (which forgets its sessions).
            let Some(s) = m
                .sessions
                .get(m.sessions.len().wrapping_sub(1 + rng.below(3) as usize))
            else {
                return;
            };
            let id = s.participants[rng.below(s.participants.len() as u64) as usize];
            if rng.below(3) == 0 {
                let got = engine.agents().remove(id).wait();
                assert_eq!(
                    got,
                    Ok(agents.remove(id)),
                    "{}",
                    ctx(&format!("remove participant {id}"))
                );
            } else {
                let state = random_state(rng);
                let got = engine.agents().update_acked(id, state).wait();
                let want = agents.update(id, state, now);
                assert_eq!(
                    got,
                    Ok(Ok(want)),
                    "{}",
                    ctx(&format!("update_acked participant {id}"))
                );
            }
        }
        _ => {
            engine.flush().unwrap();
            let id = m.pick(rng);
            assert_eq!(
                coord.status(id),
                Ok(m.status_want(id)),
                "{}",
                ctx(&format!("status {id:#x}"))
            );
            check_events(m, ctx);
        }
    }
}

/// Compares the coordination events received with the model's (after a flush).
pub fn check_events(m: &mut CoordinationModel, ctx: &dyn Fn(&str) -> String) {
    let mut got: Vec<View> = Vec::new();
    while let Some(e) = m.sub.try_recv() {
        let v = match &e.payload {
            Payload::CoordinationInitiated {
                session,
                participants,
            } => (*session, 0, *participants, None, e.timestamp),
            Payload::CoordinationCompleted(c) => (c.session, 1, 0, Some(c.clone()), e.timestamp),
            other => panic!(
                "{}",
                ctx(&format!("unexpected coordination event {other:?}"))
            ),
        };
        let topic = if v.1 == 0 {
            "coordination.initiated"
        } else {
            "coordination.completed"
        };
        assert_eq!(
            e.topic.to_string(),
            topic,
            "{}",
            ctx("coordination event topic")
        );
        assert_eq!(
            e.correlation,
            Some(v.0),
            "{}",
            ctx("coordination event correlation")
        );
        got.push(v);
    }
    assert_eq!(m.sub.lagged(), 0, "{}", ctx("coordination events lagged"));
    let mut want = std::mem::take(&mut m.events);
    // Sessions on different shards interleave; one session's events come in order.
    got.sort_by_key(|v| (v.0, v.1));
    want.sort_by_key(|v| (v.0, v.1));
    assert_eq!(got, want, "{}", ctx("coordination events"));
}
