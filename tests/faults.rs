//! Faults turn into errors, never hangs: a dead shard, a task that never ends, a lease
//! dropped while its shard's mailbox is full, configurations that would panic later.

mod common;

use std::time::Duration;

use mabeam::agents::{AgentError, AgentState, AgentStatus};
use mabeam::auctions::{AuctionError, AuctionKind, AuctionSpec, Bid};
use mabeam::barriers::BarrierError;
use mabeam::coordination::{CoordinationError, Protocol};
use mabeam::events::EventError;
use mabeam::market::{MarketError, MarketUpdate};
use mabeam::registry::{MetadataSpec, RegistryError};
use mabeam::{Config, Engine, Error, StartError};

/// An agent id owned by shard `shard` of `engine`, found through a write's answer.
fn agent_on(engine: &Engine, shard: usize) -> u64 {
    let stall = engine.testing().stall(shard).expect("stall");
    // While `shard` is stalled, a write to it is not answered; others are.
    let mut id = 0;
    loop {
        let mut t = engine.agents().update_acked(id, AgentState::default());
        if t.wait_timeout(Duration::from_millis(20)) == Err(Error::Timeout) {
            drop(stall);
            t.wait().expect("answered once released").expect("written");
            return id;
        }
        id += 1;
    }
}

#[test]
fn a_dead_shard_is_an_error_for_every_call_that_needs_it() {
    let engine = common::engine(2);
    let on_1 = agent_on(&engine, 1);
    let on_0 = agent_on(&engine, 0);
    // Queued behind the kill: resolved with ShardDown, not left waiting.
    let stall = engine.testing().stall(1).expect("stall");
    engine.testing().kill_shard(1).expect("queued");
    let behind = engine.agents().update_acked(on_1, AgentState::default());
    drop(stall);
    assert_eq!(behind.wait(), Err(Error::ShardDown(1)));
    assert_eq!(engine.flush(), Err(Error::ShardDown(1)));
    assert_eq!(
        engine.agents().update(on_1, AgentState::default()),
        Err(AgentError::Engine(Error::ShardDown(1)))
    );
    assert_eq!(
        engine.agents().get(on_1),
        Err(AgentError::Engine(Error::ShardDown(1)))
    );
    assert_eq!(
        engine.agents().count(),
        Err(AgentError::Engine(Error::ShardDown(1)))
    );
    // The other shard goes on.
    engine
        .agents()
        .update_acked(on_0, AgentState::default())
        .wait()
        .expect("shard 0 runs")
        .expect("written");
    assert!(engine.agents().get(on_0).expect("readable").is_some());
    let report = engine.shutdown();
    assert_eq!(report.dead_shards(), vec![1]);
}

#[test]
fn durations_over_their_whole_range_do_not_break_the_engine() {
    // Before the runtime layer, `idle_spin: Duration::MAX` made both shard threads panic
    // at start, `start` returned Ok and `flush()` never returned.
    let engine = Engine::start(
        common::config(2)
            .with_idle_spin(Duration::MAX)
            .with_ticket_spin(Duration::MAX)
            .with_send_timeout(Duration::MAX),
    )
    .expect("valid config");
    engine.agents().update(1, AgentState::default()).unwrap();
    engine.flush().expect("the shards run");
    assert!(engine.agents().get(1).unwrap().is_some());
    assert!(engine.shutdown().dead_shards().is_empty());
}

#[test]
fn zero_bounds_that_would_make_a_service_unusable_are_refused_by_name() {
    let cases: Vec<(Config, &str)> = vec![
        (
            common::config(1)
                .with_events(mabeam::events::EventsConfig::default().with_max_queue(0)),
            "events.max_queue",
        ),
        (common::config(1).with_lane_capacity(0), "lane_capacity"),
        (common::config(1).with_task_workers(0), "task_workers"),
        (common::config(1).with_max_barriers(0), "max_barriers"),
        (
            common::config(1).with_coordination(
                mabeam::coordination::CoordinationConfig::default().with_max_open(0),
            ),
            "coordination.max_open",
        ),
        (
            common::config(1)
                .with_economics(mabeam::EconomicsConfig::default().with_pricing_cache(0)),
            "economics.pricing_cache",
        ),
    ];
    for (config, name) in cases {
        match Engine::start(config) {
            Err(StartError::InvalidConfig { field, .. }) => assert_eq!(field, name),
            other => panic!("expected InvalidConfig for {name}, got {other:?}"),
        }
    }
}

#[test]
fn shutdown_abandons_a_task_that_never_ends() {
    let engine = Engine::start(
        common::config(1)
            .with_shutdown_timeout(Duration::from_millis(50))
            .with_task_workers(1),
    )
    .unwrap();
    let (release, blocked) = flume::bounded::<()>(0);
    let (started_tx, started) = flume::bounded(1);
    let stuck = engine.tasks().spawn(move || {
        started_tx.send(()).unwrap();
        let _ = blocked.recv(); // until the test lets go, after shutdown
        1
    });
    let queued = engine.tasks().spawn(|| 2);
    started.recv().unwrap();
    let report = engine.shutdown();
    assert_eq!(report.abandoned_tasks, 1);
    assert_eq!(stuck.wait(), Err(Error::ShutDown));
    assert_eq!(
        queued.wait(),
        Err(Error::ShutDown),
        "queued tasks are dropped"
    );
    drop(release); // the detached worker finishes its job and finds nobody waiting
}

#[test]
fn dropping_a_lease_never_blocks_even_on_a_full_mailbox() {
    let engine = Engine::start(common::config(1).with_mailbox_capacity(2)).unwrap();
    let lease = engine
        .registry()
        .register("held", 7, &MetadataSpec::default())
        .unwrap();
    let stall = engine.testing().stall(0).unwrap();
    engine
        .agents()
        .try_update(1, AgentState::default())
        .unwrap();
    assert_eq!(
        engine.agents().try_update(2, AgentState::default()),
        Err(AgentError::Engine(Error::Busy)),
        "the mailbox is full"
    );
    drop(lease); // returns at once: the release goes on the control queue
    drop(stall);
    engine.flush().unwrap();
    assert_eq!(engine.registry().lookup("held").unwrap(), None);
}

#[test]
fn a_handler_panic_fails_only_its_own_command_and_changes_nothing() {
    let engine = common::engine(1);
    let busy = AgentState {
        status: AgentStatus::Busy,
        ..AgentState::default()
    };
    engine
        .agents()
        .update_acked(1, busy)
        .wait()
        .unwrap()
        .unwrap();
    let _lease = engine
        .registry()
        .register("alpha", 3, &MetadataSpec::with_capabilities(&["plan"]))
        .unwrap();
    let before = (
        engine.agents().get(1).unwrap(),
        engine.registry().entries().unwrap(),
    );
    // The panicking command sits in one batch between two writes.
    let stall = engine.testing().stall(0).unwrap();
    let first = engine.agents().update_acked(2, AgentState::default());
    let panicking = engine.testing().panic_in_handler(0);
    let last = engine.agents().update_acked(3, AgentState::default());
    drop(stall);
    assert!(matches!(panicking.wait(), Err(Error::Internal(_))));
    first.wait().expect("answered").expect("applied");
    last.wait().expect("answered").expect("applied");
    engine.flush().unwrap();
    assert_eq!(
        (
            engine.agents().get(1).unwrap(),
            engine.registry().entries().unwrap()
        ),
        before,
        "what the panic did not touch is unchanged"
    );
    assert_eq!(engine.agents().count().unwrap(), 3);
    // The shard goes on, and counts the one panic.
    engine
        .agents()
        .update_acked(4, AgentState::default())
        .wait()
        .unwrap()
        .unwrap();
    let report = engine.shutdown();
    assert!(report.dead_shards().is_empty());
    assert_eq!(report.shards[0].panics, 1);
}

#[test]
fn a_stalled_shard_makes_writers_busy_within_the_timeout_while_reads_answer() {
    let capacity = 4;
    let (engine, _clock) = {
        let clock = mabeam::ManualClock::new(1_000);
        let engine = Engine::start(
            common::config(1)
                .with_mailbox_capacity(capacity)
                .with_send_timeout(Duration::from_millis(5))
                .with_clock(mabeam::Clock::Manual(clock.clone())),
        )
        .unwrap();
        (engine, clock)
    };
    engine
        .agents()
        .update_acked(1, AgentState::default())
        .wait()
        .unwrap()
        .unwrap();
    let _lease = engine
        .registry()
        .register("alpha", 3, &MetadataSpec::with_capabilities(&["plan"]))
        .unwrap();
    let auction = engine
        .auctions()
        .create(AuctionSpec {
            kind: AuctionKind::English {
                reserve: 10,
                min_increment: 1,
            },
            seller: 1,
            category: 2,
            deadline: None,
            buy_now: None,
        })
        .wait()
        .unwrap()
        .unwrap();
    engine
        .market()
        .update_acked(MarketUpdate {
            key: 9,
            price: 5,
            volume: 1,
        })
        .wait()
        .unwrap()
        .unwrap();
    let session = engine
        .coordination()
        .initiate(&[1], Protocol::Majority, u64::MAX)
        .unwrap();
    engine.flush().unwrap();
    let reads = |engine: &Engine| {
        (
            engine.agents().get(1).unwrap(),
            engine.agents().count().unwrap(),
            engine.registry().lookup("alpha").unwrap(),
            engine.registry().count().unwrap(),
            engine.registry().find_by_capability(&["plan"]).unwrap(),
            engine.auctions().status(auction).unwrap(),
            engine.auctions().list_active(Default::default()).unwrap(),
            engine.market().state(9).unwrap(),
            engine.coordination().status(session).unwrap(),
        )
    };
    let before = reads(&engine);

    let stall = engine.testing().stall(0).unwrap();
    // Fill the mailbox with acknowledged writes (admitted up to the capacity).
    let mut pending = Vec::new();
    for id in 100..100 + capacity as u64 + 1 {
        let mut t = engine.agents().update_acked(id, AgentState::default());
        match t.wait_timeout(Duration::ZERO) {
            Err(Error::Timeout) => pending.push((id, t)),
            Err(Error::Busy) => break,
            other => panic!("a stalled shard answered: {other:?}"),
        }
    }
    // The stall is itself a command of the batch being applied: it holds one place.
    assert_eq!(
        pending.len(),
        capacity - 1,
        "acked writes are admitted up to the capacity"
    );
    // Every writer now gets Busy (after waiting up to send_timeout), not a hang.
    let busy = Error::Busy;
    assert_eq!(
        engine.agents().try_update(200, AgentState::default()),
        Err(AgentError::Engine(busy))
    );
    assert_eq!(
        engine.agents().update(201, AgentState::default()),
        Err(AgentError::Engine(busy))
    );
    assert_eq!(
        engine
            .agents()
            .update_acked(202, AgentState::default())
            .wait(),
        Err(busy)
    );
    assert_eq!(
        engine
            .registry()
            .register("beta", 4, &MetadataSpec::default())
            .map(|_| ()),
        Err(RegistryError::Engine(busy))
    );
    assert_eq!(
        engine
            .auctions()
            .bid(
                auction,
                Bid {
                    bidder: 2,
                    amount: 50,
                    bundle: 0
                }
            )
            .wait(),
        Err(busy)
    );
    assert_eq!(
        engine.auctions().bid_nowait(
            auction,
            Bid {
                bidder: 2,
                amount: 50,
                bundle: 0
            }
        ),
        Err(AuctionError::Engine(busy))
    );
    assert_eq!(
        engine.market().update(MarketUpdate {
            key: 9,
            price: 5,
            volume: 1
        }),
        Err(MarketError::Engine(busy))
    );
    assert_eq!(
        engine
            .coordination()
            .initiate(&[1], Protocol::Majority, u64::MAX),
        Err(CoordinationError::Engine(busy))
    );
    assert_eq!(
        engine.events().publish("app.x", b"x", None),
        Err(EventError::Engine(busy))
    );
    // (auctions().create under a full mailbox: defect 7, tested with its fix.)
    // Reads answer from the snapshots, unchanged.
    assert_eq!(reads(&engine), before);

    drop(stall);
    for (id, t) in pending {
        t.wait().expect("answered once released").expect("applied");
        assert!(engine.agents().get(id).unwrap().is_some());
    }
    engine.flush().unwrap();
    for refused in [200, 201, 202] {
        assert_eq!(
            engine.agents().get(refused).unwrap(),
            None,
            "Busy means not applied"
        );
    }
    assert_eq!(engine.registry().lookup("beta").unwrap(), None);
    assert_eq!(
        engine
            .auctions()
            .status(auction)
            .unwrap()
            .unwrap()
            .bid_count,
        0
    );
    assert_eq!(engine.mailbox_depths(), vec![0]);
}

#[test]
fn dropped_tickets_subscriptions_and_leases_leak_nothing() {
    let engine = common::engine(2);
    let subscribers = |engine: &Engine| -> Vec<usize> {
        (0..engine.shards())
            .map(|s| engine.testing().subscribers(s).unwrap())
            .collect()
    };
    let kept = engine.events().subscribe("app.kept", 4).unwrap();
    let baseline = (
        engine.registry().count().unwrap(),
        engine.events().subscriptions(),
        subscribers(&engine),
    );
    assert_eq!(baseline.2, vec![1, 1]);

    // Work in flight on stalled shards: acked writes whose tickets are dropped, a
    // panicking command whose ticket is dropped, leases and subscriptions dropped (one
    // with a full queue and lagged events).
    let leases: Vec<_> = (0..16)
        .map(|i| {
            engine
                .registry()
                .register(&format!("agent-{i}"), i, &MetadataSpec::default())
                .unwrap()
        })
        .collect();
    let subs: Vec<_> = (0..4)
        .map(|_| engine.events().subscribe("app.**", 1).unwrap())
        .collect();
    for i in 0..4 {
        engine.events().publish("app.x", &[i], None).unwrap();
    }
    engine.flush().unwrap();
    assert!(
        subs.iter().all(|s| s.lagged() > 0),
        "queues of 1 overflowed"
    );
    assert_eq!(engine.registry().count().unwrap(), baseline.0 + 16);
    let stalls: Vec<_> = (0..engine.shards())
        .map(|s| engine.testing().stall(s).unwrap())
        .collect();
    for id in 0..8 {
        drop(engine.agents().update_acked(id, AgentState::default()));
    }
    drop(engine.testing().panic_in_handler(0));
    drop(leases);
    drop(subs);
    assert_eq!(engine.events().subscriptions(), baseline.1);
    drop(stalls);
    engine.flush().unwrap();

    assert_eq!(engine.registry().count().unwrap(), baseline.0);
    assert_eq!(engine.registry().lookup("agent-0").unwrap(), None);
    assert_eq!(
        (engine.events().subscriptions(), subscribers(&engine)),
        (baseline.1, baseline.2),
        "every dropped subscription left every shard"
    );
    assert_eq!(
        engine.agents().count().unwrap(),
        8,
        "dropped tickets' writes applied"
    );
    assert_eq!(engine.mailbox_depths(), vec![0, 0]);
    // The kept subscription still works.
    engine.events().publish("app.kept", b"k", None).unwrap();
    assert_eq!(kept.recv().unwrap().topic, "app.kept");
    let report = engine.shutdown();
    assert!(report.dead_shards().is_empty());
    assert_eq!(report.shards.iter().map(|s| s.panics).sum::<u64>(), 1);
}

#[test]
fn barrier_waiters_that_leave_take_their_arrival_and_removed_barriers_leak_nothing() {
    let engine = common::engine(1);
    let baseline = engine.testing().barriers();
    let barrier = engine.barriers().create(1, 2).unwrap();
    assert_eq!(engine.testing().barriers(), baseline + 1);
    // A waiter that times out takes its arrival back: the generation still needs two.
    assert_eq!(
        barrier.wait(Duration::ZERO).map(|_| ()),
        Err(BarrierError::Timeout)
    );
    assert_eq!(barrier.generation(), 0);
    // A waiter whose barrier is removed while it waits still meets its partner through
    // the handle; the engine forgets the barrier.
    let (parked_tx, parked) = flume::bounded(1);
    let other = barrier.clone();
    let waiter = std::thread::spawn(move || {
        parked_tx.send(()).unwrap();
        other.wait(Duration::from_secs(60))
    });
    parked.recv().unwrap();
    engine.barriers().remove(1).unwrap();
    assert_eq!(engine.testing().barriers(), baseline);
    let mine = barrier
        .wait(Duration::from_secs(60))
        .expect("the partner is there");
    let theirs = waiter.join().unwrap().expect("met");
    assert_eq!(mine.generation, theirs.generation);
    assert_ne!(mine.is_leader, theirs.is_leader);
    assert_eq!(
        barrier.generation(),
        1,
        "exactly one generation, no ghost arrival"
    );
    // The id is free again; dropping every handle leaves nothing behind.
    drop(barrier);
    let again = engine.barriers().create(1, 1).unwrap();
    assert_eq!(again.wait(Duration::ZERO).unwrap().generation, 0);
    drop(again);
    engine.barriers().remove(1).unwrap();
    assert_eq!(engine.testing().barriers(), baseline);
}

#[test]
fn a_subscribe_refused_by_one_shard_leaves_no_subscriber_on_any_shard() {
    let engine = Engine::start(
        common::config(2)
            .with_mailbox_capacity(2)
            .with_send_timeout(Duration::from_millis(5)),
    )
    .unwrap();
    let count = |engine: &Engine| -> Vec<usize> {
        (0..2)
            .map(|s| engine.testing().subscribers(s).unwrap())
            .collect()
    };
    assert_eq!(count(&engine), vec![0, 0]);
    // Shard 0 stalled and full: it refuses the subscribe. Shard 1 stalled with room: it
    // queues the subscribe and applies it only after the refusal came back.
    let on_0 = agent_on(&engine, 0);
    let full = engine.testing().stall(0).unwrap();
    let mut held = Vec::new();
    loop {
        let mut t = engine.agents().update_acked(on_0, AgentState::default());
        if t.wait_timeout(Duration::ZERO) == Err(Error::Busy) {
            break;
        }
        held.push(t);
    }
    let queued = engine.testing().stall(1).unwrap();
    let handle = engine.handle();
    let subscriber = std::thread::spawn(move || handle.events().subscribe("app.*", 4).map(|_| ()));
    // Shard 0 refuses first (after send_timeout), then shard 1 queues its subscribe.
    // Wait for that without sleeping: yield until the message is in shard 1's mailbox.
    while engine.mailbox_depths()[1] == 0 {
        std::thread::yield_now();
    }
    drop(queued);
    assert_eq!(
        subscriber.join().unwrap(),
        Err(EventError::Engine(Error::Busy))
    );
    assert_eq!(engine.events().subscriptions(), 0);
    drop(full);
    for t in held {
        t.wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    assert_eq!(
        count(&engine),
        vec![0, 0],
        "no shard kept the refused subscriber"
    );
}
