//! Agent state semantics through the public API.

mod common;

use mabeam::agents::{AgentError, AgentState, AgentStatus};
use mabeam::{Config, Engine, Error, ManualClock};

#[test]
fn update_get_remove() {
    let clock = ManualClock::new(1_000);
    let engine =
        Engine::start(common::config(2).with_clock(mabeam::Clock::Manual(clock.clone()))).unwrap();
    let agents = engine.agents();
    assert_eq!(agents.get(1).unwrap(), None);
    let s = AgentState {
        status: AgentStatus::Busy,
        load: 4,
        tasks_completed: 9,
        data: [1, 2, 3, 4],
    };
    let snap = agents.update_acked(1, s).wait().unwrap().unwrap();
    assert_eq!(snap.version, 1);
    assert_eq!(snap.updated_at, 1_000);
    assert_eq!(
        agents.get(1).unwrap().unwrap(),
        snap,
        "acked means published"
    );
    clock.advance(std::time::Duration::from_nanos(5));
    agents.update(1, AgentState { load: 5, ..s }).unwrap();
    engine.flush().unwrap();
    let snap = agents.get(1).unwrap().unwrap();
    assert_eq!(
        (snap.version, snap.state.load, snap.updated_at),
        (2, 5, 1_005)
    );
    let removed = agents.remove(1).wait().unwrap().unwrap();
    assert_eq!(removed.version, 2);
    assert_eq!(agents.get(1).unwrap(), None);
    assert_eq!(agents.remove(1).wait().unwrap(), Err(AgentError::NotFound));
}

#[test]
fn a_full_shard_refuses_new_agents() {
    let engine = Engine::start(common::config(1).with_agent_capacity(2)).unwrap();
    let agents = engine.agents();
    for id in 0..2 {
        agents
            .update_acked(id, AgentState::default())
            .wait()
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        agents
            .update_acked(2, AgentState::default())
            .wait()
            .unwrap(),
        Err(AgentError::Full { capacity: 2 })
    );
    agents
        .update_acked(1, AgentState::default())
        .wait()
        .unwrap()
        .unwrap();
}

#[test]
fn concurrent_writers_and_readers_agree() {
    let engine = common::engine(2);
    let agents = engine.agents();
    let engine = &engine;
    std::thread::scope(|s| {
        for w in 0..4u64 {
            s.spawn(move || {
                let mut writer = engine.batch_writer(64);
                for i in 0..10_000u64 {
                    let id = w * 1_000 + i % 100;
                    let _held_or_sent = writer
                        .update_agent(
                            id,
                            AgentState {
                                load: i,
                                data: [id; 4],
                                ..AgentState::default()
                            },
                        )
                        .unwrap();
                }
            });
        }
        for _ in 0..2 {
            s.spawn(move || {
                for i in 0..50_000u64 {
                    let id = (i % 4) * 1_000 + i % 100;
                    if let Some(snap) = agents.get(id).unwrap() {
                        assert_eq!(snap.id, id);
                        assert_eq!(snap.state.data, [id; 4], "never a torn record");
                    }
                }
            });
        }
    });
    engine.flush().unwrap();
    assert_eq!(agents.count().unwrap(), 400);
    for w in 0..4u64 {
        for k in 0..100u64 {
            let snap = agents.get(w * 1_000 + k).unwrap().unwrap();
            assert_eq!(snap.version, 100);
            assert_eq!(snap.state.load, 9_900 + k);
        }
    }
}

#[test]
fn centralized_agents_are_round_trips() {
    let engine = Engine::start(Config::centralized().with_pin_threads(false)).unwrap();
    let agents = engine.agents();
    agents
        .update(
            3,
            AgentState {
                load: 1,
                ..AgentState::default()
            },
        )
        .unwrap();
    // No flush needed: every call is synchronous in the centralized shape.
    assert_eq!(agents.get(3).unwrap().unwrap().state.load, 1);
    let report = engine.shutdown();
    assert_eq!(report.shards.len(), 1);
    let _ = Error::ShutDown;
}

/// `status` reads what `get` reads, in both shapes: absent, each status written, a
/// removed agent, and `Coordinating` while the agent is in a session.
#[test]
fn status_reads_the_published_status_in_both_shapes() {
    for config in [
        common::config(2),
        Config::centralized().with_pin_threads(false),
    ] {
        let engine = Engine::start(config).unwrap();
        let agents = engine.agents();
        assert_eq!(agents.status(1).unwrap(), None);
        for status in [
            AgentStatus::Idle,
            AgentStatus::Busy,
            AgentStatus::Coordinating,
            AgentStatus::Offline,
        ] {
            let state = AgentState {
                status,
                load: 3,
                ..AgentState::default()
            };
            agents.update_acked(1, state).wait().unwrap().unwrap();
            assert_eq!(agents.status(1).unwrap(), Some(status));
            assert_eq!(
                agents.status(1).unwrap(),
                agents.get(1).unwrap().map(|s| s.state.status)
            );
        }
        agents.remove(1).wait().unwrap().unwrap();
        assert_eq!(agents.status(1).unwrap(), None);
        engine.shutdown();
    }
}
