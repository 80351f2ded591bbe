//! Shutdown loses and doubles nothing: writers race `shutdown()` and every single write
//! is checked — applied exactly when its call returned `Ok`, and never applied when it
//! returned `ShutDown`.
//!
//! Which writes were applied is learned from the engine itself: every write goes to a
//! fresh agent id, so each applied write publishes exactly one `agent.state.updated`
//! event, and a subscription big enough never to lag collects them; it keeps what it
//! received after the engine is gone.
//!
//! On the engine before the runtime layer (commit fb28d44) the same race lost writes
//! that had returned `Ok` in 3–12 % of rounds, and more with small mailboxes.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use mabeam::agents::{AgentState, AgentStatus};
use mabeam::events::Payload;
use mabeam::{Buffered, Config, Engine, Error};

/// Most writes one writer makes in a round (it stops earlier at `ShutDown`).
const MAX_WRITES: u64 = 20_000;
/// Writes each writer makes before shutdown may begin.
const HEAD_START: u64 = 20;

/// How a writer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `agents().update`, one message per write.
    FireAndForget,
    /// `agents().update_acked(..).wait()`.
    Acked,
    /// A `BatchWriter` of this many commands.
    Batched(usize),
}

fn state(i: u64) -> AgentState {
    AgentState {
        status: AgentStatus::Busy,
        load: i,
        ..AgentState::default()
    }
}

/// The agent id of write `i` of writer `w`: unique in the round.
fn id(w: u64, i: u64) -> u64 {
    (w << 32) | i
}

/// Runs one writer until the engine refuses it; returns the ids whose write was
/// accepted (its call returned `Ok`, or for a batch, the call that sent it did).
fn write_until_refused(
    engine: &mabeam::EngineHandle,
    w: u64,
    style: Style,
    started: &flume::Sender<()>,
) -> Vec<u64> {
    let mut accepted = Vec::new();
    let mut held = Vec::new();
    let mut writer = match style {
        Style::Batched(n) => Some(engine.batch_writer(n)),
        _ => None,
    };
    for i in 0..MAX_WRITES {
        if i == HEAD_START {
            started.send(()).expect("the test waits for every writer");
        }
        let id = id(w, i);
        let refused = match (style, writer.as_mut()) {
            (Style::FireAndForget, _) => match engine.agents().update(id, state(i)) {
                Ok(()) => {
                    accepted.push(id);
                    None
                }
                Err(e) => Some(e),
            },
            (Style::Acked, _) => match engine.agents().update_acked(id, state(i)).wait() {
                Ok(Ok(_)) => {
                    accepted.push(id);
                    None
                }
                Ok(Err(e)) => panic!("an agent write is refused only by the engine: {e:?}"),
                Err(e) => Some(mabeam::agents::AgentError::Engine(e)),
            },
            (Style::Batched(_), Some(writer)) => match writer.update_agent(id, state(i)) {
                Ok(Buffered::Held) => {
                    held.push(id);
                    None
                }
                Ok(Buffered::Sent(n)) => {
                    held.push(id);
                    assert_eq!(n, held.len(), "one shard: the whole buffer went");
                    accepted.append(&mut held);
                    None
                }
                Err(e) => Some(mabeam::agents::AgentError::Engine(e)),
            },
            (Style::Batched(_), None) => unreachable!("batched writers have a writer"),
        };
        if let Some(e) = refused {
            assert!(
                matches!(e, mabeam::agents::AgentError::Engine(Error::ShutDown)),
                "only shutdown refuses these writes (mailboxes wait for room): {e:?}"
            );
            break;
        }
    }
    if let Some(mut writer) = writer {
        match writer.flush() {
            Ok(n) => {
                assert_eq!(n, held.len());
                accepted.append(&mut held);
            }
            Err(e) => assert_eq!(e, Error::ShutDown),
        }
        // Dropping the writer discards what is still held: never accepted.
    }
    accepted
}

/// One round: `writers` writers of `style` race a shutdown; returns the number of
/// writes checked.
fn round(config: Config, writers: u64, style: Style) -> usize {
    let engine = Engine::start(config).expect("valid config");
    let applied_events = engine
        .events()
        .subscribe("agent.state.updated", 1 << 20)
        .expect("subscribe");
    let (started_tx, started) = flume::bounded(writers as usize);
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let handle = engine.handle();
            let started_tx = started_tx.clone();
            std::thread::spawn(move || write_until_refused(&handle, w, style, &started_tx))
        })
        .collect();
    for _ in 0..writers {
        started.recv().expect("every writer starts");
    }
    let report = engine.shutdown();
    assert!(report.dead_shards().is_empty());
    let accepted: HashSet<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer panicked"))
        .collect();
    let mut applied = HashSet::new();
    while let Some(event) = applied_events.try_recv() {
        if let Payload::AgentUpdated(snapshot) = event.payload {
            assert!(applied.insert(snapshot.id), "a write was applied twice");
        }
    }
    assert_eq!(
        applied_events.lagged(),
        0,
        "the subscription saw every event"
    );
    let lost: Vec<_> = accepted.difference(&applied).take(5).collect();
    let unasked: Vec<_> = applied.difference(&accepted).take(5).collect();
    assert!(
        lost.is_empty() && unasked.is_empty(),
        "{style:?}: {} accepted writes never applied (e.g. {lost:?}), {} applied writes \
         whose call did not return Ok (e.g. {unasked:?})",
        accepted.difference(&applied).count(),
        applied.difference(&accepted).count(),
    );
    accepted.len()
}

fn sharded(mailbox: usize) -> Config {
    common::config(2).with_mailbox_capacity(mailbox)
}

fn centralized(mailbox: usize) -> Config {
    Config::centralized()
        .with_mailbox_capacity(mailbox)
        .with_pin_threads(false)
}

fn rounds(n: usize, config: impl Fn() -> Config, writers: u64, style: Style) {
    let mut checked = 0;
    for _ in 0..n {
        checked += round(config(), writers, style);
    }
    assert!(checked > 0);
}

#[test]
fn fire_and_forget_writes_racing_shutdown_sharded() {
    rounds(40, || sharded(1), 3, Style::FireAndForget);
    rounds(40, || sharded(64), 3, Style::FireAndForget);
    rounds(20, || sharded(4096), 3, Style::FireAndForget);
}

#[test]
fn fire_and_forget_writes_racing_shutdown_centralized() {
    rounds(30, || centralized(1), 3, Style::FireAndForget);
    rounds(30, || centralized(4096), 3, Style::FireAndForget);
}

#[test]
fn acknowledged_writes_racing_shutdown() {
    rounds(30, || sharded(1), 3, Style::Acked);
    rounds(30, || sharded(4096), 3, Style::Acked);
    rounds(20, || centralized(64), 3, Style::Acked);
}

#[test]
fn batched_writes_racing_shutdown() {
    // One shard, so a writer's whole buffer goes in each send.
    rounds(
        40,
        || common::config(1).with_mailbox_capacity(16),
        3,
        Style::Batched(1),
    );
    rounds(
        40,
        || common::config(1).with_mailbox_capacity(64),
        3,
        Style::Batched(16),
    );
    rounds(20, || common::config(1), 3, Style::Batched(256));
}

/// Handles held by other threads survive the engine: their calls return `ShutDown`.
#[test]
fn handles_outlive_the_engine_and_get_shut_down() {
    let engine = common::engine(2);
    let handle = Arc::new(engine.handle());
    let lease = handle
        .registry()
        .register("survivor", 1, &Default::default())
        .unwrap();
    engine.shutdown();
    assert_eq!(handle.flush(), Err(Error::ShutDown));
    assert_eq!(
        handle.agents().update(1, state(1)),
        Err(mabeam::agents::AgentError::Engine(Error::ShutDown))
    );
    assert_eq!(
        handle.agents().get(1),
        Err(mabeam::agents::AgentError::Engine(Error::ShutDown))
    );
    assert_eq!(
        lease.release(),
        Err(mabeam::registry::RegistryError::Engine(Error::ShutDown))
    );
}
