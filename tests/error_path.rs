//! One error path per call: a ticketed call's engine failure (`Busy`, `ShutDown`,
//! `ShardDown`, `Internal`) is the outer `Err` of `Ticket::wait`, never the service
//! error's `Engine` variant inside an `Ok`. The inner result carries the service's own
//! answers only.

mod common;

use std::time::Duration;

use mabeam::agents::{AgentError, AgentState};
use mabeam::auctions::{AuctionError, AuctionKind, AuctionSpec, Bid};
use mabeam::market::{MarketError, MarketUpdate};
use mabeam::{Engine, Error};

fn spec() -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve: 100,
            min_increment: 10,
        },
        seller: 1,
        category: 3,
        deadline: None,
        buy_now: None,
    }
}

/// An engine of one shard with a mailbox of `capacity` and no wait for room.
fn tiny_engine(capacity: usize) -> Engine {
    Engine::start(
        common::config(1)
            .with_mailbox_capacity(capacity)
            .with_send_timeout(Duration::ZERO),
    )
    .expect("test config is valid")
}

/// True if `r` is an engine error in the inner result (the second path).
fn inner_engine_error<T>(r: &Result<Result<T, AuctionError>, Error>) -> bool {
    matches!(r, Ok(Err(AuctionError::Engine(_))))
}

#[test]
fn a_full_mailbox_refuses_every_ticketed_call_through_the_outer_error() {
    let engine = tiny_engine(4);
    let id = engine
        .auctions()
        .create(spec())
        .wait()
        .expect("engine alive")
        .expect("valid spec");
    let stall = engine.testing().stall(0).expect("shard alive");

    // Fill the mailbox with creates until one is refused.
    let mut accepted = Vec::new();
    let refused = loop {
        let mut ticket = engine.auctions().create(spec());
        match ticket.try_take() {
            Some(result) => break result,
            None => accepted.push(ticket),
        }
        assert!(accepted.len() <= 4, "a mailbox of 4 refuses the fifth call");
    };
    assert!(!inner_engine_error(&refused), "create: {refused:?}");
    assert_eq!(refused, Err(Error::Busy), "create");

    let bid = engine
        .auctions()
        .bid(
            id,
            Bid {
                bidder: 2,
                amount: 200,
                bundle: 0,
            },
        )
        .wait();
    assert!(!inner_engine_error(&bid), "bid: {bid:?}");
    assert_eq!(bid.map(|_| ()), Err(Error::Busy), "bid");

    let close = engine.auctions().close(id).wait();
    assert!(!inner_engine_error(&close), "close: {close:?}");
    assert_eq!(close.map(|_| ()), Err(Error::Busy), "close");

    let cancel = engine.auctions().cancel(id).wait();
    assert!(!inner_engine_error(&cancel), "cancel: {cancel:?}");
    assert_eq!(cancel.map(|_| ()), Err(Error::Busy), "cancel");

    let agent = engine
        .agents()
        .update_acked(9, AgentState::default())
        .wait();
    assert!(
        !matches!(agent, Ok(Err(AgentError::Engine(_)))),
        "{agent:?}"
    );
    assert_eq!(agent.map(|_| ()), Err(Error::Busy), "update_acked");

    let market = engine
        .market()
        .update_acked(MarketUpdate {
            key: 3,
            price: 100,
            volume: 1,
        })
        .wait();
    assert!(
        !matches!(market, Ok(Err(MarketError::Engine(_)))),
        "{market:?}"
    );
    assert_eq!(market.map(|_| ()), Err(Error::Busy), "market update_acked");

    // The accepted calls are applied once the shard goes on.
    drop(stall);
    for ticket in accepted {
        assert!(matches!(ticket.wait(), Ok(Ok(_))));
    }
}

#[test]
fn after_shutdown_every_ticketed_call_fails_through_the_outer_error() {
    let engine = tiny_engine(16);
    let handle = engine.handle();
    drop(engine.shutdown());
    let create = handle.auctions().create(spec()).wait();
    assert!(!inner_engine_error(&create), "{create:?}");
    assert_eq!(create, Err(Error::ShutDown));
    let agent = handle
        .agents()
        .update_acked(1, AgentState::default())
        .wait();
    assert_eq!(agent.map(|_| ()), Err(Error::ShutDown));
}
