//! Auctions, market data, pricing and the task pool through the public API.

mod common;

use std::time::Duration;

use mabeam::auctions::{
    AuctionError, AuctionFilter, AuctionId, AuctionKind, AuctionSpec, AuctionState, Bid, KindTag,
};
use mabeam::market::{MarketError, MarketUpdate};
use mabeam::pricing::{PricingError, PricingField, PricingInput};
use mabeam::{Engine, TaskError};

fn english(seller: u64, category: u32) -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve: 100,
            min_increment: 10,
        },
        seller,
        category,
        deadline: None,
        buy_now: None,
    }
}

fn bid(bidder: u64, amount: u64) -> Bid {
    Bid {
        bidder,
        amount,
        bundle: 0,
    }
}

#[test]
fn create_asynchronously_then_see_the_status() {
    let engine = common::engine(2);
    let auctions = engine.auctions();
    let tickets: Vec<_> = (0..20).map(|i| auctions.create(english(1, i))).collect();
    let ids: Vec<_> = tickets
        .into_iter()
        .map(|t| t.wait().unwrap().unwrap())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let s = auctions
            .status(*id)
            .unwrap()
            .expect("published before the ticket");
        assert_eq!(s.state, AuctionState::Open);
        assert_eq!(s.category, i as u32);
        assert_eq!(s.bid_count, 0);
    }
    let shards: std::collections::HashSet<_> = ids.iter().map(|id| id.shard()).collect();
    assert_eq!(
        shards.len(),
        2,
        "round-robin spreads creates over the shards"
    );
    assert_eq!(
        auctions
            .list_active(AuctionFilter::default())
            .unwrap()
            .len(),
        20
    );
    let cat3 = AuctionFilter {
        category: Some(3),
        ..AuctionFilter::default()
    };
    assert_eq!(auctions.list_active(cat3).unwrap().len(), 1);
    let dutch = AuctionFilter {
        kind: Some(KindTag::Dutch),
        ..AuctionFilter::default()
    };
    assert!(auctions.list_active(dutch).unwrap().is_empty());
}

#[test]
fn english_bids_close_and_feed_the_market() {
    let engine = common::engine(2);
    let auctions = engine.auctions();
    let id = auctions.create(english(1, 77)).wait().unwrap().unwrap();
    assert_eq!(
        auctions.bid(id, bid(2, 99)).wait().unwrap(),
        Err(AuctionError::BidTooLow { minimum: 100 })
    );
    auctions.bid(id, bid(2, 100)).wait().unwrap().unwrap();
    assert_eq!(
        auctions.bid(id, bid(3, 105)).wait().unwrap(),
        Err(AuctionError::BidTooLow { minimum: 110 })
    );
    auctions.bid_nowait(id, bid(3, 150)).unwrap();
    engine.flush().unwrap();
    let s = auctions.status(id).unwrap().unwrap();
    assert_eq!((s.price, s.leader, s.bid_count), (Some(150), Some(3), 2));
    assert_eq!(
        auctions.cancel(id).wait().unwrap(),
        Err(AuctionError::HasBids { count: 2 })
    );
    let outcome = auctions.close(id).wait().unwrap().unwrap();
    assert_eq!((outcome.winner(), outcome.total_paid()), (Some(3), 150));
    assert!(matches!(
        auctions.bid(id, bid(4, 500)).wait().unwrap(),
        Err(AuctionError::NotOpen { .. })
    ));
    engine.flush().unwrap(); // the market feed may cross shards
    let m = engine
        .market()
        .state(77)
        .unwrap()
        .expect("sale fed the market");
    assert_eq!((m.last_price, m.total_volume, m.update_count), (150, 1, 1));
}

#[test]
fn sealed_bids_stay_hidden_until_close() {
    let engine = common::engine(2);
    let auctions = engine.auctions();
    let spec = AuctionSpec {
        kind: AuctionKind::Vickrey { reserve: 10 },
        ..english(1, 0)
    };
    let id = auctions.create(spec).wait().unwrap().unwrap();
    for (b, amount) in [(2, 50), (3, 80), (4, 60)] {
        auctions.bid(id, bid(b, amount)).wait().unwrap().unwrap();
    }
    assert_eq!(
        auctions.bid(id, bid(3, 90)).wait().unwrap(),
        Err(AuctionError::AlreadyBid { bidder: 3 })
    );
    let s = auctions.status(id).unwrap().unwrap();
    assert_eq!((s.price, s.leader, s.bid_count), (None, None, 3));
    let outcome = auctions.close(id).wait().unwrap().unwrap();
    assert_eq!(
        (outcome.winner(), outcome.total_paid()),
        (Some(3), 60),
        "second price"
    );
    let s = auctions.status(id).unwrap().unwrap();
    assert_eq!(
        (s.state, s.winner, s.price),
        (AuctionState::Closed, Some(3), Some(60))
    );
}

#[test]
fn deadlines_close_auctions_on_their_shard() {
    let (engine, clock) = common::manual_engine(2);
    let auctions = engine.auctions();
    let with_deadline = |deadline| AuctionSpec {
        deadline: Some(deadline),
        ..english(1, 5)
    };
    let sold = auctions
        .create(with_deadline(10_000))
        .wait()
        .unwrap()
        .unwrap();
    let unsold = auctions
        .create(with_deadline(10_000))
        .wait()
        .unwrap()
        .unwrap();
    auctions.bid(sold, bid(2, 120)).wait().unwrap().unwrap();
    clock.set(10_000);
    engine.flush().unwrap(); // a batch runs the shards' timers
    let s = auctions.status(sold).unwrap().unwrap();
    assert_eq!(
        (s.state, s.winner, s.price),
        (AuctionState::Closed, Some(2), Some(120))
    );
    let s = auctions.status(unsold).unwrap().unwrap();
    assert_eq!((s.state, s.winner), (AuctionState::Expired, None));
}

#[test]
fn dutch_price_falls_with_the_clock() {
    let (engine, clock) = common::manual_engine(1);
    let auctions = engine.auctions();
    let spec = AuctionSpec {
        kind: AuctionKind::Dutch {
            start: 1_000,
            step: 100,
            tick_nanos: 1_000,
            reserve: 500,
        },
        ..english(1, 9)
    };
    let id = auctions.create(spec).wait().unwrap().unwrap();
    assert_eq!(auctions.status(id).unwrap().unwrap().price, Some(1_000));
    clock.advance(Duration::from_nanos(3_500));
    assert_eq!(
        auctions.status(id).unwrap().unwrap().price,
        Some(700),
        "read-time price, no message needed"
    );
    clock.advance(Duration::from_nanos(100_000));
    assert_eq!(
        auctions.status(id).unwrap().unwrap().price,
        Some(500),
        "floor"
    );
    let receipt = auctions.bid(id, bid(2, 600)).wait().unwrap().unwrap();
    let outcome = receipt
        .closed
        .expect("first bid at the price wins and closes");
    assert_eq!(outcome.total_paid(), 500);
}

#[test]
fn retention_keeps_memory_flat() {
    let mut config = common::config(1);
    config.economics.auctions.max_retained = 16;
    let engine = Engine::start(config).unwrap();
    let auctions = engine.auctions();
    let mut first = None;
    for _ in 0..2_000 {
        let id = auctions.create(english(1, 0)).wait().unwrap().unwrap();
        first.get_or_insert(id);
        auctions.close(id).wait().unwrap().unwrap();
    }
    assert_eq!(auctions.status(first.unwrap()).unwrap(), None, "evicted");
    assert!(auctions
        .list_active(AuctionFilter::default())
        .unwrap()
        .is_empty());
}

#[test]
fn bad_auction_input_gets_its_error() {
    let engine = common::engine(2);
    let auctions = engine.auctions();
    let bad = AuctionSpec {
        kind: AuctionKind::English {
            reserve: 1,
            min_increment: 0,
        },
        ..english(1, 0)
    };
    assert!(matches!(
        auctions.create(bad).wait().unwrap(),
        Err(AuctionError::InvalidSpec(_))
    ));
    let unknown = AuctionId::from_raw(1 << 60);
    assert_eq!(
        auctions.bid(unknown, bid(1, 1)).wait().unwrap(),
        Err(AuctionError::NotFound { id: unknown })
    );
    assert_eq!(auctions.status(unknown).unwrap(), None);
    assert_eq!(
        auctions.close(AuctionId::from_raw(5)).wait().unwrap(),
        Err(AuctionError::NotFound {
            id: AuctionId::from_raw(5)
        })
    );
    let id = auctions.create(english(1, 0)).wait().unwrap().unwrap();
    assert_eq!(
        auctions
            .bid(id, bid(2, u64::MAX))
            .wait()
            .unwrap()
            .unwrap()
            .amount,
        u64::MAX
    );
    assert_eq!(
        auctions.bid(id, bid(3, u64::MAX)).wait().unwrap(),
        Err(AuctionError::Overflow)
    );
    auctions
        .cancel(auctions.create(english(1, 0)).wait().unwrap().unwrap())
        .wait()
        .unwrap()
        .unwrap();
}

/// The original's pattern: 50 threads each create 100 auctions and bid on them; every
/// ticket resolves and the state is consistent afterwards.
#[test]
fn fifty_threads_create_and_bid() {
    // A long send timeout: the test is about consistency, not pushback; with the default
    // 1 s a fire-and-forget bid was refused `Busy` once on a machine loaded to 9-13.
    let engine =
        Engine::start(common::config(2).with_send_timeout(std::time::Duration::from_secs(120)))
            .unwrap();
    let auctions = engine.auctions();
    let ids: Vec<Vec<AuctionId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50u64)
            .map(|t| {
                s.spawn(move || {
                    let creates: Vec<_> =
                        (0..100).map(|_| auctions.create(english(t, 1))).collect();
                    let ids: Vec<AuctionId> = creates
                        .into_iter()
                        .map(|c| c.wait().unwrap().unwrap())
                        .collect();
                    let bids: Vec<_> = ids
                        .iter()
                        .map(|&id| auctions.bid(id, bid(1_000 + t, 100 + t)))
                        .collect();
                    for b in bids {
                        b.wait().unwrap().unwrap();
                    }
                    for &id in &ids {
                        auctions.bid_nowait(id, bid(2_000 + t, 200 + t)).unwrap();
                    }
                    ids
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    engine.flush().unwrap();
    for (t, ids) in ids.iter().enumerate() {
        assert_eq!(ids.len(), 100);
        for &id in ids {
            let s = auctions.status(id).unwrap().unwrap();
            assert_eq!(s.bid_count, 2);
            assert_eq!(s.price, Some(200 + t as u64));
            assert_eq!(s.leader, Some(2_000 + t as u64));
        }
    }
    assert_eq!(
        auctions
            .list_active(AuctionFilter::default())
            .unwrap()
            .len(),
        5_000
    );
}

#[test]
fn market_updates_and_state() {
    let engine = common::engine(2);
    let market = engine.market();
    assert_eq!(market.state(1).unwrap(), None);
    market
        .update(MarketUpdate {
            key: 1,
            price: 100,
            volume: 1,
        })
        .unwrap();
    market
        .update(MarketUpdate {
            key: 1,
            price: 200,
            volume: 3,
        })
        .unwrap();
    assert_eq!(
        market
            .update(MarketUpdate {
                key: 1,
                price: 1,
                volume: 0
            })
            .unwrap_err(),
        MarketError::ZeroVolume { key: 1 }
    );
    engine.flush().unwrap();
    let s = market.state(1).unwrap().unwrap();
    assert_eq!(
        (s.last_price, s.vwap, s.total_volume, s.update_count),
        (200, 175, 4, 2)
    );
    let acked = market
        .update_acked(MarketUpdate {
            key: 2,
            price: 7,
            volume: 1,
        })
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(market.state(2).unwrap(), Some(acked));
}

#[test]
fn pricing_is_computed_on_the_pool_and_cached() {
    let engine = common::engine(2);
    let pricing = engine.pricing();
    let input = PricingInput {
        recent_prices: (0..25).map(|i| 100.0 + i as f64).collect(),
        demand: 10.0,
        supply: 4.0,
        base_price: 2.0,
    };
    assert_eq!(pricing.cached(&input).unwrap(), None);
    let p = pricing.calculate(&input).wait().unwrap().unwrap();
    assert_eq!(p.optimal_price, 112.0);
    assert_eq!(p.confidence, 0.5);
    assert_eq!(p.dynamic_price, 5.0);
    assert_eq!(pricing.cached(&input).unwrap(), Some(p));
    let other = PricingInput {
        demand: 11.0,
        ..input.clone()
    };
    assert_eq!(pricing.cached(&other).unwrap(), None);
    for (bad, err) in [
        (
            PricingInput {
                supply: 0.0,
                ..input.clone()
            },
            PricingError::ZeroSupply,
        ),
        (
            PricingInput {
                demand: f64::NAN,
                ..input.clone()
            },
            PricingError::NotFinite(PricingField::Demand),
        ),
        (
            PricingInput {
                base_price: -1.0,
                ..input.clone()
            },
            PricingError::Negative(PricingField::BasePrice),
        ),
        (
            PricingInput {
                recent_prices: vec![],
                ..input.clone()
            },
            PricingError::NoRecentPrices,
        ),
        (
            PricingInput {
                recent_prices: vec![1.0, f64::INFINITY],
                ..input.clone()
            },
            PricingError::NotFinite(PricingField::RecentPrice { index: 1 }),
        ),
    ] {
        assert_eq!(pricing.calculate(&bad).wait().unwrap(), Err(err));
    }
}

#[test]
fn panics_on_the_pool_do_not_shrink_it() {
    let engine = Engine::start(common::config(1).with_task_workers(2)).unwrap();
    let tasks = engine.tasks();
    let failed: Vec<_> = (0..10)
        .map(|i| tasks.spawn(move || -> u32 { panic!("task {i} fails") }))
        .collect();
    for (i, t) in failed.into_iter().enumerate() {
        assert_eq!(
            t.wait().unwrap(),
            Err(TaskError::Panicked(format!("task {i} fails")))
        );
    }
    // Both workers still run: two tasks that each wait for the other finish.
    let (a_tx, a_rx) = flume::bounded::<()>(1);
    let (b_tx, b_rx) = flume::bounded::<()>(1);
    let a = tasks.spawn(move || {
        a_tx.send(()).unwrap();
        b_rx.recv().unwrap();
    });
    let b = tasks.spawn(move || {
        b_tx.send(()).unwrap();
        a_rx.recv().unwrap();
    });
    a.wait().unwrap().unwrap();
    b.wait().unwrap().unwrap();
    let stats = tasks.stats();
    assert_eq!((stats.workers, stats.panicked), (2, 10));
    assert_eq!(stats.completed, 12);
}

#[test]
fn the_batch_writer_carries_creates_bids_and_market_updates() {
    let engine = common::engine(2);
    let mut writer = engine.batch_writer(64);
    let tickets: Vec<_> = (0..300)
        .map(|i| writer.create_auction(english(1, i % 4)))
        .collect();
    writer.flush().unwrap();
    let ids: Vec<AuctionId> = tickets
        .into_iter()
        .map(|t| t.wait().unwrap().unwrap())
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        let _held_or_sent = writer.bid(id, bid(2, 100 + i as u64)).unwrap();
    }
    let _held_or_sent = writer
        .market_update(MarketUpdate {
            key: 9,
            price: 50,
            volume: 2,
        })
        .unwrap();
    assert_eq!(
        writer.market_update(MarketUpdate {
            key: 9,
            price: 50,
            volume: 0
        }),
        Err(MarketError::ZeroVolume { key: 9 })
    );
    assert_eq!(
        writer.bid(AuctionId::from_raw(1 << 60), bid(2, 1)),
        Err(AuctionError::NotFound {
            id: AuctionId::from_raw(1 << 60)
        })
    );
    drop(writer); // sends the rest
    engine.flush().unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let s = engine.auctions().status(id).unwrap().unwrap();
        assert_eq!((s.bid_count, s.price), (1, Some(100 + i as u64)));
    }
    assert_eq!(engine.market().state(9).unwrap().unwrap().total_volume, 2);
}

/// A manual-clock engine (clock at 1,000 ns) with these auction retention bounds.
fn retention_engine(
    shards: usize,
    max_retained: usize,
    retention_nanos: u64,
) -> (Engine, mabeam::ManualClock) {
    let clock = mabeam::ManualClock::new(1_000);
    let mut config = common::config(shards).with_clock(mabeam::Clock::Manual(clock.clone()));
    config.economics.auctions.max_retained = max_retained;
    config.economics.auctions.retention_nanos = retention_nanos;
    (Engine::start(config).unwrap(), clock)
}

#[test]
fn a_sale_evicted_as_it_ends_still_feeds_the_market() {
    // max_retained = 0: the close evicts the auction in the same call.
    let (engine, _clock) = retention_engine(2, 0, u64::MAX);
    let auctions = engine.auctions();
    for category in [11u32, 12] {
        let id = auctions
            .create(english(1, category))
            .wait()
            .unwrap()
            .unwrap();
        auctions.bid(id, bid(2, 130)).wait().unwrap().unwrap();
        let outcome = auctions.close(id).wait().unwrap().unwrap();
        assert_eq!(outcome.total_paid(), 130);
        assert_eq!(auctions.status(id).unwrap(), None, "evicted as it ended");
    }
    engine.flush().unwrap(); // the feed may cross shards
    for category in [11u32, 12] {
        let m = engine
            .market()
            .state(u64::from(category))
            .unwrap()
            .expect("the sale fed its category's market");
        assert_eq!((m.last_price, m.total_volume), (130, 1));
    }
}

#[test]
fn a_deadline_sale_swept_past_its_retention_still_feeds_the_market() {
    let (engine, clock) = retention_engine(2, 4096, 500);
    let auctions = engine.auctions();
    let spec = AuctionSpec {
        deadline: Some(10_000),
        ..english(1, 21)
    };
    let id = auctions.create(spec).wait().unwrap().unwrap();
    auctions.bid(id, bid(2, 140)).wait().unwrap().unwrap();
    // The sweep runs at 20,000: the sale ended at its deadline (10,000), so it is past
    // its 500 ns retention and evicted in the same sweep.
    clock.set(20_000);
    engine.flush().unwrap(); // a batch runs the timers; the feed may cross shards
    engine.flush().unwrap();
    assert_eq!(auctions.status(id).unwrap(), None, "evicted by the sweep");
    let m = engine
        .market()
        .state(21)
        .unwrap()
        .expect("the deadline sale fed its category's market");
    assert_eq!((m.last_price, m.total_volume), (140, 1));
}

/// On one shard: `a` (no deadline) and `b` (deadline 5,000, with a bid); with the shard
/// stalled, the clock goes to 6,000 and `a`'s close is queued, so the shard applies the
/// close (a ends at 6,000) before the timer that applies b's deadline (b ends at 5,000).
fn close_before_a_late_deadline(
    max_retained: usize,
    retention_nanos: u64,
) -> (Engine, mabeam::ManualClock, AuctionId, AuctionId) {
    let (engine, clock) = retention_engine(1, max_retained, retention_nanos);
    let auctions = engine.auctions();
    let a = auctions.create(english(1, 31)).wait().unwrap().unwrap();
    let spec = AuctionSpec {
        deadline: Some(5_000),
        ..english(1, 32)
    };
    let b = auctions.create(spec).wait().unwrap().unwrap();
    auctions.bid(b, bid(2, 150)).wait().unwrap().unwrap();
    let stall = engine.testing().stall(0).unwrap();
    clock.set(6_000);
    let close = auctions.close(a);
    drop(stall);
    close.wait().unwrap().unwrap();
    engine.flush().unwrap();
    (engine, clock, a, b)
}

#[test]
fn retention_by_count_evicts_the_oldest_end_not_the_last_applied() {
    let (engine, _clock, a, b) = close_before_a_late_deadline(1, u64::MAX);
    let auctions = engine.auctions();
    assert_eq!(auctions.status(b).unwrap(), None, "b ended first (5,000)");
    let s = auctions.status(a).unwrap().expect("a ended last (6,000)");
    assert_eq!(s.closed_at, Some(6_000));
    let m = engine.market().state(32).unwrap().expect("b's sale fed");
    assert_eq!(m.last_price, 150);
}

#[test]
fn retention_by_age_counts_from_the_deadline_of_a_late_sweep() {
    let (engine, clock, a, b) = close_before_a_late_deadline(4096, 1_000);
    let auctions = engine.auctions();
    // At 6,500: b (ended 5,000) is past its 1,000 ns, a (ended 6,000) is not.
    clock.set(6_500);
    engine.flush().unwrap(); // a batch runs the age eviction
    assert_eq!(
        auctions.status(b).unwrap(),
        None,
        "b is older than retention"
    );
    assert_eq!(
        auctions.status(a).unwrap().map(|s| s.closed_at),
        Some(Some(6_000))
    );
}
