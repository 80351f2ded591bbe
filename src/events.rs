//! Events: every service reports what happened as an [`Event`] on a dotted topic;
//! hosts subscribe by pattern and publish their own.
//!
//! # How it works
//!
//! - Each shard keeps its own subscription index (a segment trie, so matching costs
//!   grow with the topic's depth and the number of *matching* subscriptions, not with
//!   unrelated ones) and its own bounded history ring. No lock is taken on the event
//!   path: subscribing and unsubscribing are messages to every shard.
//! - A subscriber has a bounded queue (`capacity` events). A shard hands it an event
//!   with `try_send`: when the queue is full the event is dropped for that subscriber and
//!   counted ([`Subscription::lagged`]); a shard or publisher never blocks on a
//!   subscriber. A dropped subscription is removed from every shard.
//! - Sequence numbers are per publishing shard and increase by one per event;
//!   `(shard, seq)` identifies an event. Timestamps are engine clock nanoseconds at the
//!   start of the batch that produced the event.
//! - The history keeps the last `Config::events.history` events per shard (oldest
//!   overwritten), and at most `Config::events.history_bytes` host payload bytes per
//!   shard (oldest evicted until the new event fits); [`Events::history`] queries it by pattern, time range and correlation
//!   id.
//!
//! Topics the services publish: `registry.registered`, `registry.unregistered`,
//! `agent.state.updated`, `auction.created`, `auction.bid`, `auction.closed`,
//! `auction.cancelled`, `market.data.updated`, `coordination.initiated`,
//! `coordination.completed`, `coordination.barrier.reached`.

mod state;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mabeam_shards::agents::AgentSnapshot;
use mabeam_shards::auction::{Amount, AuctionEvent, AuctionId, AuctionStatus, Outcome};
use mabeam_shards::market::MarketState;
use mabeam_shards::registry::Name;
use mabeam_shards::topic::{Pattern, PatternIndex, Topic, TopicError};

use crate::engine::Inner;
use crate::runtime::{Reply, SendWait};
use crate::Error;

/// Host payload bytes an event charges to the history's byte bound.
fn payload_bytes(payload: &Payload) -> usize {
    match payload {
        Payload::Host(bytes) => bytes.len(),
        _ => 0,
    }
}

/// Bounds of the event system (`#[non_exhaustive]`: start from
/// [`EventsConfig::default()`] and use the `with_*` setters or assign fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventsConfig {
    /// Events kept per shard for [`Events::history`]; 0 keeps none.
    pub history: usize,
    /// Most subscriptions at once (a subscribe beyond returns `TooManySubscriptions`).
    pub max_subscriptions: usize,
    /// Largest subscriber queue a subscription may ask for.
    pub max_queue: usize,
    /// Largest host payload [`Events::publish`] accepts, in bytes (1 to
    /// [`MAX_PAYLOAD_LIMIT`]); a larger one is refused with
    /// [`EventError::PayloadTooLarge`] and nothing is published.
    pub max_payload: usize,
    /// Host payload bytes kept per shard for [`Events::history`] (at least
    /// `max_payload`, at most [`MAX_HISTORY_BYTES_LIMIT`]). When recording an event would
    /// exceed it, the oldest events are evicted until it fits (as when `history` is hit).
    pub history_bytes: usize,
}

/// Upper bound of [`EventsConfig::max_payload`] (256 MiB).
pub const MAX_PAYLOAD_LIMIT: usize = 1 << 28;
/// Upper bound of [`EventsConfig::history_bytes`] (16 GiB).
pub const MAX_HISTORY_BYTES_LIMIT: usize = 1 << 34;

impl EventsConfig {
    /// The first field out of range, with why.
    pub(crate) fn invalid(&self) -> Option<(&'static str, &'static str)> {
        if self.max_payload == 0 || self.max_payload > MAX_PAYLOAD_LIMIT {
            return Some((
                "events.max_payload",
                "must be 1 to 268435456 (MAX_PAYLOAD_LIMIT)",
            ));
        }
        if self.history_bytes < self.max_payload || self.history_bytes > MAX_HISTORY_BYTES_LIMIT {
            return Some((
                "events.history_bytes",
                "must be at least max_payload and at most 17179869184 (MAX_HISTORY_BYTES_LIMIT)",
            ));
        }
        None
    }
}

setters!(EventsConfig {
    with_history => history: usize,
    with_max_subscriptions => max_subscriptions: usize,
    with_max_queue => max_queue: usize,
    with_max_payload => max_payload: usize,
    with_history_bytes => history_bytes: usize,
});

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            history: 1024,
            max_subscriptions: 4096,
            max_queue: 1 << 20,
            max_payload: 1 << 20,
            history_bytes: 64 << 20,
        }
    }
}

/// What an event says.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// `registry.registered`.
    Registered {
        /// The name.
        name: Name,
        /// Its handle.
        handle: u64,
    },
    /// `registry.unregistered`.
    Unregistered {
        /// The name.
        name: Name,
        /// Its handle.
        handle: u64,
    },
    /// `agent.state.updated`.
    AgentUpdated(AgentSnapshot),
    /// `auction.created`.
    AuctionCreated(AuctionStatus),
    /// `auction.bid`: an accepted bid (amount hidden for sealed kinds).
    AuctionBid {
        /// The auction.
        auction: AuctionId,
        /// The bidder.
        bidder: u64,
        /// The amount, `None` for sealed kinds.
        amount: Option<Amount>,
    },
    /// `auction.closed`: closed by a call, a bid or its deadline, with its outcome.
    AuctionClosed(Outcome),
    /// `auction.cancelled`.
    AuctionCancelled {
        /// The auction.
        auction: AuctionId,
    },
    /// `market.data.updated`.
    MarketUpdated(MarketState),
    /// `coordination.initiated`.
    CoordinationInitiated {
        /// The session.
        session: u64,
        /// Number of participants.
        participants: u32,
    },
    /// `coordination.completed`.
    CoordinationCompleted(mabeam_shards::coordination::Completion),
    /// `coordination.barrier.reached`.
    BarrierReached {
        /// The barrier.
        barrier: u64,
        /// The generation that completed.
        generation: u64,
    },
    /// A host's own event.
    Host(Arc<[u8]>),
}

/// An event's topic: a service's static name, or a host topic shared by every copy of
/// the event (cloning an event for a subscriber never copies the topic).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicName {
    /// A service topic such as `auction.bid`.
    Static(&'static str),
    /// A host topic.
    Shared(Arc<str>),
}

impl std::ops::Deref for TopicName {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Static(s) => s,
            Self::Shared(s) => s,
        }
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        self
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl PartialEq<str> for TopicName {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for TopicName {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The dotted topic.
    pub topic: TopicName,
    /// The shard that published it.
    pub shard: u16,
    /// Sequence number on that shard (increasing by one per event).
    pub seq: u64,
    /// Engine clock time, in nanoseconds.
    pub timestamp: u64,
    /// What the event is about: the auction (its [`AuctionId::to_raw`]), agent or
    /// session id for service events, the host's id for its own.
    pub correlation: Option<u64>,
    /// What it says.
    pub payload: Payload,
}

/// Why an events call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The topic or pattern is malformed.
    Topic(TopicError),
    /// A subscription queue of 0 or above `Config::events.max_queue`.
    InvalidCapacity {
        /// The capacity asked for.
        capacity: usize,
    },
    /// `Config::events.max_subscriptions` subscriptions exist.
    TooManySubscriptions,
    /// The subscription's sender side is gone (the engine shut down).
    Disconnected,
    /// `recv_timeout` ran out.
    Timeout,
    /// A published payload above `Config::events.max_payload`; nothing was published.
    PayloadTooLarge {
        /// The payload's size in bytes.
        size: usize,
        /// The bound, `Config::events.max_payload`.
        max: usize,
    },
    /// The engine could not carry out the call.
    Engine(Error),
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Topic(e) => write!(f, "{e}"),
            Self::InvalidCapacity { capacity } => {
                write!(f, "invalid subscription queue capacity {capacity}")
            }
            Self::TooManySubscriptions => f.write_str("too many subscriptions"),
            Self::Disconnected => f.write_str("the engine has shut down"),
            Self::Timeout => f.write_str("timed out waiting for an event"),
            Self::PayloadTooLarge { size, max } => {
                write!(
                    f,
                    "event payload of {size} bytes is above the bound of {max}"
                )
            }
            Self::Engine(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for EventError {}

impl From<Error> for EventError {
    fn from(e: Error) -> Self {
        Self::Engine(e)
    }
}

impl From<TopicError> for EventError {
    fn from(e: TopicError) -> Self {
        Self::Topic(e)
    }
}

/// A history query; every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Topic pattern (`a.b`, `a.*`, `a.**`, `**`).
    pub pattern: Option<String>,
    /// Earliest timestamp, inclusive.
    pub from: Option<u64>,
    /// Latest timestamp, inclusive.
    pub to: Option<u64>,
    /// Correlation id.
    pub correlation: Option<u64>,
    /// Most events returned (the newest ones); 0 means no limit beyond the history's.
    pub limit: usize,
}

struct SubShared {
    lagged: AtomicU64,
}

/// A subscriber as a shard holds it.
#[derive(Clone)]
pub(crate) struct Subscriber {
    id: u64,
    tx: flume::Sender<Event>,
    shared: Arc<SubShared>,
}

/// Event commands.
pub(crate) enum EventCommand {
    Subscribe {
        pattern: Pattern,
        subscriber: Subscriber,
        reply: Reply<()>,
    },
    Unsubscribe {
        id: u64,
    },
    Publish {
        topic: Arc<str>,
        payload: Arc<[u8]>,
        correlation: Option<u64>,
    },
    /// A service event raised off the shards (a barrier's leader).
    Raise {
        topic: &'static str,
        payload: Payload,
        correlation: Option<u64>,
    },
    History {
        pattern: Option<Pattern>,
        query: HistoryQuery,
        reply: Reply<Vec<Event>>,
    },
    /// Test-only ([`Testing::subscribers`](crate::testing::Testing::subscribers)): the
    /// subscriptions this shard holds.
    Subscribers {
        reply: Reply<usize>,
    },
}

/// A shard's side of the event system: its subscription index, history and sequence.
///
/// Invariants: `index` holds each live subscription of this shard exactly once;
/// `history.len() <= history_cap`; `history_bytes` is the sum of the host payload bytes
/// in `history` and is `<= history_bytes_cap`; `seq` is the number of events this shard produced.
pub(crate) struct EventSink {
    shard: u16,
    seq: u64,
    index: PatternIndex<Subscriber>,
    subscribers: usize,
    history: VecDeque<Event>,
    history_cap: usize,
    history_bytes: usize,
    history_bytes_cap: usize,
    dead: Vec<u64>,
    /// Event copies handed to subscribers, and dropped for full queues (telemetry).
    delivered: u64,
    lagged: u64,
}

impl EventSink {
    pub(crate) fn new(shard: usize, config: &EventsConfig) -> Self {
        Self {
            shard: shard as u16,
            seq: 0,
            index: PatternIndex::new(),
            subscribers: 0,
            history: VecDeque::with_capacity(config.history.min(1 << 16)),
            history_cap: config.history,
            history_bytes: 0,
            history_bytes_cap: config.history_bytes,
            dead: Vec::new(),
            delivered: 0,
            lagged: 0,
        }
    }

    /// What telemetry and the resource monitor read of this sink.
    pub(crate) fn figures(&self) -> crate::telemetry::shard::ShardFigures {
        crate::telemetry::shard::ShardFigures {
            events_published: self.seq,
            events_delivered: self.delivered,
            events_lagged: self.lagged,
            subscriptions: self.subscribers,
            history: self.history.len(),
            history_bytes: self.history_bytes,
        }
    }

    /// True if an event would go anywhere (a subscriber or the history).
    #[inline]
    fn wanted(&self) -> bool {
        self.subscribers > 0 || self.history_cap > 0
    }

    /// Hands `payload` on `topic` to every matching subscriber and the history.
    pub(crate) fn emit(
        &mut self,
        topic: TopicName,
        payload: Payload,
        correlation: Option<u64>,
        now: u64,
    ) {
        if !self.wanted() {
            return;
        }
        self.seq += 1;
        let event = Event {
            topic,
            shard: self.shard,
            seq: self.seq,
            timestamp: now,
            correlation,
            payload,
        };
        if self.subscribers > 0 {
            let dead = &mut self.dead;
            let (delivered, lagged) = (&mut self.delivered, &mut self.lagged);
            self.index
                .for_each_match(&event.topic, |sub| match sub.tx.try_send(event.clone()) {
                    Ok(()) => *delivered += 1,
                    Err(flume::TrySendError::Full(_)) => {
                        *lagged += 1;
                        sub.shared.lagged.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(flume::TrySendError::Disconnected(_)) => dead.push(sub.id),
                });
            for id in std::mem::take(&mut self.dead) {
                self.unsubscribe(id);
            }
        }
        if self.history_cap > 0 {
            let size = payload_bytes(&event.payload);
            if size > self.history_bytes_cap {
                return;
            }
            while self.history.len() >= self.history_cap
                || self.history_bytes + size > self.history_bytes_cap
            {
                match self.history.pop_front() {
                    Some(old) => self.history_bytes -= payload_bytes(&old.payload),
                    None => break,
                }
            }
            self.history_bytes += size;
            self.history.push_back(event);
        }
    }

    fn unsubscribe(&mut self, id: u64) {
        if self.index.remove_where(|s| s.id == id) > 0 {
            self.subscribers -= 1;
        }
    }

    /// An auction transition (evictions are not events).
    pub(crate) fn auction(&mut self, event: AuctionEvent, now: u64) {
        if !self.wanted() {
            return;
        }
        let (topic, payload, id) = match event {
            AuctionEvent::Created(s) => ("auction.created", Payload::AuctionCreated(s), s.id),
            AuctionEvent::Bid { id, bidder, amount } => (
                "auction.bid",
                Payload::AuctionBid {
                    auction: id,
                    bidder,
                    amount,
                },
                id,
            ),
            AuctionEvent::Closed { id, outcome, .. } => {
                ("auction.closed", Payload::AuctionClosed(outcome), id)
            }
            AuctionEvent::Cancelled { id, .. } => (
                "auction.cancelled",
                Payload::AuctionCancelled { auction: id },
                id,
            ),
            AuctionEvent::Evicted { .. } => return,
        };
        self.emit(TopicName::Static(topic), payload, Some(id.to_raw()), now);
    }

    /// A market state changed.
    pub(crate) fn market_updated(&mut self, state: MarketState, now: u64) {
        if self.wanted() {
            self.emit(
                TopicName::Static("market.data.updated"),
                Payload::MarketUpdated(state),
                Some(state.key),
                now,
            );
        }
    }

    /// A service event with a static topic.
    pub(crate) fn service(
        &mut self,
        topic: &'static str,
        payload: impl FnOnce() -> Payload,
        correlation: Option<u64>,
        now: u64,
    ) {
        if self.wanted() {
            self.emit(TopicName::Static(topic), payload(), correlation, now);
        }
    }

    pub(crate) fn apply(
        &mut self,
        cmd: EventCommand,
        now: u64,
    ) -> Option<(Reply<Vec<Event>>, Vec<Event>)> {
        match cmd {
            EventCommand::Subscribe {
                pattern,
                subscriber,
                reply,
            } => {
                self.index.insert(&pattern, subscriber);
                self.subscribers += 1;
                reply.send(Ok(()));
                None
            }
            EventCommand::Unsubscribe { id } => {
                self.unsubscribe(id);
                None
            }
            EventCommand::Publish {
                topic,
                payload,
                correlation,
            } => {
                self.emit(
                    TopicName::Shared(topic),
                    Payload::Host(payload),
                    correlation,
                    now,
                );
                None
            }
            EventCommand::Raise {
                topic,
                payload,
                correlation,
            } => {
                self.emit(TopicName::Static(topic), payload, correlation, now);
                None
            }
            EventCommand::History {
                pattern,
                query,
                reply,
            } => {
                let found = self
                    .history
                    .iter()
                    .filter(|e| pattern.as_ref().map_or(true, |p| p.matches(&e.topic)))
                    .filter(|e| query.from.map_or(true, |t| e.timestamp >= t))
                    .filter(|e| query.to.map_or(true, |t| e.timestamp <= t))
                    .filter(|e| query.correlation.map_or(true, |c| e.correlation == Some(c)))
                    .cloned()
                    .collect();
                Some((reply, found))
            }
            EventCommand::Subscribers { reply } => {
                reply.send(Ok(self.subscribers));
                None
            }
        }
    }
}

/// Engine-wide event state.
pub(crate) struct EventsShared {
    next_id: AtomicU64,
    live: Arc<AtomicU64>,
}

impl EventsShared {
    pub(crate) fn new() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            live: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Subscriptions alive now.
    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }
}

/// A subscription: a bounded queue of the events whose topic matches its pattern.
/// Dropping it unsubscribes.
pub struct Subscription {
    rx: flume::Receiver<Event>,
    shared: Arc<SubShared>,
    id: u64,
    inner: Arc<Inner>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("queued", &self.rx.len())
            .field("lagged", &self.lagged())
            .finish()
    }
}

impl Subscription {
    /// The next event, blocking until one arrives; `Disconnected` once the engine has
    /// shut down and the queue is empty.
    pub fn recv(&self) -> Result<Event, EventError> {
        self.rx.recv().map_err(|_| EventError::Disconnected)
    }

    /// The next event, waiting at most `timeout`. Any duration is accepted: one that
    /// reaches beyond what `Instant` can express (`Duration::MAX`) waits like
    /// [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Event, EventError> {
        // flume adds `timeout` to `Instant::now()` unchecked; a deadline the clock cannot
        // express is "no deadline".
        let Some(deadline) = std::time::Instant::now().checked_add(timeout) else {
            return self.recv();
        };
        self.rx.recv_deadline(deadline).map_err(|e| match e {
            flume::RecvTimeoutError::Timeout => EventError::Timeout,
            flume::RecvTimeoutError::Disconnected => EventError::Disconnected,
        })
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Events dropped because the queue was full.
    pub fn lagged(&self) -> u64 {
        self.shared.lagged.load(Ordering::Relaxed)
    }

    /// Events queued now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True if no event is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// A blocking iterator over the events; ends when the engine shuts down.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.rx.iter()
    }
}

impl Drop for Subscription {
    /// Unsubscribes on every shard through its control queue (never refused for room,
    /// never blocking; one message per subscription and shard bounds that queue). After
    /// shutdown there is nothing to unsubscribe from.
    fn drop(&mut self) {
        self.inner.events.live.fetch_sub(1, Ordering::Relaxed);
        for shard in 0..self.inner.ports.len() {
            let cmd = EventCommand::Unsubscribe { id: self.id };
            let _ = self.inner.rt.control(shard, cmd.into());
        }
    }
}

/// The events of an engine; get it with [`Engine::events`](crate::EngineHandle::events).
///
/// ```
/// let engine = mabeam::Engine::start(mabeam::Config::default().with_shards(2).with_pin_threads(false))?;
/// let sub = engine.events().subscribe("app.*", 64)?;
/// engine.events().publish("app.started", b"hello", Some(7))?;
/// let event = sub.recv()?;
/// assert_eq!(event.topic, "app.started");
/// assert_eq!(event.correlation, Some(7));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Events<'e> {
    inner: &'e Arc<Inner>,
}

impl std::fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Events", f)
    }
}

impl<'e> Events<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Subscribes to the topics matching `pattern` (an exact topic, `a.*` for one
    /// segment, `a.**` or `**` for any depth) with a queue of `capacity` events.
    /// Returns once every shard has the subscription: every event published after this
    /// returns and matching the pattern is delivered (or counted as lagged). If a shard
    /// refuses it (`Busy`, `ShutDown`, `ShardDown`), the call still waits for the shards
    /// that admitted it, then returns the refusal and leaves no subscriber behind.
    pub fn subscribe(&self, pattern: &str, capacity: usize) -> Result<Subscription, EventError> {
        self.inner.check_open()?;
        let pattern = Pattern::parse(pattern)?;
        let config = &self.inner.config.events;
        if capacity == 0 || capacity > config.max_queue {
            return Err(EventError::InvalidCapacity { capacity });
        }
        let shared_events = &self.inner.events;
        if shared_events.live.fetch_add(1, Ordering::Relaxed) >= config.max_subscriptions as u64 {
            shared_events.live.fetch_sub(1, Ordering::Relaxed);
            return Err(EventError::TooManySubscriptions);
        }
        let id = shared_events.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = flume::bounded(capacity);
        let shared = Arc::new(SubShared {
            lagged: AtomicU64::new(0),
        });
        let subscription = Subscription {
            rx,
            shared: shared.clone(),
            id,
            inner: self.inner.clone(),
        };
        let tickets: Vec<_> = (0..self.inner.ports.len())
            .map(|shard| {
                let subscriber = Subscriber {
                    id,
                    tx: tx.clone(),
                    shared: shared.clone(),
                };
                let pattern = pattern.clone();
                self.inner.call(shard, |reply| EventCommand::Subscribe {
                    pattern,
                    subscriber,
                    reply,
                })
            })
            .collect();
        // Every ticket is waited for, even after a refusal: a subscribe that a shard
        // admitted must be applied before the unsubscribe that dropping `subscription`
        // sends on the control queue, which would otherwise overtake it and leave the
        // subscriber in that shard's index.
        let mut refused = None;
        for t in tickets {
            if let Err(e) = t.wait() {
                refused.get_or_insert(e);
            }
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(subscription),
        }
    }

    /// Publishes a host event on `topic` (validated: dotted segments of
    /// `[A-Za-z0-9_-]`). Asynchronous: it goes through the shard that owns the topic's
    /// hash, which stamps, matches and records it.
    pub fn publish(
        &self,
        topic: &str,
        payload: &[u8],
        correlation: Option<u64>,
    ) -> Result<(), EventError> {
        self.inner.check_open()?;
        Topic::validate(topic)?;
        let max = self.inner.config.events.max_payload;
        if payload.len() > max {
            return Err(EventError::PayloadTooLarge {
                size: payload.len(),
                max,
            });
        }
        let shard = self
            .inner
            .shard_of(mabeam_shards::registry::name_key(topic));
        let topic: Arc<str> = topic.into();
        let cmd = EventCommand::Publish {
            topic,
            payload: payload.into(),
            correlation,
        };
        Ok(self.inner.send(shard, cmd, SendWait::Timeout)?)
    }

    /// Raises a service event from a host thread (a barrier's leader): a fire-and-forget
    /// write like any other, so the raising thread waits for room (up to
    /// `Config::send_timeout`) rather than the event being dropped. Returns the refusal
    /// if it was not accepted (`Busy` after the timeout, or `ShutDown`).
    pub(crate) fn raise(
        &self,
        topic: &'static str,
        payload: Payload,
        correlation: Option<u64>,
    ) -> Result<(), Error> {
        let shard = self.inner.shard_of(correlation.unwrap_or(0));
        let cmd = EventCommand::Raise {
            topic,
            payload,
            correlation,
        };
        self.inner.send(shard, cmd, SendWait::Timeout)
    }

    /// Events from every shard's history that match `query`, oldest first (by
    /// timestamp, then shard and sequence); at most `query.limit` (the newest) if set.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<Event>, EventError> {
        self.inner.check_open()?;
        let pattern = query.pattern.as_deref().map(Pattern::parse).transpose()?;
        let tickets: Vec<_> = (0..self.inner.ports.len())
            .map(|shard| {
                let pattern = pattern.clone();
                let query = query.clone();
                self.inner.call(shard, |reply| EventCommand::History {
                    pattern,
                    query,
                    reply,
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tickets {
            all.extend(t.wait()?);
        }
        all.sort_by_key(|e| (e.timestamp, e.shard, e.seq));
        if query.limit > 0 && all.len() > query.limit {
            all.drain(..all.len() - query.limit);
        }
        Ok(all)
    }

    /// Subscriptions alive now.
    pub fn subscriptions(&self) -> u64 {
        self.inner.events.live.load(Ordering::Relaxed)
    }
}
