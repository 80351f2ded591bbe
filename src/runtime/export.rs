//! The export protocol: one consistent cut of every shard's state, taken while the
//! engine runs.
//!
//! # What "consistent" means here
//!
//! The cut is a set of applied commands: the state every shard reports is the state
//! after exactly those commands, and
//!
//! 1. every write whose call returned `Ok` before [`Runtime::export_with`] was called is in
//!    it (and, transitively, everything it made one shard send to another);
//! 2. it is prefix-closed per sending thread: if a thread's write is in it, so is every
//!    earlier write of that thread, on whatever shard;
//! 3. it is closed under shard-to-shard causality: if a command is in it, every lane
//!    message it produced has been applied in it too (a sale and its market feed are
//!    both in the state or both out of it), and no lane message of a command outside it
//!    has been applied.
//!
//! # The protocol
//!
//! 1. **Pause admission** on every mailbox ([`Mailbox::pause`]): from then on no sender
//!    reserves (senders wait as for a full mailbox; `try_` sends get `Busy`), and control
//!    messages are accepted but deferred. What a shard can still pop is what was
//!    admitted before the pause — at most one in-flight message per sending thread —
//!    and the exporter's markers.
//! 2. **Freeze round.** An exempt [`Envelope::Export`] marker goes to every shard. A
//!    shard applies its batch as usual; at the end of the batch that holds the marker it
//!    is *frozen*: it takes no more host messages and runs no more timers, and keeps
//!    applying its lanes. It answers the marker like a flush: only once everything its
//!    last batch forwarded is in the target lanes.
//! 3. **Quiesce.** Once every shard answered, no shard can produce a lane message (no
//!    host input, no timers; lane handlers forward nothing in this engine), so the
//!    runtime-wide count of lane messages in flight ([`Termination::inflight`],
//!    counted from production to application) only falls; the exporter waits for zero.
//! 4. **Snapshot.** The exporter sets the phase to `SNAPSHOT` and rings every shard;
//!    each frozen shard, with its lanes empty, calls [`ShardState::export`] and hands the
//!    result over.
//! 5. **Thaw and resume** (also on every error path, by a drop guard): the phase goes to
//!    `THAW`, shards unfreeze, then every mailbox resumes (deferred control messages go
//!    to their queues, waiting senders are woken).
//!
//! Why this gives 1–3: a write acknowledged before the call was pushed before the pause,
//! so before the marker, so it is applied before its shard froze. For 2: a thread's later
//! write is admitted only if its reservation read the mailbox before the pause; its
//! earlier write had then returned before that, so it too was pushed before every marker
//! (markers go out after every mailbox is paused). For 3: every shard froze before the
//! snapshot and nothing was in flight when it was taken, so every lane message produced
//! in the cut was applied before the snapshot, and nothing produced after the freeze
//! exists.
//!
//! Costs: while an export runs, writers wait (up to `send_timeout`, then `Busy`) and
//! timers (auction deadlines, vote deadlines) fire late, by the duration of the export.
//! Exports are serialised (one at a time per engine).
//!
//! [`Mailbox::pause`]: mabeam_shards::mailbox::Mailbox::pause
//! [`Termination::inflight`]: mabeam_shards::termination::Termination::inflight
//! [`Envelope::Export`]: super::envelope::Envelope::Export
//! [`ShardState::export`]: super::ShardState::export

use std::any::Any;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mabeam_shards::mailbox::Wait;

use super::envelope::Envelope;
use super::{refusal, DropScope, Runtime, Shared, Ticket, ANY_DEAD};
use crate::Error;

/// Freezing: shards that took the marker take no host input and run no timers.
pub(crate) const FREEZE: u8 = 0;
/// Snapshot: frozen shards export their state.
pub(crate) const SNAPSHOT: u8 = 1;
/// Thaw: the export is over; frozen shards go back to normal.
pub(crate) const THAW: u8 = 2;

/// What a shard's export gives back: its state, or the panic its export raised.
pub(crate) type ShardSnapshot = Result<Box<dyn Any + Send>, ()>;

/// One export's shared control block: the phase, read by frozen shards (`SeqCst`, a
/// [`Doorbell`](mabeam_shards::doorbell::Doorbell) work condition: the exporter stores
/// it, then rings), and where shards hand their snapshots in.
pub(crate) struct ExportCtl {
    phase: AtomicU8,
    snapshots: flume::Sender<(usize, ShardSnapshot)>,
}

impl ExportCtl {
    /// The phase now.
    #[inline]
    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::SeqCst)
    }

    /// Shard side: hands shard `index`'s snapshot in.
    pub(crate) fn deliver(&self, index: usize, snapshot: ShardSnapshot) {
        // The exporter holds the receiver until it has every snapshot or gives up; a
        // send after it gave up has nobody to tell.
        let _ = self.snapshots.send((index, snapshot));
    }
}

/// Thaws the shards and resumes every mailbox when the export ends, however it ends.
struct Thaw<'a, C> {
    shared: &'a Shared<C>,
    ctl: &'a ExportCtl,
}

impl<C> Drop for Thaw<'_, C> {
    fn drop(&mut self) {
        self.ctl.phase.store(THAW, Ordering::SeqCst);
        for port in self.shared.ports.iter() {
            port.bell.ring();
        }
        for port in self.shared.ports.iter() {
            port.mailbox.resume();
        }
    }
}

impl<C: Send + 'static> Runtime<C> {
    /// Takes one consistent cut of every shard's state (see the [module docs](self)):
    /// shard `i`'s [`ShardState::export`](super::ShardState::export) result at index `i`.
    ///
    /// Errors: `ShutDown` once shutdown has begun, `ShardDown(i)` if a shard is dead,
    /// `Busy` if a marker found no room within the send timeout, `Internal` if a
    /// shard's export panicked. The engine runs on unchanged after an error.
    ///
    /// `host` runs while every shard is frozen with its snapshot taken (for state the
    /// caller keeps outside the shards).
    pub(crate) fn export_with(
        &self,
        host: impl FnOnce(),
    ) -> Result<Vec<Box<dyn Any + Send>>, Error> {
        self.check_open()?;
        let _one_at_a_time = self.exporting.lock();
        let shared = &*self.shared;
        let n = shared.ports.len();
        let (tx, rx) = flume::bounded(n);
        let ctl = Arc::new(ExportCtl {
            phase: AtomicU8::new(FREEZE),
            snapshots: tx,
        });
        let _thaw = Thaw { shared, ctl: &ctl };
        for port in shared.ports.iter() {
            port.mailbox.pause();
        }
        let tickets: Vec<Ticket<()>> = (0..n)
            .map(|shard| {
                let (ticket, reply) = self.ticket();
                let env = Envelope::Export {
                    ctl: ctl.clone(),
                    frozen: reply,
                };
                let wait = Wait::for_at_most(self.send_timeout);
                if let Err((env, refused)) = shared.ports[shard].mailbox.send_exempt(env, wait) {
                    let _scope = DropScope::new(refusal(shard, refused));
                    drop(env);
                }
                ticket
            })
            .collect();
        super::wait_all(tickets)?;
        // Quiesce: frozen shards produce nothing, so the count only falls.
        while shared.term.inflight() > 0 {
            self.check_alive()?;
            std::thread::yield_now();
        }
        ctl.phase.store(SNAPSHOT, Ordering::SeqCst);
        for port in shared.ports.iter() {
            port.bell.ring();
        }
        let mut out: Vec<Option<Box<dyn Any + Send>>> = (0..n).map(|_| None).collect();
        let mut got = 0;
        while got < n {
            match rx.recv_timeout(Duration::from_millis(1)) {
                Ok((index, Ok(snapshot))) => {
                    if out[index].replace(snapshot).is_none() {
                        got += 1;
                    }
                }
                Ok((_, Err(()))) => return Err(Error::Internal("a shard's export panicked")),
                // Only to notice a shard that died while frozen (it never delivers).
                Err(_) => self.check_alive()?,
            }
        }
        host();
        Ok(out.into_iter().flatten().collect())
    }

    /// `Err(ShardDown(i))` for the first dead shard, `Err(ShutDown)` once shut down.
    fn check_alive(&self) -> Result<(), Error> {
        if self.shared.status.load(Ordering::Relaxed) & ANY_DEAD != 0 {
            for (i, port) in self.shared.ports.iter().enumerate() {
                if port.dead.load(Ordering::Relaxed) {
                    return Err(Error::ShardDown(i));
                }
            }
        }
        Ok(())
    }
}
