//! A complete host program: it starts an engine, uses every service, checks every
//! answer against what the rules say, and shuts down cleanly.
//!
//! ```sh
//! cargo run --release --example host
//! ```
//!
//! It prints what it did and exits with status 0; a wrong answer makes it print the
//! mismatch and exit with status 1 (CI runs it).

use std::error::Error;
use std::time::Duration;

use mabeam::agents::{AgentState, AgentStatus};
use mabeam::auctions::{AuctionFilter, AuctionKind, AuctionSpec, Bid, KindTag};
use mabeam::coordination::{Protocol, SessionState};
use mabeam::events::{HistoryQuery, Payload};
use mabeam::market::MarketUpdate;
use mabeam::pricing::{PricingInput, Trend};
use mabeam::registry::{Field, Filter, Health, MetadataSpec, Op};
use mabeam::{Buffered, Config, Engine};

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// Fails the program with both values when they differ.
fn check<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}").into())
    }
}

/// An auction of `kind` in `category` with no deadline and no buy-now price.
fn spec(kind: AuctionKind, category: u32) -> AuctionSpec {
    AuctionSpec {
        kind,
        seller: 1,
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

fn main() -> Result {
    // The sharded default: one pinned shard per core, less one core for this host's own
    // threads (at least one shard). See the README's sizing guide.
    let engine = Engine::start(Config::default().with_send_timeout(Duration::from_secs(2)))?;
    let started = engine.start_report();
    println!(
        "engine: {} shard(s), pinned to {:?}",
        started.shards, started.pinned
    );

    // Events first, so the subscriber sees everything below.
    let auction_events = engine.events().subscribe("auction.**", 1024)?;

    registry(&engine)?;
    agents_and_batches(&engine)?;
    auctions_and_market(&engine)?;
    pricing_and_tasks(&engine)?;
    coordination(&engine)?;
    barriers(&engine)?;
    events(&engine, &auction_events)?;

    let handle = engine.handle();
    let report = engine.shutdown();
    check("dead shards", report.dead_shards(), vec![])?;
    check("abandoned tasks", report.abandoned_tasks, 0)?;
    check(
        "calls after shutdown",
        handle.flush(),
        Err(mabeam::Error::ShutDown),
    )?;
    println!(
        "shutdown: {} commands applied, every check passed",
        report.applied()
    );
    Ok(())
}

/// Registry: a lease owns its entry; capability search, query, metadata update, release.
fn registry(engine: &Engine) -> Result {
    let registry = engine.registry();
    let planner =
        registry.register("planner-1", 11, &MetadataSpec::with_capabilities(&["plan"]))?;
    let mut bidder_meta = MetadataSpec::with_capabilities(&["plan", "bid"]);
    bidder_meta.load = 40;
    let bidder = registry.register("bidder-1", 12, &bidder_meta)?;

    let both = registry.find_by_capability(&["plan", "bid"])?;
    check("agents that plan and bid", both.len(), 1)?;
    check(
        "their capabilities",
        registry.capability_names(&both[0].metadata.capabilities),
        vec!["plan".to_string(), "bid".to_string()],
    )?;
    check("planners", registry.find_by_capability(&["plan"])?.len(), 2)?;
    let light = registry.query(&[Filter::new(Field::Load, Op::Lt(10))])?;
    check("lightly loaded", light.len(), 1)?;

    // Only the lease can change its entry; the change is visible at once to its caller.
    let mut degraded = MetadataSpec::with_capabilities(&["plan"]);
    degraded.health = Health::Degraded;
    let entry = planner.update_metadata(&degraded)?;
    check("updated health", entry.metadata.health, Health::Degraded)?;
    check(
        "a duplicate name",
        registry
            .register("planner-1", 99, &MetadataSpec::default())
            .is_err(),
        true,
    )?;

    planner.release()?; // or drop it: the entry goes either way
    drop(bidder);
    engine.flush()?;
    check("entries after release", registry.count()?, 0)?;
    println!("registry: 2 leases, capability search, query, update, release");
    Ok(())
}

/// Agent state written one by one and through a batching writer, read back from
/// snapshots after a flush (read-your-writes).
fn agents_and_batches(engine: &Engine) -> Result {
    let busy = AgentState {
        status: AgentStatus::Busy,
        load: 3,
        ..AgentState::default()
    };
    engine.agents().update(1, busy)?; // fire-and-forget
    let acked = engine.agents().update_acked(2, busy).wait()??; // with the snapshot
    check("acknowledged agent", acked.id, 2)?;
    engine.agents().update(3, AgentState::default())?;

    // A host thread that writes a lot batches per shard: one message per 64 writes.
    let mut writer = engine.batch_writer(64);
    for id in 100..300 {
        let buffered = writer.update_agent(id, AgentState::default())?;
        if let Buffered::Sent(n) = buffered {
            check("a full batch", n, 64)?;
        }
    }
    writer.flush()?; // what is still held goes now
    engine.flush()?;
    check(
        "agent 1",
        engine.agents().get(1)?.map(|a| a.state),
        Some(busy),
    )?;
    check("agents", engine.agents().count()?, 203)?;
    println!("agents: 3 single writes, 200 batched, read back after flush");
    Ok(())
}

/// Five auction kinds, each with its rule checked, and the market fed by their sales.
fn auctions_and_market(engine: &Engine) -> Result {
    let auctions = engine.auctions();

    // English: the highest bid at least max(reserve, highest + increment) wins.
    let english = auctions
        .create(spec(
            AuctionKind::English {
                reserve: 100,
                min_increment: 10,
            },
            1,
        ))
        .wait()??;
    auctions.bid(english, bid(21, 100)).wait()??;
    auctions.bid(english, bid(22, 120)).wait()??;
    let too_low = auctions.bid(english, bid(23, 125)).wait()?; // outer: the engine's
    check(
        "a bid under the increment is refused",
        too_low.is_err(),
        true,
    )?;
    let sold = auctions.close(english).wait()??;
    check("English winner", sold.winner(), Some(22))?;
    check("English price", sold.total_paid(), 120)?;

    // Dutch: the first bid at or above the clock price wins at that price.
    let dutch = AuctionKind::Dutch {
        start: 1_000,
        step: 100,
        tick_nanos: 3_600_000_000_000, // one step an hour: the price stays 1,000 here
        reserve: 500,
    };
    let dutch = auctions.create(spec(dutch, 2)).wait()??;
    check(
        "Dutch price now",
        auctions.status(dutch)?.and_then(|s| s.price),
        Some(1_000),
    )?;
    let receipt = auctions.bid(dutch, bid(31, 1_000)).wait()??;
    let closed = receipt
        .closed
        .ok_or("a Dutch bid at the price closes the auction")?;
    check("Dutch winner", closed.winner(), Some(31))?;

    // Sealed first-price: hidden amounts; the highest pays its bid.
    let sealed = auctions
        .create(spec(AuctionKind::SealedFirstPrice { reserve: 50 }, 3))
        .wait()??;
    auctions.bid(sealed, bid(41, 70)).wait()??;
    auctions.bid(sealed, bid(42, 90)).wait()??;
    check(
        "sealed price while open",
        auctions.status(sealed)?.and_then(|s| s.price),
        None,
    )?;
    let sold = auctions.close(sealed).wait()??;
    check(
        "sealed winner pays its bid",
        (sold.winner(), sold.total_paid()),
        (Some(42), 90),
    )?;

    // Vickrey: the highest wins and pays max(second-highest, reserve).
    let vickrey = auctions
        .create(spec(AuctionKind::Vickrey { reserve: 50 }, 4))
        .wait()??;
    auctions.bid(vickrey, bid(51, 80)).wait()??;
    auctions.bid(vickrey, bid(52, 100)).wait()??;
    let sold = auctions.close(vickrey).wait()??;
    check(
        "Vickrey winner pays the second price",
        (sold.winner(), sold.total_paid()),
        (Some(52), 80),
    )?;

    // Combinatorial: the non-overlapping bundles with the largest total win.
    let combo = auctions
        .create(spec(
            AuctionKind::Combinatorial {
                items: 3,
                reserve: 0,
            },
            5,
        ))
        .wait()??;
    for (bidder, bundle, amount) in [(61, 0b011, 100), (62, 0b100, 50), (63, 0b111, 120)] {
        auctions
            .bid(
                combo,
                Bid {
                    bidder,
                    amount,
                    bundle,
                },
            )
            .wait()??;
    }
    let sold = auctions.close(combo).wait()??;
    check("combinatorial winning bids", sold.winning_bids(), 2)?;
    check("combinatorial total", sold.total_paid(), 150)?;

    // An auction with no bid can be cancelled; listings read the snapshots.
    let idle = auctions
        .create(spec(
            AuctionKind::English {
                reserve: 1,
                min_increment: 1,
            },
            6,
        ))
        .wait()??;
    let filter = AuctionFilter {
        kind: Some(KindTag::English),
        category: Some(6),
    };
    check(
        "open English auctions in 6",
        auctions.list_active(filter)?.len(),
        1,
    )?;
    auctions.cancel(idle).wait()??;

    // Market data: updates are asynchronous; each sale fed its category's key too.
    engine.market().update(MarketUpdate {
        key: 100,
        price: 10,
        volume: 3,
    })?;
    let state = engine
        .market()
        .update_acked(MarketUpdate {
            key: 100,
            price: 20,
            volume: 1,
        })
        .wait()??;
    check("VWAP of key 100", state.vwap, 12)?; // (10·3 + 20·1) / 4, rounded down
    engine.flush()?; // the sales' feeds, shard to shard, are applied too
    let fed = engine
        .market()
        .state(1)?
        .ok_or("the English sale feeds key 1")?;
    check("key 1 last price", fed.last_price, 120)?;
    println!("auctions: English, Dutch, sealed, Vickrey, combinatorial, cancel; market fed");
    Ok(())
}

/// Pricing on the task pool, then from its cache; a host task and a panicking one.
fn pricing_and_tasks(engine: &Engine) -> Result {
    let input = PricingInput {
        recent_prices: vec![100.0, 105.0, 112.0],
        demand: 3.0,
        supply: 2.0,
        base_price: 10.0,
    };
    let pricing = engine.pricing().calculate(&input).wait()??;
    check("trend", pricing.trend, Trend::Rising)?;
    check("cached", engine.pricing().cached(&input)?, Some(pricing))?;

    // A host task on the same bounded pool (a panic in it would come back as
    // `Ok(Err(TaskError::Panicked(_)))`, and the pool would go on).
    check("a task", engine.tasks().spawn(|| 6 * 7).wait()?, Ok(42))?;
    check("tasks completed", engine.tasks().stats().completed, 2)?; // with the pricing
    println!("pricing: calculated and cached; tasks: one result");
    Ok(())
}

/// A majority vote among three registered agents.
fn coordination(engine: &Engine) -> Result {
    let coordination = engine.coordination();
    let deadline = engine.clock().now() + 60_000_000_000; // a minute from now
    let session = coordination.initiate(&[1, 2, 3], Protocol::Majority, deadline)?;
    check(
        "first vote decides nothing",
        coordination.vote(session, 1, 7).wait()??,
        None,
    )?;
    let done = coordination
        .vote(session, 2, 7)
        .wait()??
        .ok_or("two of three votes decide a majority")?;
    check("decided choice", done.decided, Some(7))?;
    engine.flush()?;
    let status = coordination.status(session)?.ok_or("the session is kept")?;
    check("session state", status.state, SessionState::Decided)?;
    println!("coordination: majority of 3 decided choice 7");
    Ok(())
}

/// A barrier for three parties: two threads and this one; exactly one leader.
fn barriers(engine: &Engine) -> Result {
    let barrier = engine.barriers().create(1, 3)?;
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let handle = engine.handle(); // owned: Clone + Send + Sync + 'static
            std::thread::spawn(move || handle.barriers().wait(1, Duration::from_secs(10)))
        })
        .collect();
    let mine = barrier.wait(Duration::from_secs(10))?;
    let mut leaders = usize::from(mine.is_leader);
    for thread in threads {
        let arrival = thread.join().map_err(|_| "a barrier thread panicked")??;
        check("generation", arrival.generation, 0)?;
        leaders += usize::from(arrival.is_leader);
    }
    check("leaders", leaders, 1)?;
    engine.barriers().remove(1)?;
    println!("barriers: 3 parties met, 1 leader");
    Ok(())
}

/// What the subscriber received, and the history by correlation id.
fn events(engine: &Engine, auction_events: &mabeam::events::Subscription) -> Result {
    engine
        .events()
        .publish("host.order.placed", b"order 17", Some(17))?;
    engine.flush()?;
    // Everything the shards published before the flush is queued: drain without blocking.
    let received: Vec<_> = std::iter::from_fn(|| auction_events.try_recv()).collect();
    let closed = received
        .iter()
        .filter(|e| e.topic == "auction.closed")
        .count();
    check("auction.closed events", closed, 5)?;
    check("auctions lagged", auction_events.lagged(), 0)?;

    let query = HistoryQuery {
        correlation: Some(17),
        ..HistoryQuery::default()
    };
    let history = engine.events().history(&query)?;
    check("history by correlation", history.len(), 1)?;
    let Payload::Host(bytes) = &history[0].payload else {
        return Err("the host event's payload".into());
    };
    check("payload", &bytes[..], &b"order 17"[..])?;
    println!(
        "events: {} auction events received, host event found in history",
        received.len()
    );
    Ok(())
}
