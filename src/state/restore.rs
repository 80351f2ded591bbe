//! Assembling an [`EngineState`] from the shards' exports, and re-partitioning one into
//! the shards of a new engine.
//!
//! Placement on restore (`n` shards): registry entries, agents, market keys and pricing
//! results go where their key hashes (as every write routes them); auctions and sessions
//! go to `prefix % n` (as [`shard_for_prefix`] routes their ids); events go to the
//! history of shard `shard % n`, in `(timestamp, shard, seq)` order, the order the
//! history query returns them in. Every bound is checked on the side before the shard
//! threads start, so a refused state starts nothing.

use mabeam_shards::agents::AgentSnapshot;
use mabeam_shards::auction::{AuctionParts, AuctionState};
use mabeam_shards::coordination::{SessionParts, SessionState};
use mabeam_shards::interner::Interner;
use mabeam_shards::registry::{CapabilitySet, Entry, Metadata, Name, MAX_CAPABILITIES, UNOWNED};

use super::{
    AgentRecord, EngineState, EventRecord, MarketRecord, PricingRecord, RegistryRecord,
    RestoreError,
};
use crate::engine::{Config, EngineShard};
use crate::runtime::{shard_for, shard_for_prefix};

/// Bits of a session id below its shard prefix.
const SESSION_SEQ_BITS: u32 = 48;

/// What one shard hands in to an export.
pub(crate) struct ShardExport {
    pub registry: Vec<Entry>,
    pub agents: Vec<AgentRecord>,
    pub auctions: Vec<AuctionParts>,
    pub next_auction_seq: u64,
    pub markets: Vec<MarketRecord>,
    pub pricing: Vec<PricingRecord>,
    pub sessions: Vec<SessionParts>,
    pub events: Vec<EventRecord>,
    pub event_seq: u64,
}

impl EngineShard {
    /// This shard's whole state (called frozen, by the export protocol).
    pub(crate) fn export_parts(&self) -> ShardExport {
        ShardExport {
            registry: self.registry.entries().map(|(e, _lease)| e).collect(),
            agents: self
                .agents
                .records()
                .map(|(s, sessions, saved)| AgentRecord {
                    id: s.id,
                    state: s.state,
                    coordination: s.coordination,
                    version: s.version,
                    updated_at: s.updated_at,
                    sessions,
                    saved,
                })
                .collect(),
            auctions: self.economics.export_auctions(),
            next_auction_seq: self.economics.next_seq(),
            markets: self.economics.export_markets(),
            pricing: self.economics.export_pricing(),
            sessions: self.coordination.export_sessions(),
            events: self.events.export_history(),
            event_seq: self.events.sequence(),
        }
    }
}

/// Host-side parts of an export.
pub(crate) struct HostExport {
    pub taken_at: u64,
    /// The name of each capability id (`None`: a free id).
    pub capabilities: Vec<Option<String>>,
    pub session_sequence: u64,
    pub barriers: Vec<super::BarrierRecord>,
    /// Sequences carried over from the state this engine was restored from.
    pub carried_auction_sequences: Vec<u64>,
    pub carried_event_sequences: Vec<u64>,
}

/// Merges the shards' exports into one state in canonical order.
pub(crate) fn assemble(shards: Vec<ShardExport>, host: HostExport) -> EngineState {
    // Capability ids are reused, so the interner's ids have holes: the state numbers the
    // names the entries hold densely, in id order.
    let mut used = CapabilitySet::EMPTY;
    for e in shards.iter().flat_map(|s| s.registry.iter()) {
        for id in e.metadata.capabilities.ids() {
            // Below MAX_CAPABILITIES: it comes out of a set.
            let _ = used.insert(id);
        }
    }
    let mut dense = vec![None; MAX_CAPABILITIES];
    let mut names = Vec::new();
    for id in used.ids() {
        if let Some(Some(name)) = host.capabilities.get(id) {
            dense[id] = u16::try_from(names.len()).ok();
            names.push(name.clone());
        }
    }
    let mut state = EngineState {
        taken_at: host.taken_at,
        capabilities: names,
        session_sequence: host.session_sequence,
        barriers: host.barriers,
        auction_sequences: host.carried_auction_sequences,
        event_sequences: host.carried_event_sequences,
        ..EngineState::default()
    };
    let raise = |v: &mut Vec<u64>, index: usize, value: u64| {
        if v.len() <= index {
            v.resize(index + 1, 0);
        }
        v[index] = v[index].max(value);
    };
    for (index, shard) in shards.into_iter().enumerate() {
        state
            .registry
            .extend(shard.registry.iter().map(|e| registry_record(e, &dense)));
        state.agents.extend(shard.agents);
        raise(&mut state.auction_sequences, index, shard.next_auction_seq);
        for a in &shard.auctions {
            let prefix = a.id.shard();
            raise(&mut state.auction_sequences, prefix, a.id.sequence() + 1);
        }
        state.auctions.extend(shard.auctions);
        state.markets.extend(shard.markets);
        state.pricing.extend(shard.pricing);
        state.sessions.extend(shard.sessions);
        raise(&mut state.event_sequences, index, shard.event_seq);
        state.events.extend(shard.events);
    }
    // Trailing zeros carry nothing: trimmed, so states of different shard counts compare
    // equal.
    while state.auction_sequences.last() == Some(&0) {
        state.auction_sequences.pop();
    }
    while state.event_sequences.last() == Some(&0) {
        state.event_sequences.pop();
    }
    state.registry.sort_by(|a, b| a.name.cmp(&b.name));
    state.agents.sort_by_key(|a| a.id);
    state.auctions.sort_by_key(|a| a.id);
    state.markets.sort_by_key(|m| m.state.key);
    state.pricing.sort_by_key(|p| p.key);
    state.sessions.sort_by_key(|s| s.id);
    state.barriers.sort_by_key(|b| b.id);
    state.events.sort_by_key(|e| (e.shard, e.seq));
    state
}

/// `e` as a record; `dense` maps its capability ids to the state's name indices.
fn registry_record(e: &Entry, dense: &[Option<u16>]) -> RegistryRecord {
    RegistryRecord {
        name: e.name.as_str().to_owned(),
        handle: e.handle,
        capabilities: e
            .metadata
            .capabilities
            .ids()
            .filter_map(|id| dense.get(id).copied().flatten())
            .collect(),
        health: e.metadata.health,
        load: e.metadata.load,
        node: e.metadata.node,
    }
}

fn invalid(part: &'static str) -> impl Fn(&'static str) -> RestoreError {
    move |reason| RestoreError::Invalid { part, reason }
}

fn over(field: &'static str, needed: usize, limit: usize) -> Result<(), RestoreError> {
    if needed > limit {
        Err(RestoreError::OverBound {
            field,
            needed,
            limit,
        })
    } else {
        Ok(())
    }
}

/// Counts per shard, for the bound checks.
fn per_shard(n: usize, shards: impl Iterator<Item = usize>) -> usize {
    let mut counts = vec![0usize; n];
    for s in shards {
        counts[s] += 1;
    }
    counts.into_iter().max().unwrap_or(0)
}

/// Checks every bound of `config` the state must fit into `n` shards.
pub(crate) fn check_bounds(
    config: &Config,
    state: &EngineState,
    n: usize,
) -> Result<(), RestoreError> {
    over(
        "capabilities (MAX_CAPABILITIES)",
        state.capabilities.len(),
        MAX_CAPABILITIES,
    )?;
    over(
        "registry_capacity",
        per_shard(
            n,
            state.registry.iter().map(|r| match Name::new(&r.name) {
                Ok(name) => shard_for(name.key(), n),
                Err(_) => 0,
            }),
        ),
        config.registry_capacity,
    )?;
    over(
        "agent_capacity",
        per_shard(n, state.agents.iter().map(|a| shard_for(a.id, n))),
        config.agent_capacity,
    )?;
    let auction_shard = |a: &AuctionParts| shard_for_prefix(a.id.shard() as u64, n);
    let limits = config.economics.auctions;
    over(
        "economics.auctions.max_open",
        per_shard(
            n,
            state
                .auctions
                .iter()
                .filter(|a| a.state == AuctionState::Open)
                .map(auction_shard),
        ),
        limits.max_open,
    )?;
    over(
        "economics.auctions.max_retained",
        per_shard(
            n,
            state
                .auctions
                .iter()
                .filter(|a| a.state != AuctionState::Open)
                .map(auction_shard),
        ),
        limits.max_retained,
    )?;
    over(
        "economics.market.max_keys",
        per_shard(n, state.markets.iter().map(|m| shard_for(m.state.key, n))),
        config.economics.market.max_keys,
    )?;
    over(
        "economics.pricing_cache",
        per_shard(n, state.pricing.iter().map(|p| shard_for(p.key, n))),
        config.economics.pricing_cache,
    )?;
    let session_shard = |s: &SessionParts| shard_for_prefix(s.id >> SESSION_SEQ_BITS, n);
    over(
        "coordination.max_open",
        state
            .sessions
            .iter()
            .filter(|s| s.state == SessionState::Collecting)
            .count(),
        config.coordination.max_open,
    )?;
    over(
        "coordination.retained",
        per_shard(
            n,
            state
                .sessions
                .iter()
                .filter(|s| s.state != SessionState::Collecting)
                .map(session_shard),
        ),
        config.coordination.retained,
    )?;
    over("max_barriers", state.barriers.len(), config.max_barriers)?;
    over(
        "events.history",
        per_shard(n, state.events.iter().map(|e| usize::from(e.shard) % n)),
        config.events.history,
    )?;
    Ok(())
}

/// Fills fresh shards (`shards[i]` is shard `i` of `n`) and the interner from `state`.
/// Only called after [`check_bounds`]; still refuses what breaks a record's own rules.
pub(crate) fn fill(
    shards: &mut [EngineShard],
    capabilities: &Interner,
    state: &EngineState,
) -> Result<(), RestoreError> {
    let n = shards.len();
    let now = state.taken_at;
    for (i, c) in state.capabilities.iter().enumerate() {
        if Name::new(c).is_err() {
            return Err(invalid("capabilities")("a name breaks the name rule"));
        }
        // A fresh interner names ids in order; each name holds one reference here,
        // given back below once the entries hold theirs.
        if capabilities.acquire(c) != Ok(i) {
            return Err(invalid("capabilities")("a name twice"));
        }
    }
    let held_by_restore = state.capabilities.len();
    for r in &state.registry {
        let bad = invalid("registry");
        let name = Name::new(&r.name).map_err(|_| bad("a name breaks the name rule"))?;
        let mut set = CapabilitySet::EMPTY;
        for &c in &r.capabilities {
            if usize::from(c) >= state.capabilities.len() {
                return Err(bad("a capability index beyond the names"));
            }
            set.insert(usize::from(c))
                .map_err(|_| bad("a capability index beyond MAX_CAPABILITIES"))?;
        }
        let entry = Entry {
            name,
            handle: r.handle,
            metadata: Metadata {
                capabilities: set,
                health: r.health,
                load: r.load,
                node: r.node,
            },
        };
        shards[shard_for(name.key(), n)]
            .registry
            .register(entry, UNOWNED)
            .map_err(|_| bad("a name twice (or a key collision)"))?;
        for id in set.ids() {
            // The entry's own reference (ids are the state's indices, named above).
            let _ = capabilities.acquire(&state.capabilities[id]);
        }
    }
    for id in 0..held_by_restore {
        capabilities.release(id); // names no entry holds are free again
    }
    for a in &state.agents {
        let bad = invalid("agents");
        if (a.sessions == 0) != a.coordination.is_none() {
            return Err(bad(
                "a session id without a session, or a session without its id",
            ));
        }
        let shard = &mut shards[shard_for(a.id, n)];
        if shard.agents.get(a.id).is_some() {
            return Err(bad("an id twice"));
        }
        shard
            .agents
            .restore_record(
                AgentSnapshot {
                    id: a.id,
                    state: a.state,
                    coordination: a.coordination,
                    version: a.version,
                    updated_at: a.updated_at,
                },
                a.sessions,
                a.saved,
            )
            .map_err(|_| bad("above agent_capacity"))?;
    }
    for shard in shards.iter_mut() {
        shard.agents.publish();
    }
    for a in &state.auctions {
        let shard = shard_for_prefix(a.id.shard() as u64, n);
        shards[shard]
            .economics
            .restore_auction(a.clone(), now)
            .map_err(invalid("auctions"))?;
    }
    for (prefix, &next) in state.auction_sequences.iter().enumerate() {
        if prefix < n {
            shards[prefix].economics.continue_after(next);
        }
    }
    for m in &state.markets {
        shards[shard_for(m.state.key, n)]
            .economics
            .restore_market(m)
            .map_err(invalid("markets"))?;
    }
    for p in &state.pricing {
        shards[shard_for(p.key, n)]
            .economics
            .restore_pricing(p)
            .map_err(invalid("pricing"))?;
    }
    let mut sessions: Vec<Vec<SessionParts>> = (0..n).map(|_| Vec::new()).collect();
    for s in &state.sessions {
        sessions[shard_for_prefix(s.id >> SESSION_SEQ_BITS, n)].push(s.clone());
    }
    for (shard, parts) in shards.iter_mut().zip(sessions) {
        shard
            .coordination
            .restore_sessions(parts)
            .map_err(invalid("sessions"))?;
    }
    let mut events: Vec<Vec<&EventRecord>> = (0..n).map(|_| Vec::new()).collect();
    for e in &state.events {
        events[usize::from(e.shard) % n].push(e);
    }
    for (shard, mut list) in shards.iter_mut().zip(events) {
        list.sort_by_key(|e| (e.timestamp, e.shard, e.seq));
        shard
            .events
            .restore_history(&list)
            .map_err(invalid("events"))?;
    }
    for (index, &seq) in state.event_sequences.iter().enumerate() {
        if index < n {
            shards[index].events.continue_after(seq);
        }
    }
    Ok(())
}

/// One more than the largest auction or session id prefix the state knows of.
pub(crate) fn id_prefixes(state: &EngineState) -> u64 {
    let auctions = state.auction_sequences.len() as u64;
    let max = state
        .auctions
        .iter()
        .map(|a| a.id.shard() as u64)
        .chain(state.sessions.iter().map(|s| s.id >> SESSION_SEQ_BITS))
        .max()
        .map_or(0, |p| p + 1);
    auctions.max(max)
}
