//! Events: what the services report, handed to the engine's event sink.

use mabeam_shards::auction::AuctionEvent;
use mabeam_shards::market::MarketState;

/// A shard's event sink: services hand it what happened, in order.
#[derive(Default)]
pub(crate) struct EventSink {
    emitted: u64,
}

impl EventSink {
    /// An auction transition.
    pub(crate) fn auction(&mut self, _event: AuctionEvent, _now: u64) {
        self.emitted += 1;
    }

    /// A market state changed.
    pub(crate) fn market_updated(&mut self, _state: MarketState, _now: u64) {
        self.emitted += 1;
    }
}
