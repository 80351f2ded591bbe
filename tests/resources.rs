//! The resource monitor: table sizes, subscriptions, retained events, mailboxes,
//! threads and pinning as the engine holds them.

mod common;

use mabeam::agents::AgentState;
use mabeam::auctions::{AuctionKind, AuctionSpec};
use mabeam::registry::MetadataSpec;
use mabeam::Engine;

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
