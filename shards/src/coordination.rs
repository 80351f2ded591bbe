//! One coordination session: a group of agents acknowledging, or voting under a rule,
//! before a deadline.
//!
//! A [`Session`] is a deterministic state machine: no clock, no threads; every call takes
//! `now` (nanoseconds on the engine's clock). It starts [`SessionState::Collecting`] and
//! ends exactly once, in [`Decided`](SessionState::Decided),
//! [`NoDecision`](SessionState::NoDecision) or [`TimedOut`](SessionState::TimedOut); the
//! call that ends it returns the [`Completion`] (the engine publishes it as
//! `coordination.completed`).
//!
//! # Rules
//!
//! With `n` participants and `remaining` of them not yet responded:
//!
//! | protocol | decides when | ends with no decision when (early) |
//! |---|---|---|
//! | [`AllAcknowledge`](Protocol::AllAcknowledge) | all `n` acknowledged (no choice) | never |
//! | [`Majority`](Protocol::Majority) | a choice has `> n/2` votes | `top + remaining ≤ n/2` |
//! | [`Unanimous`](Protocol::Unanimous) | all `n` voted the same choice | the first vote that differs |
//! | [`Threshold`](Protocol::Threshold) | a choice has `≥ ⌈f·n/1000⌉` votes | `top + remaining < ⌈f·n/1000⌉` |
//!
//! (`top` is the largest vote count of any choice.) Votes decide the moment the rule is
//! met: each vote adds to one choice, so two choices can never reach the rule at once and
//! a decision has no tie. Ties only exist in the tallies: the *leading* choice
//! ([`SessionStatus::top`]) is the one that reached the top count first, and
//! [`Completion::votes`] lists choices by count, descending, ties in the order of their
//! first vote. A threshold with `f ≤ 500` could be met by two choices in the end; the one
//! that meets it first wins and ends the session.
//!
//! The deadline is exclusive: a response at `now < deadline` counts; at or after it the
//! response is refused with [`CoordinationError::DeadlinePassed`] and the session is left
//! untouched (errors never mutate) until [`Session::expire_if_due`] ends it as
//! [`TimedOut`](SessionState::TimedOut). A response at or after the deadline of a session
//! that already timed out is refused with `DeadlinePassed` too, so a late response gets
//! the same answer whether or not the expiry ran first; a response to a session that
//! ended before its deadline ([`Decided`](SessionState::Decided) or
//! [`NoDecision`](SessionState::NoDecision)) is refused with
//! [`CoordinationError::Completed`], at any time. The engine calls `expire_if_due` from
//! its timer sweep and when a response comes at or after the deadline.
//!
//! ```
//! use mabeam_shards::coordination::{Protocol, Session, SessionState};
//!
//! let mut session = Session::new(7, &[1, 2, 3], Protocol::Majority, 1_000, 0)
//!     .expect("valid session");
//! assert_eq!(session.vote(1, 42, 10), Ok(None));
//! let done = session.vote(3, 42, 20).expect("valid vote").expect("2 of 3 is a majority");
//! assert_eq!(done.state, SessionState::Decided);
//! assert_eq!(done.decided, Some(42));
//! assert_eq!(done.votes, vec![(42, 2)]);
//! ```

use std::fmt;

use hashbrown::HashMap;

/// Most participants a session accepts. Bounds a session's memory (a few words per
/// participant) and the size of a [`Completion`].
pub const MAX_PARTICIPANTS: usize = 1024;

/// Number of `u64` words of a [`SessionStatus`] as published through a seqlock.
pub const SESSION_STATUS_WORDS: usize = 7;

/// The rule a session decides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Protocol {
    /// Every participant acknowledges; nothing is chosen.
    AllAcknowledge,
    /// A choice wins with more than half of all participants' votes.
    Majority,
    /// A choice wins with every participant's vote.
    Unanimous,
    /// A choice wins with at least `⌈fraction_permille · n / 1000⌉` votes.
    Threshold {
        /// The fraction of participants, in thousandths, `1..=1000`.
        fraction_permille: u16,
    },
}

impl Protocol {
    /// Whether this protocol takes votes (all but [`AllAcknowledge`](Self::AllAcknowledge)).
    pub fn is_vote(self) -> bool {
        !matches!(self, Self::AllAcknowledge)
    }

    /// The vote count a choice needs to win among `participants`; for
    /// [`AllAcknowledge`](Self::AllAcknowledge), the acknowledgements needed.
    ///
    /// ```
    /// use mabeam_shards::coordination::Protocol;
    /// assert_eq!(Protocol::Majority.votes_needed(4), 3);
    /// assert_eq!(Protocol::Threshold { fraction_permille: 667 }.votes_needed(3), 3);
    /// assert_eq!(Protocol::Threshold { fraction_permille: 666 }.votes_needed(3), 2);
    /// ```
    pub fn votes_needed(self, participants: u32) -> u32 {
        match self {
            Self::AllAcknowledge | Self::Unanimous => participants,
            Self::Majority => participants / 2 + 1,
            Self::Threshold { fraction_permille } => {
                // Exact ceil(f * n / 1000) in u64: f <= 1000 and n <= 2^32, no overflow.
                let scaled = u64::from(fraction_permille) * u64::from(participants);
                let needed = scaled.div_ceil(1000);
                // needed <= n because f <= 1000; the fallback is unreachable.
                u32::try_from(needed).unwrap_or(participants)
            }
        }
    }

    fn tag(self) -> u64 {
        match self {
            Self::AllAcknowledge => 0,
            Self::Majority => 1,
            Self::Unanimous => 2,
            Self::Threshold { .. } => 3,
        }
    }

    fn permille(self) -> u16 {
        match self {
            Self::Threshold { fraction_permille } => fraction_permille,
            _ => 0,
        }
    }

    fn from_tag(tag: u64, permille: u16) -> Option<Self> {
        match tag {
            0 => Some(Self::AllAcknowledge),
            1 => Some(Self::Majority),
            2 => Some(Self::Unanimous),
            3 if (1..=1000).contains(&permille) => Some(Self::Threshold {
                fraction_permille: permille,
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllAcknowledge => f.write_str("all-acknowledge"),
            Self::Majority => f.write_str("majority"),
            Self::Unanimous => f.write_str("unanimous"),
            Self::Threshold { fraction_permille } => {
                write!(f, "threshold {fraction_permille}\u{2030}")
            }
        }
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SessionState {
    /// Taking responses.
    Collecting,
    /// The rule was met (for [`Protocol::AllAcknowledge`]: everyone acknowledged).
    Decided,
    /// Ended early: the rule can no longer be met.
    NoDecision,
    /// The deadline passed before the rule was met.
    TimedOut,
}

impl SessionState {
    fn tag(self) -> u64 {
        match self {
            Self::Collecting => 0,
            Self::Decided => 1,
            Self::NoDecision => 2,
            Self::TimedOut => 3,
        }
    }

    fn from_tag(tag: u64) -> Option<Self> {
        match tag {
            0 => Some(Self::Collecting),
            1 => Some(Self::Decided),
            2 => Some(Self::NoDecision),
            3 => Some(Self::TimedOut),
            _ => None,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Collecting => "collecting",
            Self::Decided => "decided",
            Self::NoDecision => "no decision",
            Self::TimedOut => "timed out",
        })
    }
}

/// Why a session could not be created or a response was refused. A refused call leaves
/// the session unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinationError {
    /// A session needs at least one participant.
    NoParticipants,
    /// More participants than [`MAX_PARTICIPANTS`].
    TooManyParticipants {
        /// The refused participant count.
        count: usize,
        /// The bound, [`MAX_PARTICIPANTS`].
        max: usize,
    },
    /// The same agent is listed twice.
    DuplicateParticipant {
        /// The repeated agent id.
        agent: u64,
    },
    /// The deadline is not after the creation time.
    DeadlineNotInFuture {
        /// The refused deadline.
        deadline: u64,
        /// The creation time.
        now: u64,
    },
    /// A threshold fraction outside `1..=1000` permille.
    InvalidThreshold {
        /// The refused fraction.
        fraction_permille: u16,
    },
    /// The agent is not a participant of this session.
    NotParticipant {
        /// The agent that responded.
        agent: u64,
    },
    /// The agent already acknowledged or voted.
    AlreadyResponded {
        /// The agent that responded twice.
        agent: u64,
    },
    /// An acknowledgement to a voting session, or a vote to an all-acknowledge session.
    WrongProtocol {
        /// The session's protocol.
        protocol: Protocol,
    },
    /// The session already ended: before its deadline (decided or no decision), or it
    /// timed out and the response came before the deadline (only possible for a caller
    /// whose clock went backwards; a late response gets [`DeadlinePassed`](Self::DeadlinePassed)).
    Completed {
        /// How it ended.
        state: SessionState,
    },
    /// The response came at or after the deadline, whether the session is still
    /// collecting (call [`Session::expire_if_due`]) or already timed out.
    DeadlinePassed {
        /// The session's deadline.
        deadline: u64,
        /// The response's time.
        now: u64,
    },
    /// No session with this id (never started, or evicted after it ended). Raised by the
    /// engine, which holds the sessions.
    UnknownSession {
        /// The id asked for.
        id: u64,
    },
    /// A participant is not a registered agent: no published agent record when the
    /// session was initiated. Raised by the engine, which creates nothing then.
    UnknownAgent {
        /// The first participant (in the order given) found unknown.
        agent: u64,
    },
    /// The engine already has its maximum of open sessions. Raised by the engine.
    TooManySessions {
        /// The bound that was hit.
        limit: usize,
    },
    /// The engine could not carry out the call.
    Engine(crate::Error),
}

impl fmt::Display for CoordinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownSession { id } => write!(f, "no coordination session {id}"),
            Self::UnknownAgent { agent } => {
                write!(f, "agent {agent} is not a registered agent")
            }
            Self::TooManySessions { limit } => {
                write!(f, "the engine already has {limit} open sessions")
            }
            Self::Engine(e) => e.fmt(f),
            Self::NoParticipants => f.write_str("a coordination session needs participants"),
            Self::TooManyParticipants { count, max } => {
                write!(f, "{count} participants exceed the bound of {max}")
            }
            Self::DuplicateParticipant { agent } => {
                write!(f, "agent {agent} is listed twice")
            }
            Self::DeadlineNotInFuture { deadline, now } => {
                write!(f, "deadline {deadline} is not after now ({now})")
            }
            Self::InvalidThreshold { fraction_permille } => write!(
                f,
                "threshold {fraction_permille} permille is outside 1..=1000"
            ),
            Self::NotParticipant { agent } => {
                write!(f, "agent {agent} is not a participant")
            }
            Self::AlreadyResponded { agent } => {
                write!(f, "agent {agent} already responded")
            }
            Self::WrongProtocol { protocol } => {
                write!(f, "response does not fit the {protocol} protocol")
            }
            Self::Completed { state } => write!(f, "session already ended ({state})"),
            Self::DeadlinePassed { deadline, now } => {
                write!(f, "response at {now} is not before the deadline {deadline}")
            }
        }
    }
}

impl From<crate::Error> for CoordinationError {
    fn from(e: crate::Error) -> Self {
        Self::Engine(e)
    }
}

impl std::error::Error for CoordinationError {}

/// How a session ended, returned once by the call that ended it (and afterwards by
/// [`Session::completion`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Completion {
    /// The session id.
    pub session: u64,
    /// The session's protocol.
    pub protocol: Protocol,
    /// [`Decided`](SessionState::Decided), [`NoDecision`](SessionState::NoDecision) or
    /// [`TimedOut`](SessionState::TimedOut).
    pub state: SessionState,
    /// The winning choice; `None` unless a vote protocol decided.
    pub decided: Option<u32>,
    /// `(choice, votes)` for every choice voted for, by votes descending, ties in the
    /// order of each choice's first vote. At most one entry per participant.
    pub votes: Vec<(u32, u32)>,
    /// Number of participants.
    pub participants: u32,
    /// Participants that acknowledged or voted.
    pub responses: u32,
    /// When it ended (the `now` of the ending call).
    pub at: u64,
}

impl Completion {
    /// Whether the rule was met.
    pub fn reached(&self) -> bool {
        self.state == SessionState::Decided
    }

    /// Whether the deadline ended it.
    pub fn timed_out(&self) -> bool {
        self.state == SessionState::TimedOut
    }
}

/// A fixed-size, `Copy` view of a session, publishable through a seqlock as
/// [`SESSION_STATUS_WORDS`] words ([`to_words`](Self::to_words) /
/// [`from_words`](Self::from_words)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// The session id.
    pub id: u64,
    /// The session's protocol.
    pub protocol: Protocol,
    /// Where the session is.
    pub state: SessionState,
    /// Number of participants.
    pub participants: u32,
    /// Participants that acknowledged or voted.
    pub responses: u32,
    /// The winning choice, once decided by a vote.
    pub decided: Option<u32>,
    /// The leading `(choice, votes)`: most votes, ties to the choice that got there first.
    pub top: Option<(u32, u32)>,
    /// The deadline (exclusive).
    pub deadline: u64,
    /// When the session ended.
    pub completed_at: Option<u64>,
}

const FLAG_DECIDED: u64 = 1 << 40;
const FLAG_TOP: u64 = 1 << 41;
const FLAG_COMPLETED: u64 = 1 << 42;

impl SessionStatus {
    /// Encodes the status as words:
    ///
    /// | word | content |
    /// |---|---|
    /// | 0 | id |
    /// | 1 | protocol tag (bits 0..8), threshold permille (16..32), state (32..40), flags: decided (40), top (41), completed (42) |
    /// | 2 | participants (bits 0..32), responses (32..64) |
    /// | 3 | decided choice (bits 0..32), top choice (32..64) |
    /// | 4 | top votes |
    /// | 5 | deadline |
    /// | 6 | completed at |
    pub fn to_words(&self) -> [u64; SESSION_STATUS_WORDS] {
        let mut flags = 0;
        if self.decided.is_some() {
            flags |= FLAG_DECIDED;
        }
        if self.top.is_some() {
            flags |= FLAG_TOP;
        }
        if self.completed_at.is_some() {
            flags |= FLAG_COMPLETED;
        }
        let (top_choice, top_votes) = self.top.unwrap_or((0, 0));
        [
            self.id,
            self.protocol.tag()
                | u64::from(self.protocol.permille()) << 16
                | self.state.tag() << 32
                | flags,
            u64::from(self.participants) | u64::from(self.responses) << 32,
            u64::from(self.decided.unwrap_or(0)) | u64::from(top_choice) << 32,
            u64::from(top_votes),
            self.deadline,
            self.completed_at.unwrap_or(0),
        ]
    }

    /// Decodes words written by [`to_words`](Self::to_words); `None` if they hold an
    /// unknown protocol or state tag (they were not written by `to_words`).
    pub fn from_words(words: &[u64; SESSION_STATUS_WORDS]) -> Option<Self> {
        let meta = words[1];
        let permille = u16::try_from((meta >> 16) & 0xFFFF).ok()?;
        let protocol = Protocol::from_tag(meta & 0xFF, permille)?;
        let state = SessionState::from_tag((meta >> 32) & 0xFF)?;
        let low = |word: u64| u32::try_from(word & 0xFFFF_FFFF).ok();
        let high = |word: u64| u32::try_from(word >> 32).ok();
        Some(Self {
            id: words[0],
            protocol,
            state,
            participants: low(words[2])?,
            responses: high(words[2])?,
            decided: if meta & FLAG_DECIDED != 0 {
                Some(low(words[3])?)
            } else {
                None
            },
            top: if meta & FLAG_TOP != 0 {
                Some((high(words[3])?, u32::try_from(words[4]).ok()?))
            } else {
                None
            },
            deadline: words[5],
            completed_at: (meta & FLAG_COMPLETED != 0).then_some(words[6]),
        })
    }
}

/// What one participant has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Response {
    Pending,
    Acknowledged,
    Voted,
}

/// A session as plain data, for export and restore: [`Session::to_parts`] and
/// [`Session::from_parts`] round-trip exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionParts {
    /// The session id.
    pub id: u64,
    /// Its protocol.
    pub protocol: Protocol,
    /// Participants, in the order given at creation.
    pub participants: Vec<u64>,
    /// Per participant (same order): 0 pending, 1 acknowledged, 2 voted.
    pub responses: Vec<u8>,
    /// `(choice, votes)` per choice voted for, in order of first vote.
    pub tally: Vec<(u32, u32)>,
    /// The index in `tally` of the leading choice.
    pub top: Option<u32>,
    /// Its state.
    pub state: SessionState,
    /// The decided choice.
    pub decided: Option<u32>,
    /// The deadline (exclusive).
    pub deadline: u64,
    /// When it ended.
    pub completed_at: Option<u64>,
}

/// One coordination session; see the [module documentation](self) for the rules.
///
/// Invariants: `participants` holds `1..=MAX_PARTICIPANTS` distinct ids and `position`
/// maps each to its index; `responses` counts the non-`Pending` entries of `response`;
/// `tally` holds one `(choice, votes)` per choice voted for, in order of first vote, with
/// `tally_index` mapping choices to their entry; `top` indexes the entry with the most
/// votes (the earliest among equals); `state != Collecting` exactly when `completed_at`
/// is set.
#[derive(Debug, Clone)]
pub struct Session {
    id: u64,
    protocol: Protocol,
    participants: Vec<u64>,
    position: HashMap<u64, usize>,
    response: Vec<Response>,
    responses: u32,
    tally: Vec<(u32, u32)>,
    tally_index: HashMap<u32, usize>,
    top: Option<usize>,
    state: SessionState,
    decided: Option<u32>,
    deadline: u64,
    completed_at: Option<u64>,
}

impl Session {
    /// A session `id` among `participants` (in the given order, distinct, at most
    /// [`MAX_PARTICIPANTS`]) that must end before `deadline` (exclusive, after `now`).
    pub fn new(
        id: u64,
        participants: &[u64],
        protocol: Protocol,
        deadline: u64,
        now: u64,
    ) -> Result<Self, CoordinationError> {
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
        let mut position = HashMap::with_capacity(participants.len());
        for (index, &agent) in participants.iter().enumerate() {
            if position.insert(agent, index).is_some() {
                return Err(CoordinationError::DuplicateParticipant { agent });
            }
        }
        Ok(Self {
            id,
            protocol,
            participants: participants.to_vec(),
            position,
            response: vec![Response::Pending; participants.len()],
            responses: 0,
            tally: Vec::new(),
            tally_index: HashMap::new(),
            top: None,
            state: SessionState::Collecting,
            decided: None,
            deadline,
            completed_at: None,
        })
    }

    /// The session as plain data.
    pub fn to_parts(&self) -> SessionParts {
        SessionParts {
            id: self.id,
            protocol: self.protocol,
            participants: self.participants.clone(),
            responses: self
                .response
                .iter()
                .map(|r| match r {
                    Response::Pending => 0,
                    Response::Acknowledged => 1,
                    Response::Voted => 2,
                })
                .collect(),
            tally: self.tally.clone(),
            top: self.top.and_then(|t| u32::try_from(t).ok()),
            state: self.state,
            decided: self.decided,
            deadline: self.deadline,
            completed_at: self.completed_at,
        }
    }

    /// Rebuilds a session from [`to_parts`](Self::to_parts), checking every invariant
    /// of [`Session`]; the error says which one is broken.
    pub fn from_parts(parts: SessionParts) -> Result<Self, &'static str> {
        let n = parts.participants.len();
        if n == 0 || n > MAX_PARTICIPANTS {
            return Err("participants outside 1..=MAX_PARTICIPANTS");
        }
        if parts.responses.len() != n {
            return Err("one response per participant");
        }
        if let Protocol::Threshold { fraction_permille } = parts.protocol {
            if !(1..=1000).contains(&fraction_permille) {
                return Err("threshold outside 1..=1000 permille");
            }
        }
        let mut position = HashMap::with_capacity(n);
        for (index, &agent) in parts.participants.iter().enumerate() {
            if position.insert(agent, index).is_some() {
                return Err("duplicate participant");
            }
        }
        let mut response = Vec::with_capacity(n);
        let (mut acks, mut votes) = (0u64, 0u64);
        for &r in &parts.responses {
            response.push(match r {
                0 => Response::Pending,
                1 => {
                    acks += 1;
                    Response::Acknowledged
                }
                2 => {
                    votes += 1;
                    Response::Voted
                }
                _ => return Err("unknown response code"),
            });
        }
        if (parts.protocol.is_vote() && acks > 0) || (!parts.protocol.is_vote() && votes > 0) {
            return Err("responses of the wrong protocol");
        }
        let mut tally_index = HashMap::with_capacity(parts.tally.len());
        let mut tallied = 0u64;
        for (index, &(choice, count)) in parts.tally.iter().enumerate() {
            if count == 0 || tally_index.insert(choice, index).is_some() {
                return Err("tally with a zero count or a choice twice");
            }
            tallied += u64::from(count);
        }
        if tallied != votes {
            return Err("tally does not add up to the votes");
        }
        let top = match parts.top {
            None if parts.tally.is_empty() => None,
            Some(t) if (t as usize) < parts.tally.len() => {
                let best = parts.tally.iter().map(|&(_, c)| c).max().unwrap_or(0);
                if parts.tally[t as usize].1 != best {
                    return Err("top is not a leading choice");
                }
                Some(t as usize)
            }
            _ => return Err("top outside the tally"),
        };
        if (parts.state == SessionState::Collecting) != parts.completed_at.is_none() {
            return Err("end time inconsistent with the state");
        }
        Ok(Self {
            id: parts.id,
            protocol: parts.protocol,
            participants: parts.participants,
            position,
            response,
            responses: u32::try_from(acks + votes).unwrap_or(u32::MAX),
            tally: parts.tally,
            tally_index,
            top,
            state: parts.state,
            decided: parts.decided,
            deadline: parts.deadline,
            completed_at: parts.completed_at,
        })
    }

    /// Records `agent`'s acknowledgement (only for [`Protocol::AllAcknowledge`]). Returns
    /// the completion if this was the last one.
    pub fn acknowledge(
        &mut self,
        agent: u64,
        now: u64,
    ) -> Result<Option<Completion>, CoordinationError> {
        let index = self.validate_response(agent, now)?;
        if self.protocol.is_vote() {
            return Err(CoordinationError::WrongProtocol {
                protocol: self.protocol,
            });
        }
        self.response[index] = Response::Acknowledged;
        self.responses += 1;
        if self.responses == self.participant_count() {
            return Ok(Some(self.finish(SessionState::Decided, None, now)));
        }
        Ok(None)
    }

    /// Records `agent`'s vote for `choice` (vote protocols only). Returns the completion if
    /// this vote decided the session or made a decision impossible.
    pub fn vote(
        &mut self,
        agent: u64,
        choice: u32,
        now: u64,
    ) -> Result<Option<Completion>, CoordinationError> {
        let index = self.validate_response(agent, now)?;
        if !self.protocol.is_vote() {
            return Err(CoordinationError::WrongProtocol {
                protocol: self.protocol,
            });
        }
        self.response[index] = Response::Voted;
        self.responses += 1;
        let votes = self.count_vote(choice);

        let n = self.participant_count();
        let needed = self.protocol.votes_needed(n);
        if votes >= needed {
            return Ok(Some(self.finish(SessionState::Decided, Some(choice), now)));
        }
        let impossible = match self.protocol {
            // The first differing vote: two choices now have votes.
            Protocol::Unanimous => self.tally.len() > 1,
            _ => self.top_votes() + (n - self.responses) < needed,
        };
        if impossible {
            return Ok(Some(self.finish(SessionState::NoDecision, None, now)));
        }
        Ok(None)
    }

    /// Ends the session as [`TimedOut`](SessionState::TimedOut) if it is still collecting
    /// and `now` is at or after the deadline; returns the completion if it did.
    pub fn expire_if_due(&mut self, now: u64) -> Option<Completion> {
        if self.state == SessionState::Collecting && now >= self.deadline {
            Some(self.finish(SessionState::TimedOut, None, now))
        } else {
            None
        }
    }

    /// The fixed-size view of the session.
    pub fn status(&self) -> SessionStatus {
        SessionStatus {
            id: self.id,
            protocol: self.protocol,
            state: self.state,
            participants: self.participant_count(),
            responses: self.responses,
            decided: self.decided,
            top: self.top.map(|index| self.tally[index]),
            deadline: self.deadline,
            completed_at: self.completed_at,
        }
    }

    /// How the session ended; `None` while it is collecting.
    pub fn completion(&self) -> Option<Completion> {
        let at = self.completed_at?;
        let mut votes = self.tally.clone();
        // Stable: equal counts keep first-vote order.
        votes.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
        Some(Completion {
            session: self.id,
            protocol: self.protocol,
            state: self.state,
            decided: self.decided,
            votes,
            participants: self.participant_count(),
            responses: self.responses,
            at,
        })
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The session's protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The deadline (exclusive).
    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    /// The participants, in the order given at creation.
    pub fn participants(&self) -> &[u64] {
        &self.participants
    }

    /// Whether `agent` has acknowledged or voted.
    pub fn has_responded(&self, agent: u64) -> bool {
        self.position
            .get(&agent)
            .is_some_and(|&index| self.response[index] != Response::Pending)
    }

    fn participant_count(&self) -> u32 {
        // At most MAX_PARTICIPANTS, checked in `new`.
        u32::try_from(self.participants.len()).unwrap_or(u32::MAX)
    }

    fn top_votes(&self) -> u32 {
        self.top.map_or(0, |index| self.tally[index].1)
    }

    /// Checks everything common to a response; returns the participant's index.
    fn validate_response(&self, agent: u64, now: u64) -> Result<usize, CoordinationError> {
        // Late is late whether or not the session was expired yet: the answer does not
        // depend on when a timer sweep ran. A session that ended before its deadline
        // says how it ended.
        let open_until_deadline = matches!(
            self.state,
            SessionState::Collecting | SessionState::TimedOut
        );
        if open_until_deadline && now >= self.deadline {
            return Err(CoordinationError::DeadlinePassed {
                deadline: self.deadline,
                now,
            });
        }
        if self.state != SessionState::Collecting {
            return Err(CoordinationError::Completed { state: self.state });
        }
        let index = *self
            .position
            .get(&agent)
            .ok_or(CoordinationError::NotParticipant { agent })?;
        if self.response[index] != Response::Pending {
            return Err(CoordinationError::AlreadyResponded { agent });
        }
        Ok(index)
    }

    /// Adds one vote for `choice`; returns its new count and keeps `top` up to date.
    fn count_vote(&mut self, choice: u32) -> u32 {
        let index = *self.tally_index.entry(choice).or_insert_with(|| {
            self.tally.push((choice, 0));
            self.tally.len() - 1
        });
        self.tally[index].1 += 1;
        let votes = self.tally[index].1;
        // Strictly more: among equal counts the earlier leader stays on top.
        if votes > self.top_votes() {
            self.top = Some(index);
        }
        votes
    }

    fn finish(&mut self, state: SessionState, decided: Option<u32>, now: u64) -> Completion {
        self.state = state;
        self.decided = decided;
        self.completed_at = Some(now);
        // The fields above were just set, so the completion exists.
        self.completion().unwrap_or_else(|| Completion {
            session: self.id,
            protocol: self.protocol,
            state,
            decided,
            votes: Vec::new(),
            participants: self.participant_count(),
            responses: self.responses,
            at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEADLINE: u64 = 1_000;

    fn session(participants: &[u64], protocol: Protocol) -> Session {
        Session::new(1, participants, protocol, DEADLINE, 0).expect("valid session")
    }

    #[test]
    fn creation_is_validated() {
        let new = |p: &[u64], protocol, deadline, now| Session::new(1, p, protocol, deadline, now);
        assert_eq!(
            new(&[], Protocol::Majority, 10, 0).err(),
            Some(CoordinationError::NoParticipants)
        );
        assert_eq!(
            new(&[1, 2, 1], Protocol::Majority, 10, 0).err(),
            Some(CoordinationError::DuplicateParticipant { agent: 1 })
        );
        let many: Vec<u64> = (0..=MAX_PARTICIPANTS as u64).collect();
        assert_eq!(
            new(&many, Protocol::Majority, 10, 0).err(),
            Some(CoordinationError::TooManyParticipants {
                count: MAX_PARTICIPANTS + 1,
                max: MAX_PARTICIPANTS
            })
        );
        assert!(new(&many[..MAX_PARTICIPANTS], Protocol::Majority, 10, 0).is_ok());
        assert_eq!(
            new(&[1], Protocol::Majority, 5, 5).err(),
            Some(CoordinationError::DeadlineNotInFuture {
                deadline: 5,
                now: 5
            })
        );
        for bad in [0, 1001] {
            assert_eq!(
                new(
                    &[1],
                    Protocol::Threshold {
                        fraction_permille: bad
                    },
                    10,
                    0
                )
                .err(),
                Some(CoordinationError::InvalidThreshold {
                    fraction_permille: bad
                })
            );
        }
        let s = new(&[3, 1, 2], Protocol::Unanimous, 10, 0).expect("valid");
        assert_eq!(s.participants(), &[3, 1, 2]);
        assert_eq!(s.deadline(), 10);
        assert_eq!(s.status().state, SessionState::Collecting);
    }

    #[test]
    fn all_acknowledge_decides_when_everyone_acknowledged() {
        let mut s = session(&[1, 2, 3], Protocol::AllAcknowledge);
        assert_eq!(s.acknowledge(2, 1), Ok(None));
        assert_eq!(s.acknowledge(1, 2), Ok(None));
        assert!(s.has_responded(1) && !s.has_responded(3));
        let done = s
            .acknowledge(3, 3)
            .expect("valid")
            .expect("last ack completes");
        assert!(done.reached() && !done.timed_out());
        assert_eq!(done.decided, None);
        assert_eq!((done.participants, done.responses, done.at), (3, 3, 3));
        assert!(done.votes.is_empty());
        assert_eq!(s.completion(), Some(done));
        assert_eq!(
            s.acknowledge(3, 4),
            Err(CoordinationError::Completed {
                state: SessionState::Decided
            })
        );
    }

    #[test]
    fn responses_are_validated_without_mutating() {
        let mut ack = session(&[1, 2], Protocol::AllAcknowledge);
        assert_eq!(
            ack.vote(1, 5, 1),
            Err(CoordinationError::WrongProtocol {
                protocol: Protocol::AllAcknowledge
            })
        );
        assert_eq!(ack.status().responses, 0, "a refused vote does not count");
        assert_eq!(
            ack.acknowledge(9, 1),
            Err(CoordinationError::NotParticipant { agent: 9 })
        );
        assert_eq!(ack.acknowledge(1, 1), Ok(None));
        assert_eq!(
            ack.acknowledge(1, 2),
            Err(CoordinationError::AlreadyResponded { agent: 1 })
        );

        let mut vote = session(&[1, 2, 3], Protocol::Majority);
        assert_eq!(
            vote.acknowledge(1, 1),
            Err(CoordinationError::WrongProtocol {
                protocol: Protocol::Majority
            })
        );
        assert_eq!(vote.vote(1, 7, 1), Ok(None));
        assert_eq!(
            vote.vote(1, 8, 2),
            Err(CoordinationError::AlreadyResponded { agent: 1 })
        );
        assert_eq!(
            vote.vote(4, 7, 2),
            Err(CoordinationError::NotParticipant { agent: 4 })
        );
        assert_eq!(vote.status().responses, 1);
        assert_eq!(vote.status().top, Some((7, 1)));
    }

    #[test]
    fn majority_decides_above_half() {
        let mut s = session(&[1, 2, 3, 4], Protocol::Majority);
        assert_eq!(s.vote(1, 9, 1), Ok(None));
        assert_eq!(s.vote(2, 9, 2), Ok(None), "2 of 4 is not more than half");
        let done = s.vote(4, 9, 3).expect("valid").expect("3 of 4 decides");
        assert_eq!(done.state, SessionState::Decided);
        assert_eq!(done.decided, Some(9));
        assert_eq!(done.votes, vec![(9, 3)]);
        assert_eq!(done.responses, 3);
        let status = s.status();
        assert_eq!(status.decided, Some(9));
        assert_eq!(status.completed_at, Some(3));
        assert_eq!(
            s.vote(3, 9, 4),
            Err(CoordinationError::Completed {
                state: SessionState::Decided
            })
        );
    }

    #[test]
    fn majority_ends_early_when_no_choice_can_pass_half() {
        // 4 voters: a 2-2 split can never reach 3.
        let mut s = session(&[1, 2, 3, 4], Protocol::Majority);
        assert_eq!(s.vote(1, 1, 1), Ok(None));
        assert_eq!(
            s.vote(2, 2, 2),
            Ok(None),
            "1 + 2 remaining can still reach 3"
        );
        assert_eq!(
            s.vote(3, 1, 3),
            Ok(None),
            "2 + 1 remaining can still reach 3"
        );
        let done = s.vote(4, 2, 4).expect("valid").expect("2-2 is final");
        assert_eq!(done.state, SessionState::NoDecision);
        assert_eq!(done.decided, None);
        assert_eq!(done.votes, vec![(1, 2), (2, 2)], "ties in first-vote order");

        // 5 voters, three different choices among the first three: top 1 + 2 remaining
        // reaches exactly 3, still possible; a fourth distinct choice makes it impossible.
        let mut s = session(&[1, 2, 3, 4, 5], Protocol::Majority);
        for (agent, choice) in [(1, 10), (2, 20), (3, 30)] {
            assert_eq!(s.vote(agent, choice, agent), Ok(None));
        }
        let done = s.vote(4, 40, 4).expect("valid").expect("1 + 1 < 3");
        assert_eq!(done.state, SessionState::NoDecision);
        assert_eq!(done.responses, 4);
    }

    #[test]
    fn unanimous_needs_everyone_and_stops_at_the_first_difference() {
        let mut s = session(&[1, 2, 3], Protocol::Unanimous);
        assert_eq!(s.vote(1, 5, 1), Ok(None));
        assert_eq!(s.vote(2, 5, 2), Ok(None));
        let done = s.vote(3, 5, 3).expect("valid").expect("all agree");
        assert_eq!((done.state, done.decided), (SessionState::Decided, Some(5)));

        let mut s = session(&[1, 2, 3], Protocol::Unanimous);
        assert_eq!(s.vote(1, 5, 1), Ok(None));
        let done = s
            .vote(2, 6, 2)
            .expect("valid")
            .expect("first difference ends it");
        assert_eq!(done.state, SessionState::NoDecision);
        assert_eq!(done.votes, vec![(5, 1), (6, 1)]);

        let mut single = session(&[42], Protocol::Unanimous);
        let done = single.vote(42, 0, 1).expect("valid").expect("one voter");
        assert_eq!(done.decided, Some(0));
    }

    #[test]
    fn threshold_uses_exact_ceiling() {
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 1000
            }
            .votes_needed(7),
            7
        );
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 1
            }
            .votes_needed(7),
            1
        );
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 500
            }
            .votes_needed(4),
            2
        );
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 501
            }
            .votes_needed(4),
            3
        );
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 750
            }
            .votes_needed(4),
            3
        );
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 751
            }
            .votes_needed(4),
            4
        );
        assert_eq!(Protocol::Majority.votes_needed(5), 3);
        assert_eq!(Protocol::Majority.votes_needed(1), 1);
        assert_eq!(
            Protocol::Threshold {
                fraction_permille: 1000
            }
            .votes_needed(MAX_PARTICIPANTS as u32),
            MAX_PARTICIPANTS as u32
        );
    }

    #[test]
    fn threshold_decides_and_ends_early() {
        // 75% of 4 = 3 votes.
        let threshold = Protocol::Threshold {
            fraction_permille: 750,
        };
        let mut s = session(&[1, 2, 3, 4], threshold);
        assert_eq!(s.vote(1, 1, 1), Ok(None));
        assert_eq!(s.vote(2, 1, 2), Ok(None));
        let done = s.vote(3, 1, 3).expect("valid").expect("3 of 4");
        assert_eq!((done.state, done.decided), (SessionState::Decided, Some(1)));

        let mut s = session(&[1, 2, 3, 4], threshold);
        assert_eq!(s.vote(1, 1, 1), Ok(None));
        assert_eq!(
            s.vote(2, 2, 2),
            Ok(None),
            "1 + 2 remaining can still reach 3"
        );
        let done = s
            .vote(3, 3, 3)
            .expect("valid")
            .expect("1 + 1 remaining < 3");
        assert_eq!(done.state, SessionState::NoDecision);

        // A low threshold: the first choice to reach it wins, even if another could too.
        let low = Protocol::Threshold {
            fraction_permille: 250,
        };
        let mut s = session(&[1, 2, 3, 4, 5, 6, 7, 8], low);
        assert_eq!(s.vote(1, 1, 1), Ok(None));
        assert_eq!(s.vote(2, 2, 2), Ok(None));
        let done = s.vote(3, 2, 3).expect("valid").expect("2 of 8 reaches 25%");
        assert_eq!(done.decided, Some(2));
        assert_eq!(done.votes, vec![(2, 2), (1, 1)]);
    }

    #[test]
    fn deadline_is_exclusive_and_expiry_times_out() {
        let mut s = session(&[1, 2], Protocol::Majority);
        assert_eq!(s.expire_if_due(DEADLINE - 1), None);
        assert_eq!(
            s.vote(1, 3, DEADLINE - 1),
            Ok(None),
            "just before the deadline counts"
        );
        assert_eq!(
            s.vote(2, 3, DEADLINE),
            Err(CoordinationError::DeadlinePassed {
                deadline: DEADLINE,
                now: DEADLINE
            })
        );
        assert_eq!(
            s.status().state,
            SessionState::Collecting,
            "errors never mutate"
        );
        let done = s.expire_if_due(DEADLINE).expect("due");
        assert!(done.timed_out() && !done.reached());
        assert_eq!(done.decided, None);
        assert_eq!(done.votes, vec![(3, 1)]);
        assert_eq!((done.responses, done.at), (1, DEADLINE));
        assert_eq!(s.expire_if_due(DEADLINE + 1), None, "ends only once");
        assert_eq!(
            s.vote(2, 3, DEADLINE + 1),
            Err(CoordinationError::DeadlinePassed {
                deadline: DEADLINE,
                now: DEADLINE + 1
            }),
            "a late response after expiry is still late"
        );
        assert_eq!(
            s.vote(2, 3, 5),
            Err(CoordinationError::Completed {
                state: SessionState::TimedOut
            })
        );

        let mut decided = session(&[1], Protocol::AllAcknowledge);
        assert!(decided.acknowledge(1, 5).expect("valid").is_some());
        assert_eq!(
            decided.expire_if_due(DEADLINE * 2),
            None,
            "a decided session stays decided"
        );
        let mut early = session(&[1, 2], Protocol::AllAcknowledge);
        assert_eq!(early.acknowledge(1, 1), Ok(None));
        assert!(early.acknowledge(2, 2).expect("valid").is_some());
        assert_eq!(
            early.acknowledge(2, DEADLINE * 2),
            Err(CoordinationError::Completed {
                state: SessionState::Decided
            }),
            "a session that ended before its deadline says how it ended"
        );
    }

    #[test]
    fn top_keeps_the_earliest_among_equals() {
        let mut s = session(&[1, 2, 3, 4, 5, 6], Protocol::Majority);
        assert_eq!(s.vote(1, 8, 1), Ok(None));
        assert_eq!(s.vote(2, 7, 2), Ok(None));
        assert_eq!(s.status().top, Some((8, 1)));
        assert_eq!(s.vote(3, 7, 3), Ok(None));
        assert_eq!(s.status().top, Some((7, 2)));
        assert_eq!(s.vote(4, 8, 4), Ok(None));
        assert_eq!(
            s.status().top,
            Some((7, 2)),
            "8 only ties, 7 got there first"
        );
    }

    #[test]
    fn status_round_trips_through_words() {
        let mut s = Session::new(
            u64::MAX,
            &[1, 2, 3],
            Protocol::Threshold {
                fraction_permille: 667,
            },
            u64::MAX,
            0,
        )
        .expect("valid");
        let collecting = s.status();
        assert_eq!(
            SessionStatus::from_words(&collecting.to_words()),
            Some(collecting)
        );
        s.vote(1, u32::MAX, 1).expect("valid");
        s.vote(2, u32::MAX, 2).expect("valid");
        let done = s.vote(3, u32::MAX, 3).expect("valid").expect("3 of 3");
        assert_eq!(done.decided, Some(u32::MAX));
        let status = s.status();
        assert_eq!(status.top, Some((u32::MAX, 3)));
        assert_eq!(SessionStatus::from_words(&status.to_words()), Some(status));
        for protocol in [
            Protocol::AllAcknowledge,
            Protocol::Majority,
            Protocol::Unanimous,
        ] {
            let status = session(&[1], protocol).status();
            assert_eq!(SessionStatus::from_words(&status.to_words()), Some(status));
        }
        let mut garbage = status.to_words();
        garbage[1] |= 0xFF;
        assert_eq!(SessionStatus::from_words(&garbage), None);
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            CoordinationError::UnknownAgent { agent: 8888 }.to_string(),
            "agent 8888 is not a registered agent"
        );
        assert_eq!(
            CoordinationError::NotParticipant { agent: 4 }.to_string(),
            "agent 4 is not a participant"
        );
        assert_eq!(
            CoordinationError::WrongProtocol {
                protocol: Protocol::Threshold {
                    fraction_permille: 500
                }
            }
            .to_string(),
            "response does not fit the threshold 500\u{2030} protocol"
        );
    }
}
