//! Shard-to-shard messages are never dropped and never wait behind host traffic: while
//! host threads keep every mailbox full, sales feed their category's market on other
//! shards through lanes of one message each (so they overflow all the time), and after
//! `flush()` every sale is in its market.
//!
//! On the engine before the runtime layer, a forward that found its target's mailbox
//! full was held in a retry buffer that `flush` did not wait for (and dropped beyond
//! 65,536), so a market read right after `flush` could miss sales.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionKind, AuctionSpec, Bid};

const CATEGORIES: u32 = 8;

#[test]
fn every_sale_reaches_its_market_while_hosts_flood_the_mailboxes() {
    let engine = mabeam::Engine::start(
        common::config(4)
            .with_mailbox_capacity(256)
            .with_lane_capacity(1),
    )
    .expect("valid config");
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..2u64)
        .map(|t| {
            let handle = engine.handle();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut writer = handle.batch_writer(64);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _held_or_sent = writer
                        .update_agent(t << 32 | (i % 4096), AgentState::default())
                        .expect("the engine runs");
                    i += 1;
                }
            })
        })
        .collect();
    let mut sales = [0u64; CATEGORIES as usize];
    for round in 0..20u64 {
        let tickets: Vec<_> = (0..50u64)
            .map(|k| {
                let category = ((round * 50 + k) % u64::from(CATEGORIES)) as u32;
                let spec = AuctionSpec {
                    kind: AuctionKind::English {
                        reserve: 10,
                        min_increment: 1,
                    },
                    seller: 1,
                    category,
                    deadline: None,
                    buy_now: Some(100),
                };
                (category, engine.auctions().create(spec))
            })
            .collect();
        for (category, ticket) in tickets {
            let id = ticket.wait().expect("accepted").expect("created");
            engine
                .auctions()
                .bid_nowait(
                    id,
                    Bid {
                        bidder: 2,
                        amount: 100,
                        bundle: 0,
                    },
                )
                .expect("accepted");
            sales[category as usize] += 1;
        }
    }
    // The flooders are still running: the flush must cover the lanes all the same.
    engine.flush().expect("flush");
    for (category, &sold) in sales.iter().enumerate() {
        let state = engine
            .market()
            .state(category as u64)
            .expect("readable")
            .unwrap_or_else(|| panic!("category {category} has a market after {sold} sales"));
        assert_eq!(
            state.total_volume, sold,
            "every sale of category {category} reached its market"
        );
        assert_eq!(state.last_price, 100);
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder panicked");
    }
    let report = engine.shutdown();
    assert!(report.dead_shards().is_empty());
}
