//! Market data, CQRS as in the original's MarketDataService: updates are asynchronous
//! messages to the key's shard; reads come from the published snapshot.
//!
//! Each key's state holds its last price, the volume-weighted average price over a
//! sliding window, total volume, update count and time (see
//! [`mabeam_shards::market`] for the window's bounds). Auctions that close with a sale
//! feed their price into the key of their category.

use std::sync::Arc;

pub use mabeam_shards::market::{MarketError, MarketLimits, MarketState, MarketUpdate};

use crate::economics::EconomicsCommand;
use crate::engine::Inner;
use crate::runtime::{Reply, SendWait, Ticket};
use crate::telemetry::ops::read;
use crate::Error;

/// The market data of an engine; get it with [`Engine::market`](crate::EngineHandle::market).
#[derive(Clone, Copy)]
pub struct Market<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Market<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Market", f)
    }
}

impl<'e> Market<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    fn command(
        &self,
        update: MarketUpdate,
        reply: Reply<Result<MarketState, MarketError>>,
    ) -> Result<(usize, EconomicsCommand), MarketError> {
        if update.volume == 0 {
            return Err(MarketError::ZeroVolume { key: update.key });
        }
        let shard = self.inner.shard_of(update.key);
        Ok((shard, EconomicsCommand::MarketUpdate { update, reply }))
    }

    /// Applies a trade asynchronously (the original's cast). Zero volume is refused here;
    /// a refusal on the shard (`TooManyKeys`, `Overflow`) is not reported back: use
    /// [`update_acked`](Self::update_acked) to see it.
    pub fn update(&self, update: MarketUpdate) -> Result<(), MarketError> {
        if self.inner.centralized() {
            if update.volume == 0 {
                return Err(MarketError::ZeroVolume { key: update.key });
            }
            // The round trip of the GenServer shape; like the sharded form, a refusal on
            // the shard is not reported.
            let _rule_answer = self.update_acked(update).wait()?;
            return Ok(());
        }
        let (shard, cmd) = self.command(update, Reply::Nobody)?;
        Ok(self.inner.send(shard, cmd, SendWait::Timeout)?)
    }

    /// Applies a trade; the ticket resolves with the key's new state.
    pub fn update_acked(&self, update: MarketUpdate) -> Ticket<Result<MarketState, MarketError>> {
        if update.volume == 0 {
            return self
                .inner
                .ready(Ok(Err(MarketError::ZeroVolume { key: update.key })));
        }
        let shard = self.inner.shard_of(update.key);
        self.inner
            .call(shard, |reply| EconomicsCommand::MarketUpdate {
                update,
                reply,
            })
    }

    /// The published state of `key`, `None` if it never traded: a snapshot read.
    #[inline]
    pub fn state(&self, key: u64) -> Result<Option<MarketState>, Error> {
        let shard = self.inner.shard_of(key);
        self.inner.rt.check_readable(shard)?;
        self.inner.read(read::MARKET_STATE);
        if self.inner.centralized() {
            return self
                .inner
                .round_trip(|reply| EconomicsCommand::MarketState { key, reply });
        }
        let port = &self.inner.ports[shard].economics;
        Ok(port
            .market
            .get(key)
            .and_then(|w| MarketState::from_words(&w)))
    }
}
