//! Events, barriers and coordination sessions through the public API.

mod common;

use std::time::Duration;

use mabeam::agents::{AgentState, AgentStatus};
use mabeam::barriers::BarrierError;
use mabeam::coordination::{CoordinationError, Protocol, SessionState};
use mabeam::events::{EventError, HistoryQuery, Payload};
use mabeam::Engine;

const LONG: Duration = Duration::from_secs(60);

/// Agent ids that live on different shards of a 2-shard engine.
fn agents_on_both_shards(engine: &Engine, n: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    for id in 0..n {
        engine.agents().update(id, AgentState::default()).unwrap();
        ids.push(id);
    }
    engine.flush().unwrap();
    ids
}

/// Registers idle agents `ids` and waits until they are published.
fn register(engine: &Engine, ids: &[u64]) {
    for &id in ids {
        engine.agents().update(id, AgentState::default()).unwrap();
    }
    engine.flush().unwrap();
}

/// Issue 9, defect 6: a session among agents that were never registered was created and
/// made agent records for them. It is refused, naming the first unknown agent, and
/// creates nothing (no agent, no session, no open-session slot).
#[test]
fn a_session_among_unknown_agents_is_refused() {
    let clock = mabeam::ManualClock::new(1_000);
    let mut config = common::config(2);
    config.clock = mabeam::Clock::Manual(clock);
    config.coordination.max_open = 1;
    let engine = Engine::start(config).unwrap();
    let sub = engine.events().subscribe("coordination.**", 16).unwrap();
    register(&engine, &[1]);
    let coord = engine.coordination();
    assert_eq!(
        coord.initiate(&[8888, 9999], Protocol::Majority, 1_000_000),
        Err(CoordinationError::UnknownAgent { agent: 8888 })
    );
    assert_eq!(
        coord.initiate(&[1, 9999], Protocol::Majority, 1_000_000),
        Err(CoordinationError::UnknownAgent { agent: 9999 })
    );
    engine.flush().unwrap();
    assert_eq!(engine.agents().get(8888).unwrap(), None);
    assert_eq!(engine.agents().get(9999).unwrap(), None);
    assert_eq!(engine.agents().count().unwrap(), 1);
    assert!(sub.try_recv().is_none(), "no session was initiated");
    // The refusals gave their open-session slot back: the one slot is free.
    let id = coord.initiate(&[1], Protocol::Majority, 1_000_000).unwrap();
    assert!(coord.vote(id, 1, 3).wait().unwrap().unwrap().is_some());
}

/// Issue 9, defect 6: an agent goes back to the status it had before its sessions (it
/// became `Idle`, losing `Busy`), and one in two overlapping sessions stays `Coordinating`
/// until both end. The agents live on both shards of the engine.
#[test]
fn overlapping_sessions_restore_each_agents_status() {
    let (engine, _clock) = common::manual_engine(2);
    let agents = agents_on_both_shards(&engine, 4);
    let busy = AgentState {
        status: AgentStatus::Busy,
        ..AgentState::default()
    };
    for &a in &agents[..2] {
        engine.agents().update(a, busy).unwrap();
    }
    engine.flush().unwrap();
    let coord = engine.coordination();
    let first = coord
        .initiate(&agents, Protocol::AllAcknowledge, 1_000_000)
        .unwrap();
    let second = coord
        .initiate(&agents[1..3], Protocol::AllAcknowledge, 1_000_000)
        .unwrap();
    engine.flush().unwrap();
    let status = |a: u64| engine.agents().get(a).unwrap().unwrap().state.status;
    for &a in &agents {
        assert_eq!(status(a), AgentStatus::Coordinating);
    }
    for &a in &agents {
        coord.acknowledge(first, a).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    assert_eq!(status(agents[0]), AgentStatus::Busy, "back to busy");
    assert_eq!(
        status(agents[1]),
        AgentStatus::Coordinating,
        "still in second"
    );
    assert_eq!(
        status(agents[2]),
        AgentStatus::Coordinating,
        "still in second"
    );
    assert_eq!(status(agents[3]), AgentStatus::Idle);
    for &a in &agents[1..3] {
        coord.acknowledge(second, a).wait().unwrap().unwrap();
    }
    engine.flush().unwrap();
    assert_eq!(status(agents[1]), AgentStatus::Busy);
    assert_eq!(status(agents[2]), AgentStatus::Idle);
    for &a in &agents {
        assert_eq!(engine.agents().get(a).unwrap().unwrap().coordination, None);
    }
}

/// The original's test pattern: subscribe to `coordination.completed`, initiate, and
/// receive the completion event.
#[test]
fn completion_event_reaches_the_subscriber() {
    let (engine, _clock) = common::manual_engine(2);
    let sub = engine
        .events()
        .subscribe("coordination.completed", 16)
        .unwrap();
    let agents = agents_on_both_shards(&engine, 5);
    let coord = engine.coordination();
    let id = coord
        .initiate(&agents, Protocol::Majority, 1_000_000)
        .unwrap();
    engine.flush().unwrap();
    // Every participant, on either shard, is marked as coordinating.
    for &a in &agents {
        let s = engine.agents().get(a).unwrap().unwrap();
        assert_eq!(s.state.status, AgentStatus::Coordinating);
        assert_eq!(s.coordination, Some(id));
    }
    assert_eq!(coord.vote(id, agents[0], 7).wait().unwrap(), Ok(None));
    assert_eq!(coord.vote(id, agents[1], 7).wait().unwrap(), Ok(None));
    let done = coord
        .vote(id, agents[2], 7)
        .wait()
        .unwrap()
        .unwrap()
        .expect("3 of 5 decide");
    assert_eq!(done.decided, Some(7));
    let event = sub.recv_timeout(LONG).unwrap();
    assert_eq!(event.topic, "coordination.completed");
    assert_eq!(event.correlation, Some(id));
    match event.payload {
        Payload::CoordinationCompleted(c) => {
            assert_eq!(
                (c.decided, c.state, c.participants),
                (Some(7), SessionState::Decided, 5)
            );
            assert_eq!(c.votes, vec![(7, 3)]);
        }
        other => panic!("unexpected payload {other:?}"),
    }
    let status = coord.status(id).unwrap().unwrap();
    assert_eq!(status.state, SessionState::Decided);
    engine.flush().unwrap();
    for &a in &agents {
        assert_eq!(
            engine.agents().get(a).unwrap().unwrap().state.status,
            AgentStatus::Idle
        );
    }
}

#[test]
fn votes_are_checked() {
    let (engine, _clock) = common::manual_engine(2);
    register(&engine, &[1, 2, 3]);
    let coord = engine.coordination();
    let id = coord
        .initiate(&[1, 2, 3], Protocol::Unanimous, 1_000_000)
        .unwrap();
    assert_eq!(
        coord.vote(id, 9, 1).wait().unwrap(),
        Err(CoordinationError::NotParticipant { agent: 9 })
    );
    coord.vote(id, 1, 1).wait().unwrap().unwrap();
    assert_eq!(
        coord.vote(id, 1, 1).wait().unwrap(),
        Err(CoordinationError::AlreadyResponded { agent: 1 })
    );
    assert!(matches!(
        coord.acknowledge(id, 2).wait().unwrap(),
        Err(CoordinationError::WrongProtocol { .. })
    ));
    let unknown = 12345;
    assert_eq!(
        coord.vote(unknown, 1, 1).wait().unwrap(),
        Err(CoordinationError::UnknownSession { id: unknown })
    );
    assert_eq!(
        coord.initiate(&[], Protocol::Majority, 1_000_000),
        Err(CoordinationError::NoParticipants)
    );
    assert_eq!(
        coord.initiate(&[1, 1], Protocol::Majority, 1_000_000),
        Err(CoordinationError::DuplicateParticipant { agent: 1 })
    );
    assert!(matches!(
        coord.initiate(&[1], Protocol::Majority, 10),
        Err(CoordinationError::DeadlineNotInFuture { .. })
    ));
    // A differing vote ends a unanimous session without a decision.
    let done = coord.vote(id, 2, 2).wait().unwrap().unwrap().unwrap();
    assert_eq!((done.state, done.decided), (SessionState::NoDecision, None));
}

#[test]
fn a_deadline_expires_with_too_few_votes() {
    let (engine, clock) = common::manual_engine(2);
    register(&engine, &[10, 11, 12, 13]);
    let sub = engine.events().subscribe("coordination.*", 16).unwrap();
    let coord = engine.coordination();
    let id = coord
        .initiate(
            &[10, 11, 12, 13],
            Protocol::Threshold {
                fraction_permille: 750,
            },
            50_000,
        )
        .unwrap();
    coord.vote(id, 10, 1).wait().unwrap().unwrap();
    coord.vote(id, 11, 1).wait().unwrap().unwrap();
    clock.set(50_000);
    engine.flush().unwrap();
    let status = coord.status(id).unwrap().unwrap();
    assert_eq!(status.state, SessionState::TimedOut);
    let initiated = sub.recv_timeout(LONG).unwrap();
    assert_eq!(initiated.topic, "coordination.initiated");
    let completed = sub.recv_timeout(LONG).unwrap();
    match completed.payload {
        Payload::CoordinationCompleted(c) => {
            assert!(c.timed_out());
            assert_eq!((c.responses, c.decided), (2, None));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    // A late response after the sweep expired the session: the deadline passed.
    assert_eq!(
        coord.vote(id, 12, 1).wait().unwrap(),
        Err(CoordinationError::DeadlinePassed {
            deadline: 50_000,
            now: 50_000
        })
    );
}

/// Issue 9, defect 3: with no ended sessions retained, a vote arriving after the deadline
/// (before any sweep) expired and evicted the session, then panicked looking it up again
/// (the call failed with `Internal`). Both orders of late response answer
/// `DeadlinePassed`, and the session times out exactly once.
#[test]
fn a_late_vote_without_retention_is_refused_not_a_panic() {
    let clock = mabeam::ManualClock::new(1_000);
    let mut config = common::config(2);
    config.clock = mabeam::Clock::Manual(clock.clone());
    config.coordination.retained = 0;
    let engine = Engine::start(config).unwrap();
    register(&engine, &[1, 2, 3]);
    let sub = engine
        .events()
        .subscribe("coordination.completed", 16)
        .unwrap();
    let coord = engine.coordination();
    let id = coord
        .initiate(&[1, 2, 3], Protocol::Majority, 50_000)
        .unwrap();
    assert_eq!(coord.vote(id, 1, 4).wait().unwrap(), Ok(None));
    // The vote below must be the first thing the owning shard sees after the deadline,
    // before its timers sweep the session: with the shards stalled, the clock moves and
    // the vote queues; a shard applies a batch's commands before its due timers, and the
    // stall's own batch ran its timers at the old time. (Without the stalls the shard's
    // idle loop could sweep first, seen on a loaded machine: `UnknownSession`.)
    let stalls = [
        engine.testing().stall(0).unwrap(),
        engine.testing().stall(1).unwrap(),
    ];
    clock.set(60_000);
    let late = coord.vote(id, 2, 4);
    drop(stalls);
    assert_eq!(
        late.wait().unwrap(),
        Err(CoordinationError::DeadlinePassed {
            deadline: 50_000,
            now: 60_000
        })
    );
    let completed = sub.recv_timeout(LONG).unwrap();
    match completed.payload {
        Payload::CoordinationCompleted(c) => {
            assert!(c.timed_out());
            assert_eq!((c.responses, c.votes), (1, vec![(4, 1)]));
        }
        other => panic!("unexpected payload {other:?}"),
    }
    // Nothing is retained: the session is gone and later responses say so.
    engine.flush().unwrap();
    assert_eq!(coord.status(id).unwrap(), None);
    assert_eq!(
        coord.vote(id, 3, 4).wait().unwrap(),
        Err(CoordinationError::UnknownSession { id })
    );
    // The shard still serves other sessions.
    let next = coord
        .initiate(&[1, 2, 3], Protocol::Majority, 100_000)
        .unwrap();
    assert_eq!(coord.vote(next, 1, 9).wait().unwrap(), Ok(None));
    let done = coord.vote(next, 2, 9).wait().unwrap().unwrap().unwrap();
    assert_eq!(done.decided, Some(9));
}

#[test]
fn all_acknowledge_completes() {
    let (engine, _clock) = common::manual_engine(2);
    register(&engine, &[1, 2]);
    let coord = engine.coordination();
    let id = coord
        .initiate(&[1, 2], Protocol::AllAcknowledge, 1_000_000)
        .unwrap();
    assert_eq!(coord.acknowledge(id, 1).wait().unwrap(), Ok(None));
    let done = coord.acknowledge(id, 2).wait().unwrap().unwrap().unwrap();
    assert!(done.reached());
}

#[test]
fn patterns_route_events_and_history_is_queryable() {
    let (engine, clock) = common::manual_engine(2);
    let events = engine.events();
    let one = events.subscribe("app.*", 64).unwrap();
    let deep = events.subscribe("app.**", 64).unwrap();
    let exact = events.subscribe("app.a.b", 64).unwrap();
    let all = events.subscribe("**", 256).unwrap();
    for t in ["app.x", "app.a.b", "other.x", "app"] {
        events.publish(t, t.as_bytes(), Some(42)).unwrap();
    }
    engine.flush().unwrap(); // stamped before the clock moves
    clock.set(5_000);
    events.publish("app.late", b"", Some(43)).unwrap();
    engine.flush().unwrap();
    let drain = |s: &mabeam::events::Subscription| {
        let mut topics: Vec<String> = std::iter::from_fn(|| s.try_recv())
            .map(|e| e.topic.to_string())
            .collect();
        topics.sort();
        topics
    };
    assert_eq!(drain(&one), vec!["app.late", "app.x"]);
    assert_eq!(drain(&exact), vec!["app.a.b"]);
    let deep_topics = drain(&deep);
    assert!(
        deep_topics.contains(&"app.a.b".to_string()) && deep_topics.contains(&"app.x".to_string())
    );
    assert!(!deep_topics.contains(&"other.x".to_string()));
    assert_eq!(drain(&all).len(), 5);

    let h = events
        .history(&HistoryQuery {
            pattern: Some("app.*".into()),
            correlation: Some(42),
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(
        h.iter().map(|e| e.topic.as_ref()).collect::<Vec<_>>(),
        vec!["app.x"]
    );
    let late = events
        .history(&HistoryQuery {
            from: Some(5_000),
            ..HistoryQuery::default()
        })
        .unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].correlation, Some(43));
    assert!(matches!(
        events.subscribe("a.**.b", 4),
        Err(EventError::Topic(_))
    ));
    assert!(matches!(
        events.subscribe("a..b", 4),
        Err(EventError::Topic(_))
    ));
    assert!(matches!(
        events.publish("a.*", b"", None),
        Err(EventError::Topic(_))
    ));
    assert_eq!(
        events.subscribe("a", 0).unwrap_err(),
        EventError::InvalidCapacity { capacity: 0 }
    );
}

#[test]
fn a_slow_subscriber_lags_and_never_blocks() {
    let engine = common::engine(1);
    let events = engine.events();
    let slow = events.subscribe("tick", 4).unwrap();
    for i in 0..100u64 {
        events.publish("tick", &i.to_le_bytes(), None).unwrap();
    }
    engine.flush().unwrap();
    assert_eq!(slow.len(), 4);
    assert_eq!(slow.lagged(), 96);
    // Dropped subscriptions are removed.
    drop(slow);
    engine.flush().unwrap();
    assert_eq!(events.subscriptions(), 0);
}

#[test]
fn services_publish_their_events() {
    let engine = common::engine(2);
    let sub = engine.events().subscribe("**", 1024).unwrap();
    let lease = engine
        .registry()
        .register("svc", 1, &mabeam::registry::MetadataSpec::default())
        .unwrap();
    engine.agents().update(5, AgentState::default()).unwrap();
    engine
        .market()
        .update(mabeam::market::MarketUpdate {
            key: 1,
            price: 10,
            volume: 1,
        })
        .unwrap();
    drop(lease);
    engine.flush().unwrap();
    let mut topics: Vec<String> = std::iter::from_fn(|| sub.try_recv())
        .map(|e| e.topic.to_string())
        .collect();
    topics.sort();
    assert_eq!(
        topics,
        vec![
            "agent.state.updated",
            "market.data.updated",
            "registry.registered",
            "registry.unregistered"
        ]
    );
}

#[test]
fn sixty_four_threads_through_a_barrier_for_a_thousand_generations() {
    let engine = common::engine(1);
    let barrier = engine.barriers().create(1, 64).unwrap();
    let leaders: Vec<Vec<u64>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..64)
            .map(|_| {
                let b = barrier.clone();
                s.spawn(move || {
                    let mut led = Vec::new();
                    for g in 0..1_000u64 {
                        let a = b.wait(LONG).unwrap();
                        assert_eq!(a.generation, g);
                        if a.is_leader {
                            led.push(g);
                        }
                    }
                    led
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = leaders.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..1_000).collect::<Vec<_>>(),
        "exactly one leader per generation"
    );
}

#[test]
fn a_timed_out_waiter_then_a_full_round() {
    let engine = common::engine(1);
    let barriers = engine.barriers();
    let b = barriers.create(7, 2).unwrap();
    assert_eq!(
        b.wait(Duration::from_millis(1)).unwrap_err(),
        BarrierError::Timeout
    );
    assert_eq!(b.generation(), 0, "the arrival was taken back");
    let other = b.clone();
    let t = std::thread::spawn(move || other.wait(LONG));
    let mine = barriers.wait(7, LONG).unwrap();
    let theirs = t.join().unwrap().unwrap();
    assert_eq!((mine.generation, theirs.generation), (0, 0));
    assert!(mine.is_leader ^ theirs.is_leader);
    assert_eq!(
        barriers.create(7, 2).unwrap_err(),
        BarrierError::AlreadyExists { id: 7 }
    );
    assert_eq!(
        barriers.create(8, 0).unwrap_err(),
        BarrierError::ZeroParties
    );
    assert_eq!(
        barriers.wait(9, LONG).unwrap_err(),
        BarrierError::NotFound { id: 9 }
    );
}

#[test]
fn the_leader_publishes_barrier_reached() {
    let engine = common::engine(1);
    let sub = engine
        .events()
        .subscribe("coordination.barrier.reached", 8)
        .unwrap();
    let b = engine.barriers().create(3, 1).unwrap();
    let a = b.wait(LONG).unwrap();
    assert!(a.is_leader);
    let e = sub.recv_timeout(LONG).unwrap();
    assert_eq!(
        e.payload,
        Payload::BarrierReached {
            barrier: 3,
            generation: 0
        }
    );
}

#[test]
fn shutdown_wakes_barrier_waiters() {
    let engine = common::engine(1);
    let b = engine.barriers().create(1, 2).unwrap();
    let (parked_tx, parked_rx) = flume::bounded(1);
    let waiter = std::thread::spawn(move || {
        parked_tx.send(()).unwrap();
        b.wait(Duration::from_secs(3600))
    });
    parked_rx.recv().unwrap();
    // Whether the waiter is already parked or about to arrive, shutdown must release it.
    let _report = engine.shutdown();
    assert_eq!(waiter.join().unwrap().unwrap_err(), BarrierError::ShutDown);
}
