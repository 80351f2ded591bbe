//! Export and restore of one shard's event history.

use std::sync::Arc;

use mabeam_shards::agents::{AgentSnapshot, RECORD_WORDS as AGENT_WORDS};
use mabeam_shards::auction::{AuctionId, AuctionStatus, STATUS_WORDS};
use mabeam_shards::registry::Name;

use super::{payload_bytes, Event, EventSink, Payload, TopicName};
use crate::state::{EventPayload, EventRecord};

/// The topics services publish on (their events carry a static topic name; a restored
/// event on one of these gets it back, so restored and original events compare equal).
const SERVICE_TOPICS: &[&str] = &[
    "registry.registered",
    "registry.unregistered",
    "agent.state.updated",
    "auction.created",
    "auction.bid",
    "auction.closed",
    "auction.cancelled",
    "market.data.updated",
    "coordination.initiated",
    "coordination.completed",
    "coordination.barrier.reached",
];

fn payload_to_record(payload: &Payload) -> EventPayload {
    match payload {
        Payload::Registered { name, handle } => EventPayload::Registered {
            name: name.as_str().to_owned(),
            handle: *handle,
        },
        Payload::Unregistered { name, handle } => EventPayload::Unregistered {
            name: name.as_str().to_owned(),
            handle: *handle,
        },
        Payload::AgentUpdated(s) => EventPayload::AgentUpdated(s.to_words().to_vec()),
        Payload::AuctionCreated(s) => EventPayload::AuctionCreated(s.to_words().to_vec()),
        Payload::AuctionBid {
            auction,
            bidder,
            amount,
        } => EventPayload::AuctionBid {
            auction: auction.to_raw(),
            bidder: *bidder,
            amount: *amount,
        },
        Payload::AuctionClosed(o) => EventPayload::AuctionClosed(o.clone()),
        Payload::AuctionCancelled { auction } => EventPayload::AuctionCancelled {
            auction: auction.to_raw(),
        },
        Payload::MarketUpdated(s) => EventPayload::MarketUpdated(*s),
        Payload::CoordinationInitiated {
            session,
            participants,
        } => EventPayload::CoordinationInitiated {
            session: *session,
            participants: *participants,
        },
        Payload::CoordinationCompleted(c) => EventPayload::CoordinationCompleted(c.clone()),
        Payload::BarrierReached {
            barrier,
            generation,
        } => EventPayload::BarrierReached {
            barrier: *barrier,
            generation: *generation,
        },
        Payload::Host(bytes) => EventPayload::Host(bytes.to_vec()),
    }
}

fn record_to_payload(record: &EventPayload) -> Result<Payload, &'static str> {
    let name = |n: &str| Name::new(n).map_err(|_| "event name breaks the name rule");
    Ok(match record {
        EventPayload::Registered { name: n, handle } => Payload::Registered {
            name: name(n)?,
            handle: *handle,
        },
        EventPayload::Unregistered { name: n, handle } => Payload::Unregistered {
            name: name(n)?,
            handle: *handle,
        },
        EventPayload::AgentUpdated(words) => {
            let words: [u64; AGENT_WORDS] = words
                .as_slice()
                .try_into()
                .map_err(|_| "agent record of the wrong size")?;
            Payload::AgentUpdated(
                AgentSnapshot::from_words(&words).ok_or("agent record that does not decode")?,
            )
        }
        EventPayload::AuctionCreated(words) => {
            let words: [u64; STATUS_WORDS] = words
                .as_slice()
                .try_into()
                .map_err(|_| "auction status of the wrong size")?;
            Payload::AuctionCreated(
                AuctionStatus::from_words(&words).ok_or("auction status that does not decode")?,
            )
        }
        EventPayload::AuctionBid {
            auction,
            bidder,
            amount,
        } => Payload::AuctionBid {
            auction: AuctionId::from_raw(*auction),
            bidder: *bidder,
            amount: *amount,
        },
        EventPayload::AuctionClosed(o) => Payload::AuctionClosed(o.clone()),
        EventPayload::AuctionCancelled { auction } => Payload::AuctionCancelled {
            auction: AuctionId::from_raw(*auction),
        },
        EventPayload::MarketUpdated(s) => Payload::MarketUpdated(*s),
        EventPayload::CoordinationInitiated {
            session,
            participants,
        } => Payload::CoordinationInitiated {
            session: *session,
            participants: *participants,
        },
        EventPayload::CoordinationCompleted(c) => Payload::CoordinationCompleted(c.clone()),
        EventPayload::BarrierReached {
            barrier,
            generation,
        } => Payload::BarrierReached {
            barrier: *barrier,
            generation: *generation,
        },
        EventPayload::Host(bytes) => Payload::Host(Arc::from(bytes.as_slice())),
    })
}

impl EventSink {
    /// The history, oldest first, as plain data.
    pub(crate) fn export_history(&self) -> Vec<EventRecord> {
        self.history
            .iter()
            .map(|e| EventRecord {
                shard: e.shard,
                seq: e.seq,
                topic: e.topic.to_string(),
                timestamp: e.timestamp,
                correlation: e.correlation,
                payload: payload_to_record(&e.payload),
            })
            .collect()
    }

    /// The last sequence this shard handed out.
    pub(crate) fn sequence(&self) -> u64 {
        self.seq
    }

    /// Continues this shard's sequence after `seq` (never lower than it is).
    pub(crate) fn continue_after(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    /// Appends restored events (already in history order) within this shard's bounds.
    pub(crate) fn restore_history(&mut self, records: &[&EventRecord]) -> Result<(), &'static str> {
        if records.len() > self.history_cap {
            return Err("more events than events.history on one shard");
        }
        for r in records {
            let payload = record_to_payload(&r.payload)?;
            let size = payload_bytes(&payload);
            if self.history_bytes + size > self.history_bytes_cap {
                return Err("more event bytes than events.history_bytes on one shard");
            }
            let topic = match SERVICE_TOPICS.iter().find(|t| **t == r.topic) {
                Some(t) => TopicName::Static(t),
                None => TopicName::Shared(Arc::from(r.topic.as_str())),
            };
            self.history_bytes += size;
            self.history.push_back(Event {
                topic,
                shard: r.shard,
                seq: r.seq,
                timestamp: r.timestamp,
                correlation: r.correlation,
                payload,
            });
        }
        Ok(())
    }
}
