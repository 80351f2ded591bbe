//! A batching writer for host threads that write a lot.

use std::sync::Arc;

use mabeam_shards::agents::AgentState;
use mabeam_shards::auction::{AuctionError, AuctionId, AuctionSpec, Bid, AUCTION_SEQ_BITS};
use mabeam_shards::market::MarketUpdate;

use crate::auctions::next_create_shard;
use crate::command::{AgentCommand, Command};
use crate::economics::EconomicsCommand;
use crate::engine::{Inner, SendMode};
use crate::ticket::{Reply, Ticket};
use crate::Error;

/// Buffers fire-and-forget commands per shard and sends each shard's buffer as one
/// message when it holds `batch` commands, on [`flush`](Self::flush) and on drop.
///
/// One flume message costs hundreds of nanoseconds on a small machine and degrades with
/// many senders; a batch of 256 commands costs about the same as one. Memory is bounded
/// by `batch` commands per shard. A full mailbox makes a send wait up to
/// `Config::send_timeout` and then return `Busy`; the buffer is then dropped with its
/// commands (they were never accepted). In [`Mode::Centralized`](crate::Mode) every
/// command is a synchronous round trip, as in the original.
///
/// ```
/// use mabeam::{Config, Engine};
/// use mabeam::agents::AgentState;
/// let engine = Engine::start(Config { shards: 2, pin_threads: false, ..Config::default() })?;
/// let mut writer = engine.batch_writer(256);
/// for id in 0..1000 {
///     writer.update_agent(id, AgentState::default())?;
/// }
/// writer.flush()?;
/// engine.flush()?;
/// assert_eq!(engine.agents().count()?, 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchWriter {
    inner: Arc<Inner>,
    buffers: Vec<Vec<Command>>,
    batch: usize,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("batch", &self.batch)
            .field("buffered", &self.buffered())
            .finish()
    }
}

impl BatchWriter {
    pub(crate) fn new(inner: Arc<Inner>, batch: usize) -> Self {
        let shards = inner.ports.len();
        Self {
            inner,
            buffers: (0..shards).map(|_| Vec::new()).collect(),
            batch: batch.max(1),
        }
    }

    /// Commands buffered and not yet sent.
    pub fn buffered(&self) -> usize {
        self.buffers.iter().map(Vec::len).sum()
    }

    pub(crate) fn push(&mut self, shard: usize, cmd: Command) -> Result<(), Error> {
        self.inner.check_open()?;
        if self.inner.centralized() {
            return self.inner.send(shard, cmd, SendMode::Timeout);
        }
        let buffer = &mut self.buffers[shard];
        if buffer.capacity() == 0 {
            buffer.reserve_exact(self.batch);
        }
        buffer.push(cmd);
        if buffer.len() >= self.batch {
            self.send(shard)?;
        }
        Ok(())
    }

    fn send(&mut self, shard: usize) -> Result<(), Error> {
        let cmds = std::mem::replace(&mut self.buffers[shard], Vec::with_capacity(self.batch));
        self.inner
            .send(shard, Command::Batch(cmds), SendMode::Timeout)
    }

    /// Buffers a fire-and-forget agent update.
    pub fn update_agent(&mut self, id: u64, state: AgentState) -> Result<(), Error> {
        let shard = self.inner.shard_of(id);
        self.push(
            shard,
            Command::Agent(AgentCommand::Update {
                id,
                state,
                reply: Reply::Nobody,
            }),
        )
    }

    /// Buffers a fire-and-forget bid (see
    /// [`Auctions::bid_nowait`](crate::auctions::Auctions::bid_nowait)); an id that
    /// cannot be this engine's is refused here with `NotFound`.
    pub fn bid(&mut self, id: AuctionId, bid: Bid) -> Result<(), AuctionError> {
        let shard = (id >> AUCTION_SEQ_BITS) as usize;
        if shard >= self.buffers.len() {
            return Err(AuctionError::NotFound { id });
        }
        let cmd = Command::Economics(EconomicsCommand::Bid {
            id,
            bid,
            reply: Reply::Nobody,
        });
        Ok(self.push(shard, cmd)?)
    }

    /// Buffers a fire-and-forget market update (see
    /// [`Market::update`](crate::market::Market::update)); zero volume is refused here.
    pub fn market_update(
        &mut self,
        update: MarketUpdate,
    ) -> Result<(), mabeam_shards::market::MarketError> {
        if update.volume == 0 {
            return Err(mabeam_shards::market::MarketError::ZeroVolume { key: update.key });
        }
        let shard = self.inner.shard_of(update.key);
        let cmd = Command::Economics(EconomicsCommand::MarketUpdate {
            update,
            reply: Reply::Nobody,
        });
        Ok(self.push(shard, cmd)?)
    }

    /// Buffers an auction create (see
    /// [`Auctions::create`](crate::auctions::Auctions::create)). The ticket resolves once
    /// the buffer has been sent (when it is full, on [`flush`](Self::flush) or on drop)
    /// and applied: flush before waiting on it. A refused send resolves it with the
    /// refusal.
    pub fn create_auction(&mut self, spec: AuctionSpec) -> Ticket<Result<AuctionId, AuctionError>> {
        let spin = self.inner.config.ticket_spin;
        if let Err(e) = spec.validate(self.inner.config.clock.now()) {
            return Ticket::ready(Ok(Err(AuctionError::InvalidSpec(e))), spin);
        }
        let shard = next_create_shard(self.buffers.len());
        let (ticket, reply) = Ticket::new(spin);
        // On refusal the command is dropped, which resolves the ticket with the reason.
        let _ = self.push(
            shard,
            Command::Economics(EconomicsCommand::Create { spec, reply }),
        );
        ticket
    }

    /// Sends every non-empty buffer. Returns the first error, after trying every shard.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        for shard in 0..self.buffers.len() {
            if !self.buffers[shard].is_empty() {
                let r = self.send(shard);
                if result.is_ok() {
                    result = r;
                }
            }
        }
        result
    }
}

impl Drop for BatchWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
