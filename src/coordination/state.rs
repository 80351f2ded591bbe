//! Export and restore of one shard's coordination sessions.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use mabeam_shards::coordination::{Session, SessionParts, SessionState};

use super::{CoordinationShard, CoordinationShared};

impl CoordinationShard {
    /// Every session this shard holds (collecting and retained ended ones).
    pub(crate) fn export_sessions(&self) -> Vec<SessionParts> {
        self.sessions.values().map(Session::to_parts).collect()
    }

    /// Puts exported sessions (those this shard owns) back and publishes them: ended
    /// ones join the retention in the order they ended (ties by id). Counts the
    /// collecting ones as open. The caller checked the retention bound.
    pub(crate) fn restore_sessions(
        &mut self,
        mut parts: Vec<SessionParts>,
    ) -> Result<(), &'static str> {
        parts.sort_by_key(|p| (p.completed_at, p.id));
        for p in parts {
            let session = Session::from_parts(p)?;
            let id = session.id();
            let status = session.status();
            if self.sessions.contains_key(&id) {
                return Err("session id twice");
            }
            if status.state == SessionState::Collecting {
                self.deadlines.push(Reverse((session.deadline(), id)));
                self.open.fetch_add(1, Ordering::Relaxed);
            } else {
                self.ended.push_back(id);
            }
            self.table.insert(id, status.to_words());
            self.sessions.insert(id, session);
        }
        Ok(())
    }
}

impl CoordinationShared {
    /// The next session sequence.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Continues the session sequence at `next` (never lower than it is).
    pub(crate) fn continue_at(&self, next: u64) {
        self.next.fetch_max(next, Ordering::Relaxed);
    }
}
