//! Every public call that takes a duration or a size handles its whole range: the
//! extremes (`Duration::ZERO`, `Duration::MAX`, `0`, `usize::MAX`) either work or return a
//! typed error; none panics.
//!
//! Before this file, `Subscription::recv_timeout(Duration::MAX)` panicked (an `Instant`
//! overflow inside flume) while `Ticket::wait_timeout` and `Barrier::wait` accepted it.

mod common;

use std::time::Duration;

use mabeam::agents::AgentState;
use mabeam::barriers::BarrierError;
use mabeam::events::{EventError, HistoryQuery, Payload};
use mabeam::Buffered;

#[test]
fn recv_timeout_takes_the_whole_duration_range() {
    let engine = common::engine(2);
    let events = engine.events();
    let sub = events.subscribe("ranges.*", 8).expect("valid pattern");
    // One topic, so one shard, so the two arrive in order.
    events.publish("ranges.a", b"1", None).expect("published");
    events.publish("ranges.a", b"2", None).expect("published");
    engine.flush().expect("engine alive");

    // Events are queued, so neither call has to wait at all.
    let first = sub.recv_timeout(Duration::MAX).expect("an event is queued");
    assert_eq!(first.payload, Payload::Host(b"1"[..].into()));
    let second = sub
        .recv_timeout(Duration::from_secs(u64::MAX))
        .expect("an event is queued");
    assert_eq!(second.payload, Payload::Host(b"2"[..].into()));
    // Nothing queued: a zero timeout answers at once.
    assert!(matches!(
        sub.recv_timeout(Duration::ZERO),
        Err(EventError::Timeout)
    ));
}

#[test]
fn ticket_and_barrier_waits_take_duration_max() {
    let engine = common::engine(2);
    let mut ticket = engine.agents().update_acked(1, AgentState::default());
    assert!(ticket.wait_timeout(Duration::MAX).is_ok());
    let barrier = engine.barriers().create(1, 1).expect("fresh barrier");
    assert!(barrier.wait(Duration::MAX).is_ok(), "one party: no wait");
}

#[test]
fn batch_writer_takes_the_whole_size_range() {
    let engine = common::engine(2);
    for batch in [0, 1, usize::MAX] {
        let mut writer = engine.batch_writer(batch);
        let mut sent = 0;
        for id in 0..100u64 {
            if let Buffered::Sent(n) = writer
                .update_agent(id, AgentState::default())
                .expect("room in the mailbox")
            {
                sent += n;
            }
        }
        sent += writer.flush().expect("room in the mailbox");
        assert_eq!(sent, 100, "batch {batch}: every command sent once");
        engine.flush().expect("engine alive");
        assert_eq!(engine.agents().count().expect("engine alive"), 100);
    }
}

#[test]
fn subscribe_refuses_sizes_out_of_range() {
    let engine = common::engine(1);
    for capacity in [0, usize::MAX] {
        assert!(matches!(
            engine.events().subscribe("a.*", capacity),
            Err(EventError::InvalidCapacity { .. })
        ));
    }
}

#[test]
fn history_limit_and_barrier_parties_take_their_whole_range() {
    let engine = common::engine(2);
    let events = engine.events();
    for i in 0..3u64 {
        events
            .publish("ranges.h", b"x", Some(i))
            .expect("published");
    }
    engine.flush().expect("engine alive");
    for (limit, expected) in [(0, 3), (1, 1), (usize::MAX, 3)] {
        let query = HistoryQuery {
            pattern: Some("ranges.h".into()),
            limit,
            ..HistoryQuery::default()
        };
        let found = events.history(&query).expect("valid query");
        assert_eq!(found.len(), expected, "limit {limit}");
    }

    let barriers = engine.barriers();
    assert!(matches!(
        barriers.create(1, 0),
        Err(BarrierError::ZeroParties)
    ));
    assert!(matches!(
        barriers.create(2, usize::MAX),
        Err(BarrierError::TooManyParties { .. })
    ));
}
