//! Export and restore of one shard's economics state (auctions, market, pricing cache).

use mabeam_shards::auction::{Auction, AuctionKind, AuctionParts};

use super::{decode_pricing, encode_pricing, EconomicsShard};
use crate::state::{MarketRecord, PricingRecord};

impl EconomicsShard {
    /// Every auction (open and retained), as plain data.
    pub(crate) fn export_auctions(&self) -> Vec<AuctionParts> {
        self.book.iter().map(Auction::to_parts).collect()
    }

    /// The next sequence this shard's prefix hands out.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Every market key with its window.
    pub(crate) fn export_markets(&self) -> Vec<MarketRecord> {
        self.market
            .windows()
            .map(|(state, window)| MarketRecord { state, window })
            .collect()
    }

    /// Every cached pricing result, oldest first.
    pub(crate) fn export_pricing(&self) -> Vec<PricingRecord> {
        self.pricing_order
            .iter()
            .filter_map(|&key| {
                let words = self.pricing.get(key)?;
                let check = words[0];
                let pricing = decode_pricing(check, &words)?;
                Some(PricingRecord {
                    key,
                    check,
                    pricing,
                })
            })
            .collect()
    }

    /// Sets the next sequence of this shard's prefix (never lower than it is).
    pub(crate) fn continue_after(&mut self, next_seq: u64) {
        self.next_seq = self.next_seq.max(next_seq);
    }

    /// Puts an exported auction into this shard and publishes it. The caller checked the
    /// book's bounds, so adopting evicts nothing.
    pub(crate) fn restore_auction(
        &mut self,
        parts: AuctionParts,
        now: u64,
    ) -> Result<(), &'static str> {
        let auction = Auction::from_parts(parts)?;
        let id = auction.id();
        if id.shard() == self.index {
            self.continue_after(id.sequence() + 1);
        }
        let status = auction.status(now);
        let dutch = match auction.spec().kind {
            AuctionKind::Dutch {
                start,
                step,
                tick_nanos,
                reserve,
            } => Some([start, step, tick_nanos, reserve]),
            _ => None,
        };
        let mut events = Vec::new();
        self.book
            .adopt(auction, &mut events)
            .map_err(|_| "auction id twice, or above the open bound")?;
        if !events.is_empty() {
            return Err("restoring an auction evicted another");
        }
        self.status.insert(id.to_raw(), status.to_words());
        if let Some(clock) = dutch {
            self.dutch.insert(id.to_raw(), clock);
        }
        Ok(())
    }

    /// Puts an exported market key into this shard and publishes it.
    pub(crate) fn restore_market(&mut self, record: &MarketRecord) -> Result<(), &'static str> {
        self.market.adopt(record.state, &record.window)?;
        self.market_table
            .insert(record.state.key, record.state.to_words());
        Ok(())
    }

    /// Puts an exported pricing result into this shard's cache.
    pub(crate) fn restore_pricing(&mut self, record: &PricingRecord) -> Result<(), &'static str> {
        if self.pricing.get(record.key).is_some() {
            return Err("pricing key twice");
        }
        if self.pricing_order.len() >= self.pricing_cache {
            return Err("more cached prices than economics.pricing_cache");
        }
        let p = &record.pricing;
        let finite = [p.optimal_price, p.confidence, p.dynamic_price]
            .iter()
            .all(|x| x.is_finite());
        if !finite {
            return Err("pricing result not finite");
        }
        self.pricing
            .insert(record.key, encode_pricing(record.check, p));
        self.pricing_order.push_back(record.key);
        Ok(())
    }
}
