//! Bad input, table-driven: every public operation called with each kind of bad input
//! returns its typed error, nothing panics, and the engine's observable state (every
//! read the services offer over the fixture's ids, the event history, the counters) is
//! the same before and after the call. Each row names the operation and the input kind,
//! so a failure says which.
//!
//! Covered elsewhere: a call refused for a full mailbox (`tests/error_path.rs`: engine
//! failures are the outer `Err` of a ticket's wait).

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use mabeam::agents::{AgentError, AgentSnapshot, AgentState};
use mabeam::auctions::{
    AuctionError, AuctionFilter, AuctionId, AuctionKind, AuctionSpec, AuctionState, AuctionStatus,
    Bid, SpecError,
};
use mabeam::barriers::{BarrierError, MAX_PARTIES};
use mabeam::coordination::{
    CoordinationError, Protocol, SessionState, SessionStatus, MAX_PARTICIPANTS,
};
use mabeam::events::{Event, EventError, HistoryQuery};
use mabeam::market::{MarketError, MarketState, MarketUpdate};
use mabeam::pricing::{Pricing, PricingError, PricingField, PricingInput, MAX_RECENT_PRICES};
use mabeam::registry::{Entry, Lease, MetadataSpec, RegistryError, MAX_CAPABILITIES, MAX_NAME_LEN};
use mabeam::{Clock, Config, Engine, Error, ManualClock, TaskStats};
use mabeam_shards::topic::{TopicError, MAX_TOPIC_LEN};

/// `Ok` if `$got` matches `$pat`, else what it was instead.
macro_rules! want {
    ($got:expr, $pat:pat $(if $guard:expr)?) => {{
        let got = $got;
        if matches!(&got, $pat $(if $guard)?) {
            Ok(())
        } else {
            Err(format!("got {:?}, want {}", got, stringify!($pat)))
        }
    }};
}

const SELLER: u64 = 1;
const AGENTS: [u64; 4] = [1, 2, 3, 4];
const MARKET_KEY: u64 = 7;
const BARRIER: u64 = 5;
const FAR: u64 = 1 << 60;

/// The engine and the things the rows aim at.
struct Fixture {
    engine: Engine,
    clock: ManualClock,
    _lease: Lease,
    /// English, reserve 100, increment 5, one bid of 120 by bidder 2.
    english: AuctionId,
    /// English with the largest increment and a bid of 1: any next minimum overflows.
    huge_increment: AuctionId,
    /// Dutch from 1,000 down by 10 per µs to 500.
    dutch: AuctionId,
    /// Sealed first-price with a bid by bidder 2.
    sealed: AuctionId,
    /// Combinatorial on 4 items, a bid of `u64::MAX` on item 0.
    combinatorial: AuctionId,
    closed: AuctionId,
    cancelled: AuctionId,
    expired: AuctionId,
    /// Majority vote among agents 1..=3; agent 1 voted.
    session: u64,
    /// Agent 4 alone, decided.
    decided: u64,
    pricing: PricingInput,
}

/// Everything the services let a caller read about the fixture.
#[derive(Debug, PartialEq)]
struct Snapshot {
    registry: Vec<Entry>,
    registry_count: usize,
    agents: Vec<Option<AgentSnapshot>>,
    agent_count: usize,
    auctions: Vec<Option<AuctionStatus>>,
    active: Vec<AuctionStatus>,
    market: Option<MarketState>,
    pricing: Option<Pricing>,
    sessions: Vec<Option<SessionStatus>>,
    history: Vec<Event>,
    subscriptions: u64,
    barrier: (usize, u64),
    tasks: (u64, u64),
}

impl Fixture {
    fn auction_ids(&self) -> [AuctionId; 8] {
        [
            self.english,
            self.huge_increment,
            self.dutch,
            self.sealed,
            self.combinatorial,
            self.closed,
            self.cancelled,
            self.expired,
        ]
    }

    fn snapshot(&self) -> Snapshot {
        let e = &self.engine;
        e.flush().expect("flush");
        let mut registry = e.registry().entries().expect("entries");
        registry.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        let mut active = e
            .auctions()
            .list_active(AuctionFilter::default())
            .expect("list");
        active.sort_by_key(|s| s.id);
        let barrier = e.barriers().get(BARRIER).expect("barrier");
        let TaskStats {
            spawned, completed, ..
        } = e.tasks().stats();
        Snapshot {
            registry,
            registry_count: e.registry().count().expect("count"),
            agents: AGENTS
                .iter()
                .chain(&[99])
                .map(|&id| e.agents().get(id).expect("get"))
                .collect(),
            agent_count: e.agents().count().expect("count"),
            auctions: self
                .auction_ids()
                .iter()
                .map(|&id| e.auctions().status(id).expect("status"))
                .collect(),
            active,
            market: e.market().state(MARKET_KEY).expect("market"),
            pricing: e.pricing().cached(&self.pricing).expect("cached"),
            sessions: [self.session, self.decided]
                .iter()
                .map(|&id| e.coordination().status(id).expect("status"))
                .collect(),
            history: e
                .events()
                .history(&HistoryQuery::default())
                .expect("history"),
            subscriptions: e.events().subscriptions(),
            barrier: (barrier.parties(), barrier.generation()),
            tasks: (spawned, completed),
        }
    }
}

fn english(reserve: u64, min_increment: u64) -> AuctionSpec {
    AuctionSpec {
        kind: AuctionKind::English {
            reserve,
            min_increment,
        },
        seller: SELLER,
        category: 3,
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

/// The fixture on a sharded engine of 2 shards, or on the centralized (GenServer) shape.
fn fixture(centralized: bool) -> Fixture {
    let (engine, clock) = if centralized {
        let clock = ManualClock::new(1_000);
        let engine = Engine::start(
            Config::centralized()
                .with_clock(Clock::Manual(clock.clone()))
                .with_pin_threads(false),
        )
        .expect("valid config");
        (engine, clock)
    } else {
        common::manual_engine(2)
    };
    let a = engine.auctions();
    let create = |spec| a.create(spec).wait().expect("answered").expect("created");
    let place = |id, b| {
        a.bid(id, b).wait().expect("answered").expect("accepted");
    };
    // Expired first, while the clock is before its deadline.
    let expired = create(AuctionSpec {
        deadline: Some(2_000),
        ..english(100, 5)
    });
    clock.set(2_000);
    engine.flush().unwrap(); // a batch runs the shards' timers
    assert_eq!(
        a.status(expired).unwrap().unwrap().state,
        AuctionState::Expired
    );
    let english_id = create(english(100, 5));
    place(english_id, bid(2, 120));
    let huge_increment = create(english(0, u64::MAX));
    place(huge_increment, bid(2, 1));
    let dutch = create(AuctionSpec {
        kind: AuctionKind::Dutch {
            start: 1_000,
            step: 10,
            tick_nanos: 1_000,
            reserve: 500,
        },
        ..english(0, 1)
    });
    let sealed = create(AuctionSpec {
        kind: AuctionKind::SealedFirstPrice { reserve: 10 },
        ..english(0, 1)
    });
    place(sealed, bid(2, 50));
    let combinatorial = create(AuctionSpec {
        kind: AuctionKind::Combinatorial {
            items: 4,
            reserve: 0,
        },
        ..english(0, 1)
    });
    place(
        combinatorial,
        Bid {
            bidder: 2,
            amount: u64::MAX,
            bundle: 0b1,
        },
    );
    let closed = create(english(0, 1));
    a.close(closed).wait().unwrap().unwrap();
    let cancelled = create(english(0, 1));
    a.cancel(cancelled).wait().unwrap().unwrap();

    let lease = engine
        .registry()
        .register("alpha", 11, &MetadataSpec::with_capabilities(&["plan"]))
        .expect("registered");
    for id in AGENTS {
        engine.agents().update(id, AgentState::default()).unwrap();
    }
    engine.flush().unwrap();
    engine
        .market()
        .update_acked(MarketUpdate {
            key: MARKET_KEY,
            price: 1,
            volume: u64::MAX,
        })
        .wait()
        .unwrap()
        .unwrap();
    let c = engine.coordination();
    let session = c.initiate(&AGENTS[..3], Protocol::Majority, FAR).unwrap();
    c.vote(session, 1, 0).wait().unwrap().unwrap();
    let decided = c.initiate(&AGENTS[3..], Protocol::Majority, FAR).unwrap();
    assert!(c.vote(decided, 4, 0).wait().unwrap().unwrap().is_some());
    engine.barriers().create(BARRIER, 2).unwrap();
    let pricing = PricingInput {
        recent_prices: vec![100.0, 110.0],
        demand: 2.0,
        supply: 1.0,
        base_price: 10.0,
    };
    engine
        .pricing()
        .calculate(&pricing)
        .wait()
        .unwrap()
        .unwrap();
    Fixture {
        engine,
        clock,
        _lease: lease,
        english: english_id,
        huge_increment,
        dutch,
        sealed,
        combinatorial,
        closed,
        cancelled,
        expired,
        session,
        decided,
        pricing,
    }
}

type Call = Box<dyn Fn(&Fixture) -> Result<(), String>>;

/// One row: the operation, the kind of bad input, and the call that checks its error.
struct Row {
    op: &'static str,
    input: &'static str,
    call: Call,
}

fn row(
    op: &'static str,
    input: &'static str,
    call: impl Fn(&Fixture) -> Result<(), String> + 'static,
) -> Row {
    Row {
        op,
        input,
        call: Box::new(call),
    }
}

/// An id on shard 0 that was never handed out, and one on a shard that does not exist.
const UNKNOWN_AUCTION: AuctionId = AuctionId::new(0, (1 << 47) - 1);
const NO_SUCH_SHARD: AuctionId = AuctionId::new(999, 0);

fn long_name() -> String {
    "n".repeat(MAX_NAME_LEN + 1)
}

fn pricing_with(f: impl FnOnce(&mut PricingInput)) -> PricingInput {
    let mut input = PricingInput {
        recent_prices: vec![1.0, 2.0],
        demand: 1.0,
        supply: 1.0,
        base_price: 1.0,
    };
    f(&mut input);
    input
}

fn rows() -> Vec<Row> {
    let spec_rows: Vec<(&'static str, AuctionSpec, SpecError)> = vec![
        ("zero increment", english(0, 0), SpecError::ZeroIncrement),
        (
            "dutch zero step",
            AuctionSpec {
                kind: AuctionKind::Dutch {
                    start: 10,
                    step: 0,
                    tick_nanos: 1,
                    reserve: 1,
                },
                ..english(0, 1)
            },
            SpecError::ZeroStep,
        ),
        (
            "dutch zero tick",
            AuctionSpec {
                kind: AuctionKind::Dutch {
                    start: 10,
                    step: 1,
                    tick_nanos: 0,
                    reserve: 1,
                },
                ..english(0, 1)
            },
            SpecError::ZeroTick,
        ),
        (
            "dutch start below reserve",
            AuctionSpec {
                kind: AuctionKind::Dutch {
                    start: 1,
                    step: 1,
                    tick_nanos: 1,
                    reserve: 10,
                },
                ..english(0, 1)
            },
            SpecError::StartBelowReserve,
        ),
        (
            "combinatorial zero items",
            AuctionSpec {
                kind: AuctionKind::Combinatorial {
                    items: 0,
                    reserve: 0,
                },
                ..english(0, 1)
            },
            SpecError::InvalidItems,
        ),
        (
            "combinatorial 65 items",
            AuctionSpec {
                kind: AuctionKind::Combinatorial {
                    items: 65,
                    reserve: 0,
                },
                ..english(0, 1)
            },
            SpecError::InvalidItems,
        ),
        (
            "buy-now below reserve",
            AuctionSpec {
                buy_now: Some(50),
                ..english(100, 1)
            },
            SpecError::BuyNowBelowReserve,
        ),
        (
            "buy-now zero",
            AuctionSpec {
                buy_now: Some(0),
                ..english(0, 1)
            },
            SpecError::BuyNowBelowReserve,
        ),
        (
            "buy-now on a sealed kind",
            AuctionSpec {
                kind: AuctionKind::Vickrey { reserve: 0 },
                buy_now: Some(50),
                ..english(0, 1)
            },
            SpecError::BuyNowNotSupported,
        ),
        (
            "deadline now",
            AuctionSpec {
                deadline: Some(2_000),
                ..english(0, 1)
            },
            SpecError::DeadlineNotInFuture,
        ),
        (
            "deadline zero",
            AuctionSpec {
                deadline: Some(0),
                ..english(0, 1)
            },
            SpecError::DeadlineNotInFuture,
        ),
    ];
    let mut rows: Vec<Row> = spec_rows
        .into_iter()
        .map(|(input, spec, want)| {
            row("auctions.create", input, move |f| {
                let got = f.engine.auctions().create(spec).wait();
                if got == Ok(Err(AuctionError::InvalidSpec(want))) {
                    Ok(())
                } else {
                    Err(format!("got {got:?}, want InvalidSpec({want:?})"))
                }
            })
        })
        .collect();

    // Auctions: unknown ids, ended auctions, the rules.
    for (input, id) in [
        ("unknown id", UNKNOWN_AUCTION),
        ("id of no shard", NO_SUCH_SHARD),
    ] {
        rows.push(row("auctions.bid", input, move |f| {
            want!(
                f.engine.auctions().bid(id, bid(2, 500)).wait(),
                Ok(Err(AuctionError::NotFound { id: got })) if *got == id
            )
        }));
        rows.push(row("auctions.close", input, move |f| {
            want!(
                f.engine.auctions().close(id).wait(),
                Ok(Err(AuctionError::NotFound { .. }))
            )
        }));
        rows.push(row("auctions.cancel", input, move |f| {
            want!(
                f.engine.auctions().cancel(id).wait(),
                Ok(Err(AuctionError::NotFound { .. }))
            )
        }));
        rows.push(row("auctions.status", input, move |f| {
            want!(f.engine.auctions().status(id), Ok(None))
        }));
    }
    rows.push(row("auctions.bid_nowait", "id of no shard", |f| {
        want!(
            f.engine.auctions().bid_nowait(NO_SUCH_SHARD, bid(2, 500)),
            Err(AuctionError::NotFound { .. })
        )
    }));
    rows.push(row(
        "auctions.bid_nowait",
        "unknown id (applied, refused)",
        |f| {
            want!(
                f.engine.auctions().bid_nowait(UNKNOWN_AUCTION, bid(2, 500)),
                Ok(())
            )
        },
    ));
    for (input, pick, state) in [
        ("closed auction", 0usize, AuctionState::Closed),
        ("cancelled auction", 1, AuctionState::Cancelled),
        ("expired auction", 2, AuctionState::Expired),
    ] {
        let id_of = move |f: &Fixture| [f.closed, f.cancelled, f.expired][pick];
        rows.push(row("auctions.bid", input, move |f| {
            want!(
                f.engine.auctions().bid(id_of(f), bid(2, 500)).wait(),
                Ok(Err(AuctionError::NotOpen { state: s })) if *s == state
            )
        }));
        rows.push(row("auctions.close", input, move |f| {
            want!(
                f.engine.auctions().close(id_of(f)).wait(),
                Ok(Err(AuctionError::NotOpen { state: s })) if *s == state
            )
        }));
        rows.push(row("auctions.cancel", input, move |f| {
            want!(
                f.engine.auctions().cancel(id_of(f)).wait(),
                Ok(Err(AuctionError::NotOpen { state: s })) if *s == state
            )
        }));
    }
    rows.push(row(
        "auctions.bid",
        "english under highest + increment",
        |f| {
            want!(
                f.engine.auctions().bid(f.english, bid(3, 124)).wait(),
                Ok(Err(AuctionError::BidTooLow { minimum: 125 }))
            )
        },
    ));
    rows.push(row("auctions.bid", "amount zero", |f| {
        want!(
            f.engine.auctions().bid(f.english, bid(3, 0)).wait(),
            Ok(Err(AuctionError::BidTooLow { .. }))
        )
    }));
    rows.push(row("auctions.bid", "dutch under the clock price", |f| {
        want!(
            f.engine.auctions().bid(f.dutch, bid(3, 999)).wait(),
            Ok(Err(AuctionError::BidTooLow { minimum: 1_000 }))
        )
    }));
    rows.push(row("auctions.bid", "sealed under reserve", |f| {
        want!(
            f.engine.auctions().bid(f.sealed, bid(3, 9)).wait(),
            Ok(Err(AuctionError::BidTooLow { minimum: 10 }))
        )
    }));
    rows.push(row("auctions.bid", "seller bids", |f| {
        want!(
            f.engine.auctions().bid(f.english, bid(SELLER, 500)).wait(),
            Ok(Err(AuctionError::SellerBid))
        )
    }));
    rows.push(row("auctions.bid", "sealed second bid", |f| {
        want!(
            f.engine.auctions().bid(f.sealed, bid(2, 60)).wait(),
            Ok(Err(AuctionError::AlreadyBid { bidder: 2 }))
        )
    }));
    rows.push(row("auctions.bid", "bundle on a single-item kind", |f| {
        let b = Bid {
            bundle: 1,
            ..bid(3, 500)
        };
        want!(
            f.engine.auctions().bid(f.english, b).wait(),
            Ok(Err(AuctionError::InvalidBundle { bundle: 1 }))
        )
    }));
    for (input, bundle) in [("empty bundle", 0u64), ("bundle beyond the items", 1 << 4)] {
        rows.push(row("auctions.bid", input, move |f| {
            let b = Bid {
                bundle,
                ..bid(3, 5)
            };
            want!(
                f.engine.auctions().bid(f.combinatorial, b).wait(),
                Ok(Err(AuctionError::InvalidBundle { bundle: got })) if *got == bundle
            )
        }));
    }
    rows.push(row("auctions.bid", "overflowing english minimum", |f| {
        want!(
            f.engine
                .auctions()
                .bid(f.huge_increment, bid(3, u64::MAX))
                .wait(),
            Ok(Err(AuctionError::Overflow))
        )
    }));
    rows.push(row("auctions.bid", "overflowing combinatorial sum", |f| {
        let b = Bid {
            bidder: 3,
            amount: 1,
            bundle: 0b10,
        };
        want!(
            f.engine.auctions().bid(f.combinatorial, b).wait(),
            Ok(Err(AuctionError::Overflow))
        )
    }));
    rows.push(row("auctions.cancel", "auction with bids", |f| {
        want!(
            f.engine.auctions().cancel(f.english).wait(),
            Ok(Err(AuctionError::HasBids { count: 1 }))
        )
    }));

    // Registry.
    rows.push(row("registry.register", "empty name", |f| {
        want!(
            f.engine
                .registry()
                .register("", 1, &MetadataSpec::default()),
            Err(RegistryError::InvalidName { len: 0 })
        )
    }));
    rows.push(row("registry.register", "over-long name", |f| {
        want!(
            f.engine
                .registry()
                .register(&long_name(), 1, &MetadataSpec::default()),
            Err(RegistryError::InvalidName { len }) if *len == MAX_NAME_LEN + 1
        )
    }));
    rows.push(row(
        "registry.register",
        "control characters in the name",
        |f| {
            want!(
                f.engine
                    .registry()
                    .register("a\0b\n c", 1, &MetadataSpec::default()),
                Err(RegistryError::ControlCharacter { at: 1 })
            )
        },
    ));
    rows.push(row(
        "registry.register",
        "control character in a capability",
        |f| {
            want!(
                f.engine.registry().register(
                    "fresh",
                    1,
                    &MetadataSpec::with_capabilities(&["pl\tan"])
                ),
                Err(RegistryError::InvalidCapability)
            )
        },
    ));
    rows.push(row("registry.register", "duplicate name", |f| {
        want!(
            f.engine
                .registry()
                .register("alpha", 2, &MetadataSpec::default()),
            Err(RegistryError::AlreadyRegistered)
        )
    }));
    rows.push(row("registry.register", "empty capability", |f| {
        want!(
            f.engine
                .registry()
                .register("beta", 2, &MetadataSpec::with_capabilities(&[""])),
            Err(RegistryError::InvalidCapability)
        )
    }));
    rows.push(row("registry.register", "over-long capability", |f| {
        want!(
            f.engine.registry().register(
                "beta",
                2,
                &MetadataSpec::with_capabilities(&[long_name()])
            ),
            Err(RegistryError::InvalidCapability)
        )
    }));
    rows.push(row("registry.lookup", "empty name", |f| {
        want!(
            f.engine.registry().lookup(""),
            Err(RegistryError::InvalidName { len: 0 })
        )
    }));
    rows.push(row("registry.lookup", "over-long name", |f| {
        want!(
            f.engine.registry().lookup(&long_name()),
            Err(RegistryError::InvalidName { .. })
        )
    }));
    rows.push(row(
        "registry.find_by_capability",
        "unknown capability",
        |f| {
            want!(
                f.engine.registry().find_by_capability(&["no-such"]),
                Ok(v) if v.is_empty()
            )
        },
    ));
    rows.push(row("lease.update_metadata", "empty capability", |f| {
        want!(
            f._lease
                .update_metadata(&MetadataSpec::with_capabilities(&[""])),
            Err(RegistryError::InvalidCapability)
        )
    }));

    // Agents.
    rows.push(row("agents.remove", "unknown id", |f| {
        want!(
            f.engine.agents().remove(99).wait(),
            Ok(Err(AgentError::NotFound))
        )
    }));
    rows.push(row("agents.get", "unknown id", |f| {
        want!(f.engine.agents().get(99), Ok(None))
    }));

    // Market.
    rows.push(row("market.update", "zero volume", |f| {
        want!(
            f.engine.market().update(MarketUpdate {
                key: MARKET_KEY,
                price: 5,
                volume: 0
            }),
            Err(MarketError::ZeroVolume { key: MARKET_KEY })
        )
    }));
    rows.push(row("market.update_acked", "zero volume", |f| {
        want!(
            f.engine
                .market()
                .update_acked(MarketUpdate {
                    key: MARKET_KEY,
                    price: 5,
                    volume: 0
                })
                .wait(),
            Ok(Err(MarketError::ZeroVolume { key: MARKET_KEY }))
        )
    }));
    rows.push(row("market.update_acked", "overflowing volume", |f| {
        want!(
            f.engine
                .market()
                .update_acked(MarketUpdate {
                    key: MARKET_KEY,
                    price: 5,
                    volume: 1
                })
                .wait(),
            Ok(Err(MarketError::Overflow { key: MARKET_KEY }))
        )
    }));

    // Pricing: NaN, infinities, negatives, empty and over-long lists, zero supply.
    let pricing_rows: Vec<(&'static str, PricingInput, PricingError)> = vec![
        (
            "NaN price",
            pricing_with(|p| p.recent_prices[1] = f64::NAN),
            PricingError::NotFinite(PricingField::RecentPrice { index: 1 }),
        ),
        (
            "infinite price",
            pricing_with(|p| p.recent_prices[0] = f64::INFINITY),
            PricingError::NotFinite(PricingField::RecentPrice { index: 0 }),
        ),
        (
            "negative infinite base price",
            pricing_with(|p| p.base_price = f64::NEG_INFINITY),
            PricingError::NotFinite(PricingField::BasePrice),
        ),
        (
            "NaN demand",
            pricing_with(|p| p.demand = f64::NAN),
            PricingError::NotFinite(PricingField::Demand),
        ),
        (
            "infinite supply",
            pricing_with(|p| p.supply = f64::INFINITY),
            PricingError::NotFinite(PricingField::Supply),
        ),
        (
            "negative demand",
            pricing_with(|p| p.demand = -1.0),
            PricingError::Negative(PricingField::Demand),
        ),
        (
            "zero supply",
            pricing_with(|p| p.supply = 0.0),
            PricingError::ZeroSupply,
        ),
        (
            "no prices",
            pricing_with(|p| p.recent_prices.clear()),
            PricingError::NoRecentPrices,
        ),
        (
            "too many prices",
            pricing_with(|p| p.recent_prices = vec![1.0; MAX_RECENT_PRICES + 1]),
            PricingError::TooManyPrices {
                len: MAX_RECENT_PRICES + 1,
                limit: MAX_RECENT_PRICES,
            },
        ),
    ];
    for (input, data, want) in pricing_rows {
        rows.push(row("pricing.calculate", input, move |f| {
            let got = f.engine.pricing().calculate(&data).wait();
            if got != Ok(Err(want)) {
                return Err(format!("got {got:?}, want {want:?}"));
            }
            want!(f.engine.pricing().cached(&data), Ok(None))
        }));
    }

    // Events: malformed topics and patterns, capacities.
    let too_long = "a".repeat(MAX_TOPIC_LEN + 1);
    let too_deep = vec!["a"; 64].join(".");
    let patterns: Vec<(&'static str, String)> = vec![
        ("empty pattern", String::new()),
        ("empty segment", "a..b".into()),
        ("leading dot", ".a".into()),
        ("trailing dot", "a.".into()),
        ("partial wildcard", "a*b".into()),
        ("triple star", "***".into()),
        ("rest not last", "a.**.b".into()),
        ("space", "a b".into()),
        ("over-long pattern", too_long.clone()),
        ("too many segments", too_deep.clone()),
    ];
    for (input, pattern) in patterns {
        let p = pattern.clone();
        rows.push(row("events.subscribe", input, move |f| {
            want!(
                f.engine.events().subscribe(&p, 8),
                Err(EventError::Topic(_))
            )
        }));
        rows.push(row("events.history", input, move |f| {
            let q = HistoryQuery {
                pattern: Some(pattern.clone()),
                ..HistoryQuery::default()
            };
            want!(f.engine.events().history(&q), Err(EventError::Topic(_)))
        }));
    }
    for (input, topic) in [
        ("empty topic", String::new()),
        ("wildcard in topic", "a.*".to_string()),
        ("empty segment", "a..b".to_string()),
        ("over-long topic", too_long),
        ("too many segments", too_deep),
    ] {
        rows.push(row("events.publish", input, move |f| {
            want!(
                f.engine.events().publish(&topic, b"x", None),
                Err(EventError::Topic(_))
            )
        }));
    }
    rows.push(row("events.publish", "exact topic error", |f| {
        want!(
            f.engine.events().publish("a.b*", b"x", None),
            Err(EventError::Topic(TopicError::InvalidChar {
                offset: 3,
                ch: '*'
            }))
        )
    }));
    rows.push(row("events.subscribe", "zero capacity", |f| {
        want!(
            f.engine.events().subscribe("a.*", 0),
            Err(EventError::InvalidCapacity { capacity: 0 })
        )
    }));
    rows.push(row("events.subscribe", "capacity over max_queue", |f| {
        want!(
            f.engine.events().subscribe("a.*", usize::MAX),
            Err(EventError::InvalidCapacity {
                capacity: usize::MAX
            })
        )
    }));

    // Coordination.
    rows.push(row("coordination.initiate", "unknown agents", |f| {
        want!(
            f.engine
                .coordination()
                .initiate(&[8888, 9999], Protocol::Majority, FAR),
            Err(CoordinationError::UnknownAgent { agent: 8888 })
        )
    }));
    rows.push(row("coordination.initiate", "zero parties", |f| {
        want!(
            f.engine
                .coordination()
                .initiate(&[], Protocol::Majority, FAR),
            Err(CoordinationError::NoParticipants)
        )
    }));
    rows.push(row("coordination.initiate", "too many parties", |f| {
        let many = vec![1u64; MAX_PARTICIPANTS + 1];
        want!(
            f.engine
                .coordination()
                .initiate(&many, Protocol::Majority, FAR),
            Err(CoordinationError::TooManyParticipants { .. })
        )
    }));
    rows.push(row("coordination.initiate", "duplicate party", |f| {
        want!(
            f.engine
                .coordination()
                .initiate(&[1, 2, 1], Protocol::Majority, FAR),
            Err(CoordinationError::DuplicateParticipant { agent: 1 })
        )
    }));
    rows.push(row("coordination.initiate", "deadline now", |f| {
        let now = f.clock.now();
        want!(
            f.engine
                .coordination()
                .initiate(&[1, 2], Protocol::Majority, now),
            Err(CoordinationError::DeadlineNotInFuture { .. })
        )
    }));
    for (input, fraction_permille) in [("threshold 0", 0u16), ("threshold 1001", 1001)] {
        rows.push(row("coordination.initiate", input, move |f| {
            want!(
                f.engine.coordination().initiate(
                    &[1, 2],
                    Protocol::Threshold { fraction_permille },
                    FAR
                ),
                Err(CoordinationError::InvalidThreshold { .. })
            )
        }));
    }
    rows.push(row("coordination.vote", "outsider", |f| {
        want!(
            f.engine.coordination().vote(f.session, 99, 0).wait(),
            Ok(Err(CoordinationError::NotParticipant { agent: 99 }))
        )
    }));
    rows.push(row("coordination.vote", "second vote", |f| {
        want!(
            f.engine.coordination().vote(f.session, 1, 1).wait(),
            Ok(Err(CoordinationError::AlreadyResponded { agent: 1 }))
        )
    }));
    rows.push(row("coordination.acknowledge", "vote session", |f| {
        want!(
            f.engine.coordination().acknowledge(f.session, 2).wait(),
            Ok(Err(CoordinationError::WrongProtocol { .. }))
        )
    }));
    rows.push(row("coordination.vote", "ended session", |f| {
        want!(
            f.engine.coordination().vote(f.decided, 4, 0).wait(),
            Ok(Err(CoordinationError::Completed {
                state: SessionState::Decided
            }))
        )
    }));
    for (input, id) in [("unknown id", 12_345u64), ("id of no shard", 999 << 48)] {
        rows.push(row("coordination.vote", input, move |f| {
            want!(
                f.engine.coordination().vote(id, 1, 0).wait(),
                Ok(Err(CoordinationError::UnknownSession { .. }))
            )
        }));
        rows.push(row("coordination.acknowledge", input, move |f| {
            want!(
                f.engine.coordination().acknowledge(id, 1).wait(),
                Ok(Err(CoordinationError::UnknownSession { .. }))
            )
        }));
        rows.push(row("coordination.status", input, move |f| {
            want!(f.engine.coordination().status(id), Ok(None))
        }));
    }

    // The batching writer refuses what the services refuse, before buffering.
    rows.push(row("batch_writer.bid", "id of no shard", |f| {
        let mut w = f.engine.batch_writer(4);
        want!(
            w.bid(NO_SUCH_SHARD, bid(2, 500)),
            Err(AuctionError::NotFound { .. })
        )?;
        want!(w.held(), 0)
    }));
    rows.push(row("batch_writer.market_update", "zero volume", |f| {
        let mut w = f.engine.batch_writer(4);
        want!(
            w.market_update(MarketUpdate {
                key: MARKET_KEY,
                price: 1,
                volume: 0
            }),
            Err(MarketError::ZeroVolume { .. })
        )?;
        want!(w.held(), 0)
    }));
    rows.push(row("batch_writer.create_auction", "zero increment", |f| {
        let mut w = f.engine.batch_writer(4);
        want!(
            w.create_auction(english(0, 0)).wait(),
            Ok(Err(AuctionError::InvalidSpec(SpecError::ZeroIncrement)))
        )?;
        want!(w.held(), 0)
    }));
    rows.push(row("batch_writer", "batch of zero", |f| {
        let mut w = f.engine.batch_writer(0);
        want!(
            w.bid(NO_SUCH_SHARD, bid(2, 500)),
            Err(AuctionError::NotFound { .. })
        )?;
        want!(w.flush(), Ok(0))
    }));

    // Barriers.
    rows.push(row("barriers.create", "zero parties", |f| {
        want!(
            f.engine.barriers().create(77, 0),
            Err(BarrierError::ZeroParties)
        )
    }));
    rows.push(row("barriers.create", "too many parties", |f| {
        want!(
            f.engine.barriers().create(77, MAX_PARTIES + 1),
            Err(BarrierError::TooManyParties { .. })
        )
    }));
    rows.push(row("barriers.create", "duplicate id", |f| {
        want!(
            f.engine.barriers().create(BARRIER, 3),
            Err(BarrierError::AlreadyExists { id: BARRIER })
        )
    }));
    rows.push(row("barriers.get", "unknown id", |f| {
        want!(
            f.engine.barriers().get(77),
            Err(BarrierError::NotFound { id: 77 })
        )
    }));
    rows.push(row("barriers.wait", "unknown id", |f| {
        want!(
            f.engine.barriers().wait(77, Duration::MAX),
            Err(BarrierError::NotFound { id: 77 })
        )
    }));
    rows.push(row("barriers.remove", "unknown id", |f| {
        want!(
            f.engine.barriers().remove(77),
            Err(BarrierError::NotFound { id: 77 })
        )
    }));
    rows
}

#[test]
fn every_operation_refuses_bad_input_with_its_typed_error_and_changes_nothing() {
    refuse_every_row(fixture(false));
}

#[test]
fn the_centralized_shape_refuses_the_same_bad_input_the_same_way() {
    refuse_every_row(fixture(true));
}

fn refuse_every_row(f: Fixture) {
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        let before = f.snapshot();
        let result = catch_unwind(AssertUnwindSafe(|| (row.call)(&f)));
        let after = f.snapshot();
        let what = format!("{} with {}", row.op, row.input);
        match result {
            Err(_) => failures.push(format!("{what}: panicked")),
            Ok(Err(e)) => failures.push(format!("{what}: {e}")),
            Ok(Ok(())) if before != after => failures.push(format!(
                "{what}: state changed\n before {before:?}\n after  {after:?}"
            )),
            Ok(Ok(())) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    let report = f.engine.shutdown();
    assert!(report.dead_shards().is_empty(), "no shard died");
}

#[test]
fn every_operation_after_shutdown_returns_shut_down() {
    shut_down_everywhere(fixture(false));
}

#[test]
fn every_operation_after_shutdown_returns_shut_down_in_the_centralized_shape() {
    shut_down_everywhere(fixture(true));
}

fn shut_down_everywhere(f: Fixture) {
    let handle = f.engine.handle();
    let lease_holder = f._lease;
    let ids = (f.english, f.session);
    let pricing = f.pricing.clone();
    f.engine.shutdown();
    let h = &handle;
    let (auction, session) = ids;
    type Check<'a> = (&'static str, Box<dyn Fn() -> Result<(), String> + 'a>);
    let checks: Vec<Check<'_>> = vec![
        ("flush", Box::new(|| want!(h.flush(), Err(Error::ShutDown)))),
        (
            "registry.register",
            Box::new(|| {
                want!(
                    h.registry().register("gamma", 1, &MetadataSpec::default()),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "registry.lookup",
            Box::new(|| {
                want!(
                    h.registry().lookup("alpha"),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "registry.count",
            Box::new(|| {
                want!(
                    h.registry().count(),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "registry.find_by_capability",
            Box::new(|| {
                want!(
                    h.registry().find_by_capability(&["plan"]),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "registry.find_by_capability unknown",
            Box::new(|| {
                want!(
                    h.registry().find_by_capability(&["no-such"]),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "lease.update_metadata",
            Box::new(|| {
                want!(
                    lease_holder.update_metadata(&MetadataSpec::default()),
                    Err(RegistryError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "agents.update",
            Box::new(|| {
                want!(
                    h.agents().update(1, AgentState::default()),
                    Err(AgentError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "agents.try_update",
            Box::new(|| {
                want!(
                    h.agents().try_update(1, AgentState::default()),
                    Err(AgentError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "agents.update_acked",
            Box::new(|| {
                want!(
                    h.agents().update_acked(1, AgentState::default()).wait(),
                    Err(Error::ShutDown)
                )
            }),
        ),
        (
            "agents.get",
            Box::new(|| want!(h.agents().get(1), Err(AgentError::Engine(Error::ShutDown)))),
        ),
        (
            "agents.status",
            Box::new(|| {
                want!(
                    h.agents().status(1),
                    Err(AgentError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "agents.remove",
            Box::new(|| want!(h.agents().remove(1).wait(), Err(Error::ShutDown))),
        ),
        (
            "auctions.create",
            Box::new(|| {
                want!(
                    h.auctions().create(english(0, 1)).wait(),
                    Err(Error::ShutDown) | Ok(Err(AuctionError::Engine(Error::ShutDown)))
                )
            }),
        ),
        (
            "auctions.bid",
            Box::new(|| {
                want!(
                    h.auctions().bid(auction, bid(3, 500)).wait(),
                    Err(Error::ShutDown)
                )
            }),
        ),
        (
            "auctions.bid_nowait",
            Box::new(|| {
                want!(
                    h.auctions().bid_nowait(auction, bid(3, 500)),
                    Err(AuctionError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "auctions.close",
            Box::new(|| want!(h.auctions().close(auction).wait(), Err(Error::ShutDown))),
        ),
        (
            "auctions.cancel",
            Box::new(|| want!(h.auctions().cancel(auction).wait(), Err(Error::ShutDown))),
        ),
        (
            "auctions.status",
            Box::new(|| want!(h.auctions().status(auction), Err(Error::ShutDown))),
        ),
        (
            "auctions.status of no shard",
            Box::new(|| want!(h.auctions().status(NO_SUCH_SHARD), Err(Error::ShutDown))),
        ),
        (
            "auctions.list_active",
            Box::new(|| {
                want!(
                    h.auctions().list_active(AuctionFilter::default()),
                    Err(Error::ShutDown)
                )
            }),
        ),
        (
            "market.update",
            Box::new(|| {
                want!(
                    h.market().update(MarketUpdate {
                        key: 1,
                        price: 1,
                        volume: 1
                    }),
                    Err(MarketError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "market.update_acked",
            Box::new(|| {
                want!(
                    h.market()
                        .update_acked(MarketUpdate {
                            key: 1,
                            price: 1,
                            volume: 1
                        })
                        .wait(),
                    Err(Error::ShutDown)
                )
            }),
        ),
        (
            "market.state",
            Box::new(|| want!(h.market().state(MARKET_KEY), Err(Error::ShutDown))),
        ),
        (
            "pricing.calculate",
            Box::new(|| {
                let fresh = pricing_with(|_| {});
                want!(h.pricing().calculate(&fresh).wait(), Err(Error::ShutDown))
            }),
        ),
        (
            "pricing.cached",
            Box::new(|| want!(h.pricing().cached(&pricing), Err(Error::ShutDown))),
        ),
        (
            "tasks.spawn",
            Box::new(|| want!(h.tasks().spawn(|| 1).wait(), Err(Error::ShutDown))),
        ),
        (
            "events.subscribe",
            Box::new(|| {
                want!(
                    h.events().subscribe("a.*", 8),
                    Err(EventError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "events.publish",
            Box::new(|| {
                want!(
                    h.events().publish("a.b", b"x", None),
                    Err(EventError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "events.history",
            Box::new(|| {
                want!(
                    h.events().history(&HistoryQuery::default()),
                    Err(EventError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "coordination.initiate",
            Box::new(|| {
                want!(
                    h.coordination().initiate(&[1, 2], Protocol::Majority, FAR),
                    Err(CoordinationError::Engine(Error::ShutDown))
                )
            }),
        ),
        (
            "coordination.vote",
            Box::new(|| {
                want!(
                    h.coordination().vote(session, 2, 0).wait(),
                    Err(Error::ShutDown)
                )
            }),
        ),
        (
            "coordination.status",
            Box::new(|| want!(h.coordination().status(session), Err(Error::ShutDown))),
        ),
        (
            "barriers.create",
            Box::new(|| want!(h.barriers().create(78, 2), Err(BarrierError::ShutDown))),
        ),
        (
            "barriers.get",
            Box::new(|| want!(h.barriers().get(BARRIER), Err(BarrierError::ShutDown))),
        ),
        (
            "barriers.wait",
            Box::new(|| {
                want!(
                    h.barriers().wait(BARRIER, Duration::MAX),
                    Err(BarrierError::ShutDown)
                )
            }),
        ),
        (
            "batch_writer.flush",
            Box::new(|| {
                let mut w = h.batch_writer(4);
                match w.update_agent(1, AgentState::default()) {
                    Err(Error::ShutDown) => Ok(()),
                    Ok(_) => want!(w.flush(), Err(Error::ShutDown)),
                    other => Err(format!("update_agent: got {other:?}")),
                }
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (op, check) in &checks {
        match catch_unwind(AssertUnwindSafe(check)) {
            Err(_) => failures.push(format!("{op} after shutdown: panicked")),
            Ok(Err(e)) => failures.push(format!("{op} after shutdown: {e}")),
            Ok(Ok(())) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} calls failed:\n{}",
        failures.len(),
        checks.len(),
        failures.join("\n")
    );
    drop(checks);
    // Dropping what was handed out before shutdown is quiet too.
    drop(lease_holder);
}

#[test]
fn refused_registrations_do_not_spend_capability_slots() {
    // Before the fix, `register` interned each capability name before checking the
    // next, so a registration refused for an invalid capability kept the valid names
    // before it in the engine-wide interner (MAX_CAPABILITIES slots, never freed): 256
    // refused calls left no room for a real capability.
    let engine = common::engine(1);
    let registry = engine.registry();
    for i in 0..MAX_CAPABILITIES {
        let spec = MetadataSpec::with_capabilities(&[format!("cap-{i}"), String::new()]);
        assert_eq!(
            registry.register("beta", 1, &spec).map(|_| ()),
            Err(RegistryError::InvalidCapability)
        );
        let lease = registry
            .register("gamma", 2, &MetadataSpec::default())
            .unwrap();
        let spec = MetadataSpec::with_capabilities(&[format!("upd-{i}"), "x".repeat(65)]);
        assert_eq!(
            lease.update_metadata(&spec).map(|_| ()),
            Err(RegistryError::InvalidCapability)
        );
        lease.release().unwrap();
    }
    let lease = registry
        .register("delta", 3, &MetadataSpec::with_capabilities(&["real"]))
        .expect("the refused calls left the capability slots free");
    assert_eq!(registry.find_by_capability(&["real"]).unwrap().len(), 1);
    assert!(registry.find_by_capability(&["cap-0"]).unwrap().is_empty());
    drop(lease);
}

#[test]
fn every_bound_hit_is_a_typed_error_and_changes_nothing() {
    let clock = ManualClock::new(1_000);
    let mut config = common::config(1)
        .with_clock(Clock::Manual(clock))
        .with_registry_capacity(1)
        .with_agent_capacity(1)
        .with_max_barriers(1);
    config.economics.auctions.max_open = 1;
    config.economics.market.max_keys = 1;
    config.events.max_subscriptions = 1;
    config.coordination.max_open = 1;
    let engine = Engine::start(config).expect("valid config");
    let _lease = engine
        .registry()
        .register("alpha", 1, &MetadataSpec::default())
        .unwrap();
    engine
        .agents()
        .update_acked(1, AgentState::default())
        .wait()
        .unwrap()
        .unwrap();
    let auction = engine
        .auctions()
        .create(english(0, 1))
        .wait()
        .unwrap()
        .unwrap();
    let update = |key| MarketUpdate {
        key,
        price: 1,
        volume: 1,
    };
    engine
        .market()
        .update_acked(update(1))
        .wait()
        .unwrap()
        .unwrap();
    let _sub = engine.events().subscribe("a.*", 4).unwrap();
    let session = engine
        .coordination()
        .initiate(&[1], Protocol::Majority, FAR)
        .unwrap();
    let _barrier = engine.barriers().create(1, 2).unwrap();
    let snapshot = |engine: &Engine| {
        engine.flush().unwrap();
        (
            engine.registry().entries().unwrap(),
            engine.agents().count().unwrap(),
            engine.agents().get(2).unwrap(),
            engine
                .auctions()
                .list_active(AuctionFilter::default())
                .unwrap(),
            engine.auctions().status(auction).unwrap(),
            (
                engine.market().state(1).unwrap(),
                engine.market().state(2).unwrap(),
            ),
            engine.events().subscriptions(),
            engine.coordination().status(session).unwrap(),
            engine.barriers().get(2).is_err(),
        )
    };
    type Check = (&'static str, Box<dyn Fn(&Engine) -> Result<(), String>>);
    let checks: Vec<Check> = vec![
        (
            "registry.register beyond registry_capacity",
            Box::new(|e| {
                want!(
                    e.registry().register("beta", 2, &MetadataSpec::default()),
                    Err(RegistryError::Full { .. })
                )
            }),
        ),
        (
            "agents.update_acked beyond agent_capacity",
            Box::new(|e| {
                want!(
                    e.agents().update_acked(2, AgentState::default()).wait(),
                    Ok(Err(AgentError::Full { capacity: 1 }))
                )
            }),
        ),
        (
            "auctions.create beyond max_open",
            Box::new(|e| {
                want!(
                    e.auctions().create(english(0, 1)).wait(),
                    Ok(Err(AuctionError::TooManyAuctions { limit: 1 }))
                )
            }),
        ),
        (
            "market.update_acked beyond max_keys",
            Box::new(move |e| {
                want!(
                    e.market().update_acked(update(2)).wait(),
                    Ok(Err(MarketError::TooManyKeys { limit: 1 }))
                )
            }),
        ),
        (
            "events.subscribe beyond max_subscriptions",
            Box::new(|e| {
                want!(
                    e.events().subscribe("b.*", 4),
                    Err(EventError::TooManySubscriptions)
                )
            }),
        ),
        (
            "coordination.initiate beyond max_open",
            Box::new(|e| {
                want!(
                    e.coordination().initiate(&[1], Protocol::Majority, FAR),
                    Err(CoordinationError::TooManySessions { limit: 1 })
                )
            }),
        ),
        (
            "barriers.create beyond max_barriers",
            Box::new(|e| {
                want!(
                    e.barriers().create(2, 2),
                    Err(BarrierError::TooManyBarriers { limit: 1 })
                )
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (op, check) in &checks {
        let before = snapshot(&engine);
        let result = catch_unwind(AssertUnwindSafe(|| check(&engine)));
        let after = snapshot(&engine);
        match result {
            Err(_) => failures.push(format!("{op}: panicked")),
            Ok(Err(e)) => failures.push(format!("{op}: {e}")),
            Ok(Ok(())) if before != after => failures.push(format!(
                "{op}: state changed\n before {before:?}\n after  {after:?}"
            )),
            Ok(Ok(())) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(engine.shutdown().dead_shards().is_empty());
}

#[test]
fn a_pricing_result_that_would_not_be_finite_is_an_error_not_a_panic() {
    let engine = common::engine(1);
    let input = PricingInput {
        recent_prices: vec![f64::MAX, f64::MAX],
        demand: f64::MAX,
        supply: f64::MIN_POSITIVE,
        base_price: f64::MAX,
    };
    assert!(matches!(
        engine.pricing().calculate(&input).wait(),
        Ok(Err(PricingError::ResultNotFinite(_)))
    ));
    assert_eq!(engine.pricing().cached(&input), Ok(None));
    assert_eq!(engine.tasks().stats().panicked, 0);
}

#[test]
fn deadlines_at_the_end_of_the_clock_do_not_break_the_shard_timers() {
    // The real clock: the shard turns the earliest deadline into how long it may sleep.
    let engine = common::engine(1);
    let auction = engine
        .auctions()
        .create(AuctionSpec {
            deadline: Some(u64::MAX),
            ..english(0, 1)
        })
        .wait()
        .unwrap()
        .unwrap();
    // Coordination refuses unknown participants: agent 1 exists first.
    engine
        .agents()
        .update_acked(1, AgentState::default())
        .wait()
        .unwrap()
        .unwrap();
    engine.flush().unwrap();
    let session = engine
        .coordination()
        .initiate(&[1], Protocol::Majority, u64::MAX)
        .unwrap();
    engine.flush().unwrap();
    engine
        .agents()
        .update_acked(1, AgentState::default())
        .wait()
        .expect("the shard still runs")
        .unwrap();
    assert_eq!(
        engine.auctions().status(auction).unwrap().unwrap().state,
        AuctionState::Open
    );
    assert_eq!(
        engine
            .coordination()
            .status(session)
            .unwrap()
            .unwrap()
            .state,
        SessionState::Collecting
    );
    assert!(engine.shutdown().dead_shards().is_empty());
}
