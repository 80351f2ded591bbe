//! A batching writer for host threads that write a lot.

use std::sync::Arc;

use mabeam_shards::agents::AgentState;
use mabeam_shards::auction::{AuctionError, AuctionId, AuctionSpec, Bid};
use mabeam_shards::market::MarketUpdate;

use crate::agents::AgentCommand;
use crate::auctions::next_create_shard;
use crate::economics::EconomicsCommand;
use crate::engine::{Command, Inner};
use crate::runtime::{Batcher, Buffered, Reply, SendWait, Ticket};
use crate::Error;

/// Buffers fire-and-forget commands per shard and sends each shard's buffer as one
/// message when it holds `batch` commands, or on [`flush`](Self::flush).
///
/// One mailbox message costs hundreds of nanoseconds on a small machine and degrades
/// with many senders; a batch of 256 commands costs about the same as one.
///
/// **What `Ok` means.** Each write says what happened to it in its [`Buffered`] result:
/// `Held` (kept in the writer, *not yet accepted*: a shutdown before it is sent leaves
/// it unapplied) or `Sent(n)` (it filled its shard's buffer and the whole buffer was
/// accepted: it will be applied). [`flush`](Self::flush) returns how many held commands
/// it got accepted. `Err` means the write was neither accepted nor kept. So a write is
/// applied exactly when the call that sent it (`Sent`, or a successful flush) returned
/// `Ok`.
///
/// Bounds: at most `batch` commands per shard are held (`batch` is clamped to
/// `1..=Config::mailbox_capacity`). A full buffer is sent as one fire-and-forget message
/// (admitted while the shard's queued work is below `Config::write_delay` of work),
/// waiting up to `Config::send_timeout` for room; if that is refused,
/// the buffer stays held and the write that filled it is refused with the reason.
/// Dropping the writer flushes once and discards what is still refused. In
/// [`Mode::Centralized`](crate::Mode) every write is a synchronous round trip, as in the
/// original, and returns `Sent(1)`.
///
/// ```
/// use mabeam::{Buffered, Config, Engine};
/// use mabeam::agents::AgentState;
/// let engine = Engine::start(Config::default().with_shards(2).with_pin_threads(false))?;
/// let mut writer = engine.batch_writer(256);
/// let mut accepted = 0;
/// for id in 0..1000 {
///     if let Buffered::Sent(n) = writer.update_agent(id, AgentState::default())? {
///         accepted += n; // a full buffer went out
///     }
/// }
/// accepted += writer.flush()?; // the rest
/// assert_eq!(accepted, 1000);
/// engine.flush()?;
/// assert_eq!(engine.agents().count()?, 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchWriter {
    inner: Arc<Inner>,
    batcher: Batcher<Command>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("batch", &self.batcher.batch())
            .field("held", &self.held())
            .finish()
    }
}

impl BatchWriter {
    pub(crate) fn new(inner: Arc<Inner>, batch: usize) -> Self {
        let shards = inner.ports.len();
        let batch = batch.clamp(1, inner.config.mailbox_capacity);
        Self {
            inner,
            batcher: Batcher::new(shards, batch),
        }
    }

    /// Commands held and not yet accepted.
    pub fn held(&self) -> usize {
        self.batcher.held()
    }

    fn push(&mut self, shard: usize, cmd: impl Into<Command>) -> Result<Buffered, Error> {
        let cmd = cmd.into();
        if let Err(e) = self.inner.check_open() {
            let _scope = crate::runtime::DropScope::new(e);
            drop(cmd);
            return Err(e);
        }
        if self.inner.centralized() {
            return self
                .inner
                .send(shard, cmd, SendWait::Timeout)
                .map(|()| Buffered::Sent(1));
        }
        self.batcher.push(&self.inner.rt, shard, cmd)
    }

    /// Buffers a fire-and-forget agent update.
    pub fn update_agent(&mut self, id: u64, state: AgentState) -> Result<Buffered, Error> {
        let shard = self.inner.shard_of(id);
        self.push(
            shard,
            AgentCommand::Update {
                id,
                state,
                reply: Reply::Nobody,
            },
        )
    }

    /// Buffers a fire-and-forget bid (see
    /// [`Auctions::bid_nowait`](crate::auctions::Auctions::bid_nowait)); an id that
    /// cannot be this engine's is refused here with `NotFound`.
    pub fn bid(&mut self, id: AuctionId, bid: Bid) -> Result<Buffered, AuctionError> {
        let shard = id.shard();
        if shard >= self.inner.ports.len() {
            return Err(AuctionError::NotFound { id });
        }
        let cmd = EconomicsCommand::Bid {
            id,
            bid,
            reply: Reply::Nobody,
        };
        Ok(self.push(shard, cmd)?)
    }

    /// Buffers a fire-and-forget market update (see
    /// [`Market::update`](crate::market::Market::update)); zero volume is refused here.
    pub fn market_update(
        &mut self,
        update: MarketUpdate,
    ) -> Result<Buffered, mabeam_shards::market::MarketError> {
        if update.volume == 0 {
            return Err(mabeam_shards::market::MarketError::ZeroVolume { key: update.key });
        }
        let shard = self.inner.shard_of(update.key);
        let cmd = EconomicsCommand::MarketUpdate {
            update,
            reply: Reply::Nobody,
        };
        Ok(self.push(shard, cmd)?)
    }

    /// Buffers an auction create (see
    /// [`Auctions::create`](crate::auctions::Auctions::create)). The ticket resolves once
    /// the buffer has been sent (when it is full, or on [`flush`](Self::flush)) and
    /// applied: flush before waiting on it. A refused create resolves it with the
    /// refusal, and so does dropping the writer while the create is still held.
    pub fn create_auction(&mut self, spec: AuctionSpec) -> Ticket<Result<AuctionId, AuctionError>> {
        if let Err(e) = spec.validate(self.inner.config.clock.now()) {
            return self.inner.ready(Ok(Err(AuctionError::InvalidSpec(e))));
        }
        let shard = next_create_shard(self.inner.ports.len());
        let (ticket, reply) = self.inner.rt.ticket();
        // On refusal the command is dropped, which resolves the ticket with the reason.
        let _ = self.push(shard, EconomicsCommand::Create { spec, reply });
        ticket
    }

    /// Sends every held buffer. Returns the number of commands accepted, or the first
    /// refusal after trying every shard; what was refused stays held (see
    /// [`held`](Self::held)).
    pub fn flush(&mut self) -> Result<usize, Error> {
        self.batcher.flush(&self.inner.rt)
    }
}

impl Drop for BatchWriter {
    /// Flushes once; what is still refused is discarded (creates' tickets resolve with
    /// the refusal).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            self.batcher.discard(e);
        }
    }
}
