//! Faults turn into errors, never hangs: a dead shard, a task that never ends, a lease
//! dropped while its shard's mailbox is full, configurations that would panic later.

mod common;

use std::time::Duration;

use mabeam::agents::{AgentError, AgentState};
use mabeam::registry::MetadataSpec;
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
    let engine = Engine::start(Config {
        idle_spin: Duration::MAX,
        ticket_spin: Duration::MAX,
        send_timeout: Duration::MAX,
        ..common::config(2)
    })
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
            Config {
                events: mabeam::events::EventsConfig {
                    max_queue: 0,
                    ..Default::default()
                },
                ..common::config(1)
            },
            "events.max_queue",
        ),
        (
            Config {
                lane_capacity: 0,
                ..common::config(1)
            },
            "lane_capacity",
        ),
        (
            Config {
                task_workers: 0,
                ..common::config(1)
            },
            "task_workers",
        ),
        (
            Config {
                max_barriers: 0,
                ..common::config(1)
            },
            "max_barriers",
        ),
        (
            Config {
                coordination: mabeam::coordination::CoordinationConfig {
                    max_open: 0,
                    ..Default::default()
                },
                ..common::config(1)
            },
            "coordination.max_open",
        ),
        (
            Config {
                economics: mabeam::EconomicsConfig {
                    pricing_cache: 0,
                    ..Default::default()
                },
                ..common::config(1)
            },
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
    let engine = Engine::start(Config {
        shutdown_timeout: Duration::from_millis(50),
        task_workers: 1,
        ..common::config(1)
    })
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
    let engine = Engine::start(Config {
        mailbox_capacity: 2,
        ..common::config(1)
    })
    .unwrap();
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
