//! The state file: a compact, versioned binary encoding of an [`EngineState`], written
//! and read by hand (little-endian, no dependency).
//!
//! # Layout
//!
//! ```text
//! magic    8 bytes  b"MABEAMST"
//! version  u32      FORMAT_VERSION
//! length   u64      bytes of the body
//! body     length bytes (below)
//! checksum u64      FNV-1a 64 of version, length and body
//! ```
//!
//! The body is the state's fields in declaration order: integers little-endian, `bool`
//! and enum tags one byte, `Option` a tag byte (0 none, 1 some) then the value, strings
//! and lists a `u32` count then the items, `f64` its IEEE bits.
//!
//! # What reading guarantees
//!
//! A truncated, corrupted or foreign file is refused with a [`StateFileError`], never a
//! panic: the magic and version are checked first, the checksum before the body is
//! decoded (FNV-1a changes under any single-byte substitution), and the decoder checks
//! every tag, every length against the bytes that are left, and every value against its
//! type's rules. No length read off the file allocates more than the bytes actually
//! present: lists are allocated at most `remaining / smallest item` up front, and
//! reading from an [`io::Read`] grows its buffer only with the bytes that arrive.
//! Semantic checks (bounds, duplicates, rules of each record) are the restore's
//! ([`RestoreError`](super::RestoreError)).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

use mabeam_shards::agents::{AgentState, AgentStatus};
use mabeam_shards::auction::{
    AuctionId, AuctionKind, AuctionParts, AuctionSpec, AuctionState, Award, Bid, BidsParts,
    CloseCause, NoWinnerReason, Outcome, Settlement,
};
use mabeam_shards::coordination::{Completion, Protocol, SessionParts, SessionState};
use mabeam_shards::market::MarketState;
use mabeam_shards::pricing::{Pricing, Trend};
use mabeam_shards::registry::Health;

use super::{
    AgentRecord, BarrierRecord, EngineState, EventPayload, EventRecord, MarketRecord,
    PricingRecord, RegistryRecord,
};

/// The first eight bytes of a state file.
pub const MAGIC: [u8; 8] = *b"MABEAMST";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the body: magic, version, length.
const HEADER: usize = 8 + 4 + 8;

/// Why a state file was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateFileError {
    /// The file ends before its header, body or checksum does.
    Truncated,
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// The file is of a format version this crate does not read.
    UnknownVersion {
        /// The version found.
        found: u32,
    },
    /// The checksum does not match the contents.
    Checksum,
    /// The body does not decode (the checksum matched: a file written wrong).
    Corrupt {
        /// What did not decode.
        what: &'static str,
    },
    /// Reading or writing failed.
    Io(io::Error),
}

impl fmt::Display for StateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the state file is truncated"),
            Self::BadMagic => f.write_str("not a mabeam state file (bad magic number)"),
            Self::UnknownVersion { found } => write!(
                f,
                "state file format version {found}, this build reads {FORMAT_VERSION}"
            ),
            Self::Checksum => f.write_str("the state file's checksum does not match"),
            Self::Corrupt { what } => write!(f, "the state file is corrupt: {what}"),
            Self::Io(e) => write!(f, "state file i/o: {e}"),
        }
    }
}

impl std::error::Error for StateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StateFileError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl EngineState {
    /// The state as a state file's bytes (see the [module docs](self)).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut body = Enc(Vec::new());
        self.encode(&mut body);
        let body = body.0;
        let mut out = Vec::with_capacity(HEADER + body.len() + 8);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        let sum = fnv1a(&out[8..]);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Decodes a state file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<EngineState, StateFileError> {
        let len = check_header(bytes)?;
        let total = HEADER
            .checked_add(len)
            .and_then(|n| n.checked_add(8))
            .ok_or(StateFileError::Truncated)?;
        if bytes.len() < total {
            return Err(StateFileError::Truncated);
        }
        if bytes.len() > total {
            return Err(StateFileError::Corrupt {
                what: "bytes after the checksum",
            });
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&bytes[HEADER + len..total]);
        if fnv1a(&bytes[8..HEADER + len]) != u64::from_le_bytes(sum) {
            return Err(StateFileError::Checksum);
        }
        let mut dec = Dec {
            bytes: &bytes[HEADER..HEADER + len],
        };
        let state = EngineState::decode(&mut dec)?;
        if !dec.bytes.is_empty() {
            return Err(StateFileError::Corrupt {
                what: "bytes after the state",
            });
        }
        Ok(state)
    }

    /// Writes the state file to `w`.
    pub fn write(&self, w: &mut impl Write) -> Result<(), StateFileError> {
        w.write_all(&self.to_bytes())?;
        Ok(())
    }

    /// Reads a state file from `r` (to its end).
    pub fn read(r: &mut impl Read) -> Result<EngineState, StateFileError> {
        let mut header = Vec::with_capacity(HEADER);
        r.by_ref().take(HEADER as u64).read_to_end(&mut header)?;
        let len = check_header(&header)?;
        // Grows only with the bytes that arrive: a huge length field costs nothing.
        let mut rest = Vec::new();
        r.by_ref()
            .take((len as u64).saturating_add(9))
            .read_to_end(&mut rest)?;
        header.extend_from_slice(&rest);
        EngineState::from_bytes(&header)
    }

    /// Writes the state file at `path` (created or truncated).
    pub fn write_to(&self, path: impl AsRef<Path>) -> Result<(), StateFileError> {
        let mut f = io::BufWriter::new(std::fs::File::create(path)?);
        self.write(&mut f)?;
        f.flush()?;
        Ok(())
    }

    /// Reads the state file at `path`.
    pub fn read_from(path: impl AsRef<Path>) -> Result<EngineState, StateFileError> {
        let mut f = io::BufReader::new(std::fs::File::open(path)?);
        EngineState::read(&mut f)
    }
}

/// Checks magic and version; returns the body length.
fn check_header(bytes: &[u8]) -> Result<usize, StateFileError> {
    if bytes.len() < 8 {
        return if MAGIC.starts_with(bytes) {
            Err(StateFileError::Truncated)
        } else {
            Err(StateFileError::BadMagic)
        };
    }
    if bytes[..8] != MAGIC {
        return Err(StateFileError::BadMagic);
    }
    if bytes.len() < HEADER {
        return Err(StateFileError::Truncated);
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[8..12]);
    let found = u32::from_le_bytes(v);
    if found != FORMAT_VERSION {
        return Err(StateFileError::UnknownVersion { found });
    }
    let mut l = [0u8; 8];
    l.copy_from_slice(&bytes[12..20]);
    usize::try_from(u64::from_le_bytes(l)).map_err(|_| StateFileError::Truncated)
}

// ---------------------------------------------------------------------------------------
// The encoder and decoder.

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn len(&mut self, n: usize) {
        // Every list in a state is far below 2^32 (its bounds are configured counts).
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
    fn list<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.len(v.len());
        for x in v {
            f(self, x);
        }
    }
}

type R<T> = Result<T, StateFileError>;

fn corrupt<T>(what: &'static str) -> R<T> {
    Err(StateFileError::Corrupt { what })
}

struct Dec<'a> {
    bytes: &'a [u8],
}

impl Dec<'_> {
    fn take(&mut self, n: usize) -> R<&[u8]> {
        if self.bytes.len() < n {
            return corrupt("a field runs past the end of the body");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> R<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> R<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }
    fn f64(&mut self) -> R<f64> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn len(&mut self, min_size: usize) -> R<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size.max(1)) > self.bytes.len() {
            return corrupt("a length beyond the bytes left");
        }
        Ok(n)
    }
    fn bytes(&mut self) -> R<Vec<u8>> {
        let n = self.len(1)?;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> R<String> {
        String::from_utf8(self.bytes()?).or_else(|_| corrupt("a string that is not UTF-8"))
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => corrupt("an option tag other than 0 or 1"),
        }
    }
    fn list<T>(&mut self, min_size: usize, mut f: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        let n = self.len(min_size)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// The state's parts.

impl EngineState {
    fn encode(&self, e: &mut Enc) {
        e.u64(self.taken_at);
        e.list(&self.capabilities, |e, c| e.str(c));
        e.list(&self.registry, |e, r| {
            e.str(&r.name);
            e.u64(r.handle);
            e.list(&r.capabilities, |e, &c| e.u16(c));
            e.u8(r.health.code() as u8);
            e.u64(r.load);
            e.u32(r.node);
        });
        e.list(&self.agents, |e, a| {
            e.u64(a.id);
            agent_state(e, &a.state);
            e.opt(&a.coordination, |e, &c| e.u64(c));
            e.u64(a.version);
            e.u64(a.updated_at);
            e.u32(a.sessions);
            e.u8(agent_status_code(a.saved));
        });
        e.list(&self.auctions, auction);
        e.list(&self.auction_sequences, |e, &s| e.u64(s));
        e.list(&self.markets, |e, m| {
            market_state(e, &m.state);
            e.list(&m.window, |e, &(at, price, volume)| {
                e.u64(at);
                e.u64(price);
                e.u64(volume);
            });
        });
        e.list(&self.pricing, |e, p| {
            e.u64(p.key);
            e.u64(p.check);
            e.f64(p.pricing.optimal_price);
            e.f64(p.pricing.confidence);
            e.u8(match p.pricing.trend {
                Trend::Flat => 0,
                Trend::Rising => 1,
                Trend::Falling => 2,
            });
            e.f64(p.pricing.dynamic_price);
        });
        e.list(&self.sessions, session);
        e.u64(self.session_sequence);
        e.list(&self.barriers, |e, b| {
            e.u64(b.id);
            e.u32(b.parties);
            e.u64(b.generation);
        });
        e.list(&self.events, event);
        e.list(&self.event_sequences, |e, &s| e.u64(s));
    }

    fn decode(d: &mut Dec<'_>) -> R<EngineState> {
        Ok(EngineState {
            taken_at: d.u64()?,
            capabilities: d.list(4, Dec::string)?,
            registry: d.list(4 + 8 + 4 + 1 + 8 + 4, |d| {
                Ok(RegistryRecord {
                    name: d.string()?,
                    handle: d.u64()?,
                    capabilities: d.list(2, Dec::u16)?,
                    health: Health::from_code(u64::from(d.u8()?))
                        .map_or_else(|| corrupt("unknown health"), Ok)?,
                    load: d.u64()?,
                    node: d.u32()?,
                })
            })?,
            agents: d.list(8, |d| {
                Ok(AgentRecord {
                    id: d.u64()?,
                    state: read_agent_state(d)?,
                    coordination: d.opt(Dec::u64)?,
                    version: d.u64()?,
                    updated_at: d.u64()?,
                    sessions: d.u32()?,
                    saved: read_agent_status(d)?,
                })
            })?,
            auctions: d.list(8, read_auction)?,
            auction_sequences: d.list(8, Dec::u64)?,
            markets: d.list(64, |d| {
                Ok(MarketRecord {
                    state: read_market_state(d)?,
                    window: d.list(24, |d| Ok((d.u64()?, d.u64()?, d.u64()?)))?,
                })
            })?,
            pricing: d.list(41, |d| {
                Ok(PricingRecord {
                    key: d.u64()?,
                    check: d.u64()?,
                    pricing: {
                        let optimal_price = d.f64()?;
                        let confidence = d.f64()?;
                        let trend = match d.u8()? {
                            0 => Trend::Flat,
                            1 => Trend::Rising,
                            2 => Trend::Falling,
                            _ => return corrupt("unknown trend"),
                        };
                        Pricing {
                            optimal_price,
                            confidence,
                            trend,
                            dynamic_price: d.f64()?,
                        }
                    },
                })
            })?,
            sessions: d.list(8, read_session)?,
            session_sequence: d.u64()?,
            barriers: d.list(20, |d| {
                Ok(BarrierRecord {
                    id: d.u64()?,
                    parties: d.u32()?,
                    generation: d.u64()?,
                })
            })?,
            events: d.list(2 + 8 + 4 + 8 + 1 + 1, read_event)?,
            event_sequences: d.list(8, Dec::u64)?,
        })
    }
}

fn agent_status_code(s: AgentStatus) -> u8 {
    match s {
        AgentStatus::Idle => 0,
        AgentStatus::Busy => 1,
        AgentStatus::Coordinating => 2,
        AgentStatus::Offline => 3,
    }
}

fn read_agent_status(d: &mut Dec<'_>) -> R<AgentStatus> {
    match d.u8()? {
        0 => Ok(AgentStatus::Idle),
        1 => Ok(AgentStatus::Busy),
        2 => Ok(AgentStatus::Coordinating),
        3 => Ok(AgentStatus::Offline),
        _ => corrupt("unknown agent status"),
    }
}

fn agent_state(e: &mut Enc, s: &AgentState) {
    e.u8(agent_status_code(s.status));
    e.u64(s.load);
    e.u64(s.tasks_completed);
    for &w in &s.data {
        e.u64(w);
    }
}

fn read_agent_state(d: &mut Dec<'_>) -> R<AgentState> {
    Ok(AgentState {
        status: read_agent_status(d)?,
        load: d.u64()?,
        tasks_completed: d.u64()?,
        data: [d.u64()?, d.u64()?, d.u64()?, d.u64()?],
    })
}

fn market_state(e: &mut Enc, s: &MarketState) {
    for w in [
        s.key,
        s.last_price,
        s.vwap,
        s.window_volume,
        s.window_points,
        s.total_volume,
        s.update_count,
        s.updated_at,
    ] {
        e.u64(w);
    }
}

fn read_market_state(d: &mut Dec<'_>) -> R<MarketState> {
    Ok(MarketState {
        key: d.u64()?,
        last_price: d.u64()?,
        vwap: d.u64()?,
        window_volume: d.u64()?,
        window_points: d.u64()?,
        total_volume: d.u64()?,
        update_count: d.u64()?,
        updated_at: d.u64()?,
    })
}

fn auction(e: &mut Enc, a: &AuctionParts) {
    e.u64(a.id.to_raw());
    spec(e, &a.spec);
    e.u64(a.created_at);
    e.u8(a.state as u8);
    e.u32(a.bid_count);
    match &a.bids {
        BidsParts::OpenCry { leader } => {
            e.u8(0);
            e.opt(leader, |e, &(b, x)| {
                e.u64(b);
                e.u64(x);
            });
        }
        BidsParts::Sealed {
            bidders,
            best,
            second,
        } => {
            e.u8(1);
            e.list(bidders, |e, &b| e.u64(b));
            e.opt(best, |e, &(b, x)| {
                e.u64(b);
                e.u64(x);
            });
            e.opt(second, |e, &x| e.u64(x));
        }
        BidsParts::Combinatorial { bids } => {
            e.u8(2);
            e.list(bids, |e, b| {
                e.u64(b.bidder);
                e.u64(b.amount);
                e.u64(b.bundle);
            });
        }
    }
    e.opt(&a.ended_at, |e, &t| e.u64(t));
    e.opt(&a.outcome, outcome);
}

fn read_auction(d: &mut Dec<'_>) -> R<AuctionParts> {
    let id = d.u64()?;
    let spec = read_spec(d)?;
    let created_at = d.u64()?;
    let state =
        AuctionState::from_code(d.u8()?).map_or_else(|| corrupt("unknown auction state"), Ok)?;
    let bid_count = d.u32()?;
    let pair = |d: &mut Dec<'_>| Ok((d.u64()?, d.u64()?));
    let bids = match d.u8()? {
        0 => BidsParts::OpenCry {
            leader: d.opt(pair)?,
        },
        1 => BidsParts::Sealed {
            bidders: d.list(8, Dec::u64)?,
            best: d.opt(pair)?,
            second: d.opt(Dec::u64)?,
        },
        2 => BidsParts::Combinatorial {
            bids: d.list(24, |d| {
                Ok(Bid {
                    bidder: d.u64()?,
                    amount: d.u64()?,
                    bundle: d.u64()?,
                })
            })?,
        },
        _ => return corrupt("unknown bids tag"),
    };
    Ok(AuctionParts {
        id: AuctionId::from_raw(id),
        spec,
        created_at,
        state,
        bid_count,
        bids,
        ended_at: d.opt(Dec::u64)?,
        outcome: d.opt(read_outcome)?,
    })
}

fn spec(e: &mut Enc, s: &AuctionSpec) {
    match s.kind {
        AuctionKind::English {
            reserve,
            min_increment,
        } => {
            e.u8(0);
            e.u64(reserve);
            e.u64(min_increment);
        }
        AuctionKind::Dutch {
            start,
            step,
            tick_nanos,
            reserve,
        } => {
            e.u8(1);
            e.u64(start);
            e.u64(step);
            e.u64(tick_nanos);
            e.u64(reserve);
        }
        AuctionKind::SealedFirstPrice { reserve } => {
            e.u8(2);
            e.u64(reserve);
        }
        AuctionKind::Vickrey { reserve } => {
            e.u8(3);
            e.u64(reserve);
        }
        AuctionKind::Combinatorial { items, reserve } => {
            e.u8(4);
            e.u8(items);
            e.u64(reserve);
        }
    }
    e.u64(s.seller);
    e.u32(s.category);
    e.opt(&s.deadline, |e, &t| e.u64(t));
    e.opt(&s.buy_now, |e, &x| e.u64(x));
}

fn read_spec(d: &mut Dec<'_>) -> R<AuctionSpec> {
    let kind = match d.u8()? {
        0 => AuctionKind::English {
            reserve: d.u64()?,
            min_increment: d.u64()?,
        },
        1 => AuctionKind::Dutch {
            start: d.u64()?,
            step: d.u64()?,
            tick_nanos: d.u64()?,
            reserve: d.u64()?,
        },
        2 => AuctionKind::SealedFirstPrice { reserve: d.u64()? },
        3 => AuctionKind::Vickrey { reserve: d.u64()? },
        4 => AuctionKind::Combinatorial {
            items: d.u8()?,
            reserve: d.u64()?,
        },
        _ => return corrupt("unknown auction kind"),
    };
    Ok(AuctionSpec {
        kind,
        seller: d.u64()?,
        category: d.u32()?,
        deadline: d.opt(Dec::u64)?,
        buy_now: d.opt(Dec::u64)?,
    })
}

fn award(e: &mut Enc, a: &Award) {
    e.u64(a.bidder);
    e.u64(a.bundle);
    e.u64(a.price);
}

fn read_award(d: &mut Dec<'_>) -> R<Award> {
    Ok(Award {
        bidder: d.u64()?,
        bundle: d.u64()?,
        price: d.u64()?,
    })
}

fn outcome(e: &mut Enc, o: &Outcome) {
    e.u64(o.auction.to_raw());
    e.u64(o.closed_at);
    e.u8(match o.cause {
        CloseCause::Closed => 0,
        CloseCause::Deadline => 1,
        CloseCause::BuyNow => 2,
        CloseCause::DutchPrice => 3,
    });
    match &o.settlement {
        Settlement::Sold(a) => {
            e.u8(0);
            award(e, a);
        }
        Settlement::Bundles { awards, total } => {
            e.u8(1);
            e.list(awards, award);
            e.u64(*total);
        }
        Settlement::NoWinner(reason) => {
            e.u8(2);
            e.u8(match reason {
                NoWinnerReason::NoBids => 0,
                NoWinnerReason::BelowReserve => 1,
            });
        }
    }
}

fn read_outcome(d: &mut Dec<'_>) -> R<Outcome> {
    let auction = d.u64()?;
    let closed_at = d.u64()?;
    let cause = match d.u8()? {
        0 => CloseCause::Closed,
        1 => CloseCause::Deadline,
        2 => CloseCause::BuyNow,
        3 => CloseCause::DutchPrice,
        _ => return corrupt("unknown close cause"),
    };
    let settlement = match d.u8()? {
        0 => Settlement::Sold(read_award(d)?),
        1 => Settlement::Bundles {
            awards: d.list(24, read_award)?,
            total: d.u64()?,
        },
        2 => Settlement::NoWinner(match d.u8()? {
            0 => NoWinnerReason::NoBids,
            1 => NoWinnerReason::BelowReserve,
            _ => return corrupt("unknown no-winner reason"),
        }),
        _ => return corrupt("unknown settlement"),
    };
    Ok(Outcome {
        auction: AuctionId::from_raw(auction),
        closed_at,
        cause,
        settlement,
    })
}

fn protocol(e: &mut Enc, p: Protocol) {
    match p {
        Protocol::AllAcknowledge => e.u8(0),
        Protocol::Majority => e.u8(1),
        Protocol::Unanimous => e.u8(2),
        Protocol::Threshold { fraction_permille } => {
            e.u8(3);
            e.u16(fraction_permille);
        }
    }
}

fn read_protocol(d: &mut Dec<'_>) -> R<Protocol> {
    Ok(match d.u8()? {
        0 => Protocol::AllAcknowledge,
        1 => Protocol::Majority,
        2 => Protocol::Unanimous,
        3 => Protocol::Threshold {
            fraction_permille: d.u16()?,
        },
        _ => return corrupt("unknown protocol"),
    })
}

fn session_state_code(s: SessionState) -> u8 {
    match s {
        SessionState::Collecting => 0,
        SessionState::Decided => 1,
        SessionState::NoDecision => 2,
        SessionState::TimedOut => 3,
    }
}

fn read_session_state(d: &mut Dec<'_>) -> R<SessionState> {
    Ok(match d.u8()? {
        0 => SessionState::Collecting,
        1 => SessionState::Decided,
        2 => SessionState::NoDecision,
        3 => SessionState::TimedOut,
        _ => return corrupt("unknown session state"),
    })
}

fn session(e: &mut Enc, s: &SessionParts) {
    e.u64(s.id);
    protocol(e, s.protocol);
    e.list(&s.participants, |e, &p| e.u64(p));
    e.bytes(&s.responses);
    e.list(&s.tally, |e, &(c, n)| {
        e.u32(c);
        e.u32(n);
    });
    e.opt(&s.top, |e, &t| e.u32(t));
    e.u8(session_state_code(s.state));
    e.opt(&s.decided, |e, &c| e.u32(c));
    e.u64(s.deadline);
    e.opt(&s.completed_at, |e, &t| e.u64(t));
}

fn read_session(d: &mut Dec<'_>) -> R<SessionParts> {
    Ok(SessionParts {
        id: d.u64()?,
        protocol: read_protocol(d)?,
        participants: d.list(8, Dec::u64)?,
        responses: d.bytes()?,
        tally: d.list(8, |d| Ok((d.u32()?, d.u32()?)))?,
        top: d.opt(Dec::u32)?,
        state: read_session_state(d)?,
        decided: d.opt(Dec::u32)?,
        deadline: d.u64()?,
        completed_at: d.opt(Dec::u64)?,
    })
}

fn event(e: &mut Enc, ev: &EventRecord) {
    e.u16(ev.shard);
    e.u64(ev.seq);
    e.str(&ev.topic);
    e.u64(ev.timestamp);
    e.opt(&ev.correlation, |e, &c| e.u64(c));
    match &ev.payload {
        EventPayload::Registered { name, handle } => {
            e.u8(0);
            e.str(name);
            e.u64(*handle);
        }
        EventPayload::Unregistered { name, handle } => {
            e.u8(1);
            e.str(name);
            e.u64(*handle);
        }
        EventPayload::AgentUpdated(words) => {
            e.u8(2);
            e.list(words, |e, &w| e.u64(w));
        }
        EventPayload::AuctionCreated(words) => {
            e.u8(3);
            e.list(words, |e, &w| e.u64(w));
        }
        EventPayload::AuctionBid {
            auction,
            bidder,
            amount,
        } => {
            e.u8(4);
            e.u64(*auction);
            e.u64(*bidder);
            e.opt(amount, |e, &x| e.u64(x));
        }
        EventPayload::AuctionClosed(o) => {
            e.u8(5);
            outcome(e, o);
        }
        EventPayload::AuctionCancelled { auction } => {
            e.u8(6);
            e.u64(*auction);
        }
        EventPayload::MarketUpdated(s) => {
            e.u8(7);
            market_state(e, s);
        }
        EventPayload::CoordinationInitiated {
            session,
            participants,
        } => {
            e.u8(8);
            e.u64(*session);
            e.u32(*participants);
        }
        EventPayload::CoordinationCompleted(c) => {
            e.u8(9);
            e.u64(c.session);
            protocol(e, c.protocol);
            e.u8(session_state_code(c.state));
            e.opt(&c.decided, |e, &x| e.u32(x));
            e.list(&c.votes, |e, &(a, b)| {
                e.u32(a);
                e.u32(b);
            });
            e.u32(c.participants);
            e.u32(c.responses);
            e.u64(c.at);
        }
        EventPayload::BarrierReached {
            barrier,
            generation,
        } => {
            e.u8(10);
            e.u64(*barrier);
            e.u64(*generation);
        }
        EventPayload::Host(bytes) => {
            e.u8(11);
            e.bytes(bytes);
        }
    }
}

fn read_event(d: &mut Dec<'_>) -> R<EventRecord> {
    let shard = d.u16()?;
    let seq = d.u64()?;
    let topic = d.string()?;
    let timestamp = d.u64()?;
    let correlation = d.opt(Dec::u64)?;
    let payload = match d.u8()? {
        0 => EventPayload::Registered {
            name: d.string()?,
            handle: d.u64()?,
        },
        1 => EventPayload::Unregistered {
            name: d.string()?,
            handle: d.u64()?,
        },
        2 => EventPayload::AgentUpdated(d.list(8, Dec::u64)?),
        3 => EventPayload::AuctionCreated(d.list(8, Dec::u64)?),
        4 => EventPayload::AuctionBid {
            auction: d.u64()?,
            bidder: d.u64()?,
            amount: d.opt(Dec::u64)?,
        },
        5 => EventPayload::AuctionClosed(read_outcome(d)?),
        6 => EventPayload::AuctionCancelled { auction: d.u64()? },
        7 => EventPayload::MarketUpdated(read_market_state(d)?),
        8 => EventPayload::CoordinationInitiated {
            session: d.u64()?,
            participants: d.u32()?,
        },
        9 => EventPayload::CoordinationCompleted(Completion {
            session: d.u64()?,
            protocol: read_protocol(d)?,
            state: read_session_state(d)?,
            decided: d.opt(Dec::u32)?,
            votes: d.list(8, |d| Ok((d.u32()?, d.u32()?)))?,
            participants: d.u32()?,
            responses: d.u32()?,
            at: d.u64()?,
        }),
        10 => EventPayload::BarrierReached {
            barrier: d.u64()?,
            generation: d.u64()?,
        },
        11 => EventPayload::Host(d.bytes()?),
        _ => return corrupt("unknown event payload"),
    };
    Ok(EventRecord {
        shard,
        seq,
        topic,
        timestamp,
        correlation,
        payload,
    })
}
