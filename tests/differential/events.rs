//! The reference model of host events (publish, history queries, subscriptions) and
//! barriers (create, get, wait from the test thread, remove, generations), written from
//! DESIGN.md and the docs of `mabeam::events` / `mabeam::barriers`.
//!
//! The engine's own services publish events too; the model keeps out of their way by
//! using topics under `host.` and correlation ids no service uses, and by querying the
//! history only with patterns or correlation ids that select the model's events. The
//! history is configured large enough (`HISTORY`) that no event the model expects is
//! overwritten within the step budget (`history_fits`).
//!
//! The shard that owns a topic (a hash) is the engine's choice; the model learns it
//! from the events it sees (and checks it never changes) to order history results by
//! the documented (timestamp, shard, sequence).

use std::collections::HashMap;
use std::time::Duration;

use mabeam::barriers::{Arrival, Barrier, BarrierError, MAX_PARTIES};
use mabeam::events::{Event, HistoryQuery, Payload, Subscription};
use mabeam::Engine;

use super::Rng;

/// Events kept per shard; see the module docs.
pub const HISTORY: usize = 1 << 16;

/// True if a case of `steps` steps cannot overwrite any history entry: no step makes
/// more than a handful of events (a deadline pass may close several auctions, each at
/// most a close and a market update, but every auction is created by an earlier step).
pub fn history_fits(steps: usize) -> bool {
    steps.saturating_mul(6) < HISTORY
}

const TOPICS: [&str; 5] = ["host.a", "host.b", "host.a.x", "host.a.y", "host.b.x"];
/// Patterns that can only match host topics or barrier events.
const PATTERNS: [&str; 9] = [
    "host.a",
    "host.a.x",
    "host.b.x",
    "host.*",
    "host.a.*",
    "host.b.*",
    "host.**",
    "coordination.barrier.reached",
    "coordination.barrier.*",
];
/// Host correlation ids (no service uses ids this large).
const CORRELATION: u64 = 1 << 60;
/// Barrier ids (also the correlation of their events).
const BARRIER: u64 = 1 << 61;

/// An event as the model sees it: topic, timestamp, correlation, payload bytes (a
/// barrier event's payload written as text).
pub type View = (String, u64, Option<u64>, Vec<u8>);

fn view(e: &Event) -> View {
    let payload = match &e.payload {
        Payload::Host(b) => b.to_vec(),
        Payload::BarrierReached {
            barrier,
            generation,
        } => format!("barrier {barrier} {generation}").into_bytes(),
        other => format!("unexpected {other:?}").into_bytes(),
    };
    (e.topic.to_string(), e.timestamp, e.correlation, payload)
}

/// What decides an event's shard: a host event's topic, a barrier event's barrier.
fn shard_key(v: &View) -> (String, Option<u64>) {
    if v.0.starts_with("host.") {
        (v.0.clone(), None)
    } else {
        (String::new(), v.2)
    }
}

/// The documented pattern rule: `*` is one segment, a trailing `**` any depth (the
/// model only uses it where at least one segment follows).
fn matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    if p.last() == Some(&"**") {
        let head = &p[..p.len() - 1];
        return t.len() > head.len() && head.iter().zip(&t).all(|(a, b)| *a == "*" || a == b);
    }
    p.len() == t.len() && p.iter().zip(&t).all(|(a, b)| *a == "*" || a == b)
}

struct ModelEvent {
    view: View,
    /// The shard's key: the topic for host events, the correlation for barrier events.
    key: String,
    order: u64,
}

struct Sub {
    pattern: &'static str,
    capacity: usize,
    sub: Subscription,
    pending: Vec<View>,
    lagged: u64,
}

struct ModelBarrier {
    parties: usize,
    generation: u64,
    handle: Barrier,
}

#[derive(Default)]
pub struct EventsModel {
    events: Vec<ModelEvent>,
    shard_of: HashMap<String, u16>,
    subs: Vec<Sub>,
    barriers: HashMap<u64, ModelBarrier>,
    /// Handles of removed barriers, which keep working.
    removed: Vec<ModelBarrier>,
}

impl EventsModel {
    fn record(&mut self, view: View, key: String) {
        for s in &mut self.subs {
            if matches(s.pattern, &view.0) {
                if s.pending.len() < s.capacity {
                    s.pending.push(view.clone());
                } else {
                    s.lagged += 1;
                }
            }
        }
        let order = self.events.len() as u64;
        self.events.push(ModelEvent { view, key, order });
    }

    fn learn(&mut self, got: &[Event], ctx: &dyn Fn(&str) -> String) {
        for e in got {
            let key = match &e.payload {
                Payload::Host(_) => e.topic.to_string(),
                _ => format!("{:?}", e.correlation),
            };
            let shard = *self.shard_of.entry(key.clone()).or_insert(e.shard);
            assert_eq!(
                shard,
                e.shard,
                "{}",
                ctx(&format!("shard of {key} changed"))
            );
        }
    }
}

/// One events or barriers operation, compared with the model.
pub fn step(
    engine: &Engine,
    m: &mut EventsModel,
    rng: &mut Rng,
    now: u64,
    check_history: bool,
    ctx: &dyn Fn(&str) -> String,
) {
    let events = engine.events();
    let barriers = engine.barriers();
    match rng.below(14) {
        0..=3 => {
            let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
            let payload: Vec<u8> = (0..rng.below(8)).map(|_| rng.below(256) as u8).collect();
            let correlation = (rng.below(4) != 0).then(|| CORRELATION + rng.below(4));
            events
                .publish(topic, &payload, correlation)
                .unwrap_or_else(|e| panic!("{}", ctx(&format!("publish {topic}: {e:?}"))));
            m.record(
                (topic.to_owned(), now, correlation, payload),
                topic.to_owned(),
            );
        }
        4 => {
            if m.subs.len() < 4 {
                let pattern = PATTERNS[rng.below(PATTERNS.len() as u64) as usize];
                // An exact host topic lives on one shard, so what a small queue keeps
                // and loses is deterministic; wildcard subscriptions and barrier events
                // (published on the shard of their barrier) get room for a case.
                let capacity = if pattern.contains('*') || pattern.starts_with("coordination") {
                    1 << 14
                } else {
                    1 + rng.below(4) as usize
                };
                let sub = events
                    .subscribe(pattern, capacity)
                    .unwrap_or_else(|e| panic!("{}", ctx(&format!("subscribe {pattern}: {e:?}"))));
                m.subs.push(Sub {
                    pattern,
                    capacity,
                    sub,
                    pending: Vec::new(),
                    lagged: 0,
                });
            } else {
                let i = rng.below(m.subs.len() as u64) as usize;
                drop(m.subs.swap_remove(i));
            }
        }
        5 | 6 => {
            engine.flush().unwrap();
            for s in &mut m.subs {
                let mut got = Vec::new();
                while let Some(e) = s.sub.try_recv() {
                    got.push(view(&e));
                }
                let mut want = std::mem::take(&mut s.pending);
                // Events of one host topic or one barrier come from one shard, in
                // order; different ones may interleave.
                got.sort_by_key(shard_key);
                want.sort_by_key(shard_key);
                assert_eq!(
                    got,
                    want,
                    "{}",
                    ctx(&format!(
                        "subscription {} (capacity {})",
                        s.pattern, s.capacity
                    ))
                );
                assert_eq!(
                    s.sub.lagged(),
                    s.lagged,
                    "{}",
                    ctx(&format!("lagged of subscription {}", s.pattern))
                );
            }
        }
        7 | 8 if check_history => {
            engine.flush().unwrap();
            let correlation = (rng.below(3) == 0).then(|| CORRELATION + rng.below(5));
            let pattern = if correlation.is_some() && rng.below(2) == 0 {
                None
            } else {
                Some(PATTERNS[rng.below(PATTERNS.len() as u64) as usize])
            };
            // A bound is a random time, or often an event's own timestamp (both ends are
            // inclusive).
            let span = now.saturating_sub(1_000) + 1;
            let bound = |rng: &mut Rng| {
                (rng.below(3) == 0).then(|| match rng.below(2) {
                    0 if !m.events.is_empty() => {
                        m.events[rng.below(m.events.len() as u64) as usize].view.1
                    }
                    _ => 1_000 + rng.below(span),
                })
            };
            let from = bound(rng);
            let to = bound(rng);
            let query = HistoryQuery {
                pattern: pattern.map(str::to_owned),
                from,
                to,
                correlation,
                limit: 0,
            };
            let full = events
                .history(&query)
                .unwrap_or_else(|e| panic!("{}", ctx(&format!("history {query:?}: {e:?}"))));
            m.learn(&full, ctx);
            let mut want: Vec<(u64, u16, u64, View)> = m
                .events
                .iter()
                .filter(|e| pattern.map_or(true, |p| matches(p, &e.view.0)))
                .filter(|e| from.map_or(true, |f| e.view.1 >= f))
                .filter(|e| to.map_or(true, |t| e.view.1 <= t))
                .filter(|e| correlation.map_or(true, |c| e.view.2 == Some(c)))
                .map(|e| {
                    let shard = m.shard_of.get(&e.key).copied().unwrap_or(u16::MAX);
                    (e.view.1, shard, e.order, e.view.clone())
                })
                .collect();
            want.sort_by_key(|w| (w.0, w.1, w.2));
            let want: Vec<View> = want.into_iter().map(|w| w.3).collect();
            let got: Vec<View> = full.iter().map(view).collect();
            assert_eq!(got, want, "{}", ctx(&format!("history {query:?}")));
            let limit = 1 + rng.below(5) as usize;
            let limited = events
                .history(&HistoryQuery {
                    limit,
                    ..query.clone()
                })
                .unwrap_or_else(|e| panic!("{}", ctx(&format!("history {query:?}: {e:?}"))));
            let got: Vec<View> = limited.iter().map(view).collect();
            let newest = want[want.len().saturating_sub(limit)..].to_vec();
            assert_eq!(
                got,
                newest,
                "{}",
                ctx(&format!("history limit {limit} {query:?}"))
            );
        }
        9 => {
            let id = BARRIER + rng.below(6);
            let parties = match rng.below(10) {
                0 => 0,
                1 => MAX_PARTIES + 1,
                2 | 3 => 2,
                _ => 1,
            };
            let got = barriers.create(id, parties);
            let want = if parties == 0 {
                Err(BarrierError::ZeroParties)
            } else if parties > MAX_PARTIES {
                Err(BarrierError::TooManyParties { parties })
            } else if m.barriers.contains_key(&id) {
                Err(BarrierError::AlreadyExists { id })
            } else {
                Ok(())
            };
            match got {
                Ok(handle) => {
                    assert_eq!(want, Ok(()), "{}", ctx(&format!("create barrier {id:#x}")));
                    assert_eq!(
                        (handle.id(), handle.parties(), handle.generation()),
                        (id, parties, 0)
                    );
                    m.barriers.insert(
                        id,
                        ModelBarrier {
                            parties,
                            generation: 0,
                            handle,
                        },
                    );
                }
                Err(e) => assert_eq!(Err(e), want, "{}", ctx(&format!("create barrier {id:#x}"))),
            }
        }
        10 | 11 => {
            let id = BARRIER + rng.below(6);
            // Through the engine by id, or through a handle (also of a removed barrier).
            let (got, b) = if rng.below(3) == 0 && !m.removed.is_empty() {
                let i = rng.below(m.removed.len() as u64) as usize;
                let b = &mut m.removed[i];
                (b.handle.wait(Duration::ZERO), Some(b))
            } else {
                (barriers.wait(id, Duration::ZERO), m.barriers.get_mut(&id))
            };
            let Some(b) = b else {
                assert_eq!(
                    got,
                    Err(BarrierError::NotFound { id }),
                    "{}",
                    ctx("wait unknown barrier")
                );
                return;
            };
            let bid = b.handle.id();
            if b.parties == 1 {
                let want = Arrival {
                    generation: b.generation,
                    is_leader: true,
                };
                assert_eq!(got, Ok(want), "{}", ctx(&format!("wait barrier {bid:#x}")));
                b.generation += 1;
                let generation = want.generation;
                assert_eq!(
                    b.handle.generation(),
                    b.generation,
                    "{}",
                    ctx("barrier generation")
                );
                m.record(
                    (
                        "coordination.barrier.reached".to_owned(),
                        now,
                        Some(bid),
                        format!("barrier {bid} {generation}").into_bytes(),
                    ),
                    format!("{:?}", Some(bid)),
                );
            } else {
                // Alone at a barrier of two: the arrival is taken back.
                assert_eq!(
                    got,
                    Err(BarrierError::Timeout),
                    "{}",
                    ctx(&format!("wait barrier {bid:#x}"))
                );
                assert_eq!(
                    b.handle.generation(),
                    b.generation,
                    "{}",
                    ctx("barrier generation")
                );
            }
        }
        12 => {
            let id = BARRIER + rng.below(6);
            let got = barriers.get(id).map(|b| (b.parties(), b.generation()));
            let want = m
                .barriers
                .get(&id)
                .map(|b| (b.parties, b.generation))
                .ok_or(BarrierError::NotFound { id });
            assert_eq!(got, want, "{}", ctx(&format!("get barrier {id:#x}")));
        }
        13 => {
            let id = BARRIER + rng.below(6);
            let got = barriers.remove(id);
            match m.barriers.remove(&id) {
                Some(b) => {
                    assert_eq!(got, Ok(()), "{}", ctx(&format!("remove barrier {id:#x}")));
                    if m.removed.len() < 4 {
                        m.removed.push(b);
                    }
                }
                None => assert_eq!(
                    got,
                    Err(BarrierError::NotFound { id }),
                    "{}",
                    ctx(&format!("remove barrier {id:#x}"))
                ),
            }
        }
        _ => {}
    }
}
