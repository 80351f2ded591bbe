//! The resource monitor: table sizes, subscriptions, retained events, mailboxes,
//! threads and pinning as the engine holds them.

mod common;

use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionKind, AuctionSpec};
use mabeam::registry::MetadataSpec;
use mabeam::resources::TableFootprint;
use mabeam::{Engine, Reserve, StartError};

#[test]
fn tables_reflect_what_was_written() {
    let engine = common::engine(2);
    let before = engine.resources().unwrap();
    assert_eq!(before.entries("registry"), 0);
    assert_eq!(before.entries("agents"), 0);
    let leases: Vec<_> = (0..10)
        .map(|i| {
            engine
                .registry()
                .register(
                    &format!("agent-{i}"),
                    i,
                    &MetadataSpec::with_capabilities(&["x"]),
                )
                .unwrap()
        })
        .collect();
    for id in 0..2_000u64 {
        engine.agents().update(id, AgentState::default()).unwrap();
    }
    let spec = AuctionSpec {
        kind: AuctionKind::Dutch {
            start: 1_000,
            step: 1,
            tick_nanos: 1_000_000,
            reserve: 10,
        },
        seller: 1,
        category: 2,
        deadline: None,
        buy_now: None,
    };
    for _ in 0..4 {
        engine.auctions().create(spec).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    let r = engine.resources().unwrap();
    assert_eq!(r.entries("registry"), 10);
    assert_eq!(r.entries("agents"), 2_000);
    assert_eq!(r.entries("auctions"), 4);
    assert_eq!(r.entries("dutch_clocks"), 4);
    assert_eq!(r.entries("market"), 0);
    assert_eq!(r.capabilities_used, 1);
    for s in &r.shards {
        for t in &s.tables {
            let f = t.footprint;
            assert!(
                f.live_slots >= f.entries,
                "{}: slots hold the entries",
                t.name
            );
            assert!(
                f.live_bytes >= f.live_slots * 8,
                "{}: a slot is words",
                t.name
            );
        }
        // 2,000 agents over 2 shards grew the agents table past its first array (1,024
        // slots), which is
        // kept as a retired array.
        let agents = s.table("agents").unwrap();
        assert!(agents.retired_slots > 0);
        assert!(s.table_bytes() > before.shards[s.shard].table_bytes());
    }
    drop(leases);
    engine.flush().unwrap();
    assert_eq!(engine.resources().unwrap().entries("registry"), 0);
}

/// Fills one shard with `n` registry entries, agents and auctions, and returns the
/// footprints of those three tables before and after.
fn fill(config: mabeam::Config, n: u64) -> Vec<(TableFootprint, TableFootprint)> {
    const TABLES: [&str; 3] = ["registry", "agents", "auctions"];
    let engine = Engine::start(config).unwrap();
    let footprints = |engine: &Engine| {
        let r = engine.resources().unwrap();
        TABLES.map(|name| *r.shards[0].table(name).unwrap())
    };
    let before = footprints(&engine);
    let meta = MetadataSpec::with_capabilities(&["x"]);
    let leases: Vec<_> = (0..n)
        .map(|i| {
            engine
                .registry()
                .register(&format!("agent-{i}"), i, &meta)
                .unwrap()
        })
        .collect();
    let spec = AuctionSpec {
        kind: AuctionKind::English {
            reserve: 10,
            min_increment: 1,
        },
        seller: 1,
        category: 2,
        deadline: None,
        buy_now: None,
    };
    for id in 0..n {
        engine.agents().update(id, AgentState::default()).unwrap();
        engine.auctions().create(spec).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    let after = footprints(&engine);
    for f in after {
        assert_eq!(f.entries, n as usize);
    }
    drop(leases);
    before.into_iter().zip(after).collect()
}

#[test]
fn reserved_tables_take_their_counts_without_growing() {
    const N: u64 = 3_000;
    let reserve = Reserve::default()
        .with_registry(N as usize)
        .with_agents(N as usize)
        .with_auctions(N as usize);
    for (before, after) in fill(common::config(1).with_reserve(reserve), N) {
        assert!(
            before.live_slots * 3 / 4 >= N as usize,
            "room for N at start"
        );
        assert_eq!(after.live_slots, before.live_slots, "no growth");
        assert_eq!(after.retired_slots, 0, "no array copied and retired");
    }
    // The same writes without a reserve grow each table (and retire its first arrays).
    for (before, after) in fill(common::config(1), N) {
        assert!(after.live_slots > before.live_slots);
        assert!(after.retired_slots > 0);
    }
}

#[test]
fn reserves_beyond_the_capacities_are_refused() {
    let book = mabeam::auctions::BookLimits::default();
    for (reserve, field) in [
        (Reserve::default().with_registry(11), "reserve.registry"),
        (Reserve::default().with_agents(11), "reserve.agents"),
        (
            Reserve::default().with_auctions(book.max_open + book.max_retained + 1),
            "reserve.auctions",
        ),
    ] {
        let config = common::config(1)
            .with_registry_capacity(10)
            .with_agent_capacity(10)
            .with_reserve(reserve);
        match Engine::start(config) {
            Err(StartError::InvalidConfig { field: got, .. }) => assert_eq!(got, field),
            other => panic!("expected InvalidConfig for {field}, got {other:?}"),
        }
    }
    let at_the_bounds = Reserve::default()
        .with_registry(10)
        .with_agents(10)
        .with_auctions(book.max_open + book.max_retained);
    let config = common::config(1)
        .with_registry_capacity(10)
        .with_agent_capacity(10)
        .with_reserve(at_the_bounds);
    assert!(Engine::start(config).is_ok());
}

#[test]
fn subscriptions_and_retained_events() {
    let engine = common::engine(2);
    let a = engine.events().subscribe("app.**", 16).unwrap();
    let b = engine.events().subscribe("other", 16).unwrap();
    for i in 0..3u64 {
        engine
            .events()
            .publish("app.x", &[0u8; 10], Some(i))
            .unwrap();
    }
    engine.flush().unwrap();
    let r = engine.resources().unwrap();
    assert_eq!(r.subscriptions, 2);
    for s in &r.shards {
        assert_eq!(s.subscriptions, 2, "every shard indexes every subscription");
    }
    assert_eq!(r.retained_events(), (3, 30));
    drop((a, b));
    engine.flush().unwrap();
    let r = engine.resources().unwrap();
    assert_eq!(r.subscriptions, 0);
    assert!(r.shards.iter().all(|s| s.subscriptions == 0));
}

#[test]
fn threads_mailboxes_and_memory() {
    let engine = Engine::start(common::config(2).with_task_workers(3)).unwrap();
    engine.flush().unwrap();
    let r = engine.resources().unwrap();
    assert_eq!(r.shard_threads, 2);
    assert_eq!(r.task_threads, 3);
    assert_eq!(r.mailbox_depth(), 0);
    assert_eq!(r.tasks_queued, 0);
    for s in &r.shards {
        assert!(s.alive);
        assert_eq!(s.pinned_core, None, "pinning is off in tests");
        assert!(!s.pinning_held);
        assert_eq!(s.lane_depths, vec![0, 0]);
    }
    if cfg!(target_os = "linux") {
        assert!(r.resident_bytes.is_some_and(|b| b > 0));
        assert!(r.process_threads.is_some_and(|n| n >= 5));
        assert!(r.shards.iter().all(|s| s.running_on.is_some()));
    }
}
