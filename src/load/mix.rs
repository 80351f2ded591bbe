//! The operation mix: which operations a client runs and how often (`--mix`).

use std::fmt;

/// One operation of the load test: the original concurrency test's four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an English auction and wait for its id (ticketed).
    CreateAuction,
    /// Bid on one of the client's recent auctions without waiting (`bid_nowait`, the
    /// original's `place_bid_async`).
    PlaceBid,
    /// Read a category's market state.
    GetMarketState,
    /// Read a cached pricing result.
    GetCachedPricing,
}

impl Op {
    /// Every operation, in table order.
    pub const ALL: [Op; 4] = [
        Op::CreateAuction,
        Op::PlaceBid,
        Op::GetMarketState,
        Op::GetCachedPricing,
    ];

    /// Position in [`Op::ALL`] (index of per-operation arrays).
    pub fn index(self) -> usize {
        match self {
            Op::CreateAuction => 0,
            Op::PlaceBid => 1,
            Op::GetMarketState => 2,
            Op::GetCachedPricing => 3,
        }
    }

    /// The name used by `--mix`, the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateAuction => "create_auction",
            Op::PlaceBid => "place_bid",
            Op::GetMarketState => "get_market_state",
            Op::GetCachedPricing => "get_cached_pricing",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// Why a `--mix` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MixError {
    /// The value is empty.
    Empty,
    /// An entry is not `name=weight`.
    NotAPair(String),
    /// An entry names no known operation.
    UnknownOperation(String),
    /// A weight is not a whole number in `0..=1000000`.
    BadWeight {
        /// The operation.
        op: &'static str,
        /// What was given.
        weight: String,
    },
    /// An operation is named twice.
    Duplicate(&'static str),
    /// Every weight is zero.
    AllZero,
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = Op::ALL.map(Op::name).join(", ");
        match self {
            MixError::Empty => write!(f, "the mix is empty; expected name=weight,…"),
            MixError::NotAPair(entry) => {
                write!(f, "mix entry {entry:?} is not name=weight")
            }
            MixError::UnknownOperation(name) => {
                write!(f, "unknown operation {name:?} in the mix (known: {known})")
            }
            MixError::BadWeight { op, weight } => write!(
                f,
                "weight {weight:?} of {op} is not a whole number from 0 to {MAX_WEIGHT}"
            ),
            MixError::Duplicate(op) => write!(f, "{op} appears twice in the mix"),
            MixError::AllZero => write!(f, "every weight in the mix is zero"),
        }
    }
}

impl std::error::Error for MixError {}

/// Largest weight `--mix` takes (keeps the sum far from overflow and typos visible).
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Relative weights of the four operations; an operation left out of `--mix` has
/// weight 0. At least one weight is positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 4],
}

impl Default for Mix {
    /// The original concurrency test's mix:
    /// `create_auction=1,place_bid=4,get_market_state=10,get_cached_pricing=2`.
    fn default() -> Self {
        Mix {
            weights: [1, 4, 10, 2],
        }
    }
}

impl Mix {
    /// Parses `name=weight,name=weight,…` (whitespace around items is ignored), e.g.
    /// `place_bid=3,get_market_state=1`: operations left out get weight 0.
    pub fn parse(text: &str) -> Result<Mix, MixError> {
        if text.trim().is_empty() {
            return Err(MixError::Empty);
        }
        let mut weights = [0u32; 4];
        let mut named = [false; 4];
        for entry in text.split(',') {
            let entry = entry.trim();
            let (name, weight) = entry
                .split_once('=')
                .ok_or_else(|| MixError::NotAPair(entry.to_string()))?;
            let op = Op::from_name(name.trim())
                .ok_or_else(|| MixError::UnknownOperation(name.trim().to_string()))?;
            let weight = weight.trim();
            let value = weight
                .parse::<u32>()
                .ok()
                .filter(|w| *w <= MAX_WEIGHT)
                .ok_or_else(|| MixError::BadWeight {
                    op: op.name(),
                    weight: weight.to_string(),
                })?;
            if std::mem::replace(&mut named[op.index()], true) {
                return Err(MixError::Duplicate(op.name()));
            }
            weights[op.index()] = value;
        }
        if weights.iter().all(|&w| w == 0) {
            return Err(MixError::AllZero);
        }
        Ok(Mix { weights })
    }

    /// The weight of `op`.
    pub fn weight(&self, op: Op) -> u32 {
        self.weights[op.index()]
    }

    fn total(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }

    /// The operation that a uniform random 64-bit number `r` picks: each operation with
    /// probability weight / total.
    pub fn pick(&self, r: u64) -> Op {
        let mut point = ((u128::from(r) * u128::from(self.total())) >> 64) as u64;
        for op in Op::ALL {
            let w = u64::from(self.weight(op));
            if point < w {
                return op;
            }
            point -= w;
        }
        unreachable!("point < total, and the weights sum to total")
    }
}

impl fmt::Display for Mix {
    /// The operations with a positive weight, in `--mix` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = Op::ALL
            .into_iter()
            .filter(|&op| self.weight(op) > 0)
            .map(|op| format!("{}={}", op.name(), self.weight(op)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_original_mix_and_round_trips() {
        let mix = Mix::default();
        assert_eq!(
            mix.to_string(),
            "create_auction=1,place_bid=4,get_market_state=10,get_cached_pricing=2"
        );
        assert_eq!(Mix::parse(&mix.to_string()), Ok(mix));
    }

    #[test]
    fn parses_a_partial_mix_with_spaces() {
        let mix = Mix::parse(" place_bid = 3 , get_market_state=1 ").unwrap();
        assert_eq!(mix.weight(Op::PlaceBid), 3);
        assert_eq!(mix.weight(Op::GetMarketState), 1);
        assert_eq!(mix.weight(Op::CreateAuction), 0);
        assert_eq!(mix.weight(Op::GetCachedPricing), 0);
        assert_eq!(mix.to_string(), "place_bid=3,get_market_state=1");
    }

    #[test]
    fn refuses_bad_mixes_with_the_reason() {
        assert_eq!(Mix::parse(""), Err(MixError::Empty));
        assert_eq!(
            Mix::parse("foo=1"),
            Err(MixError::UnknownOperation("foo".into()))
        );
        assert_eq!(
            Mix::parse("create_auction=x"),
            Err(MixError::BadWeight {
                op: "create_auction",
                weight: "x".into()
            })
        );
        assert_eq!(
            Mix::parse("create_auction=-1"),
            Err(MixError::BadWeight {
                op: "create_auction",
                weight: "-1".into()
            })
        );
        assert!(matches!(
            Mix::parse("place_bid=1000001"),
            Err(MixError::BadWeight { .. })
        ));
        assert_eq!(
            Mix::parse("place_bid"),
            Err(MixError::NotAPair("place_bid".into()))
        );
        assert_eq!(
            Mix::parse("place_bid=1,"),
            Err(MixError::NotAPair(String::new()))
        );
        assert_eq!(
            Mix::parse("place_bid=1,place_bid=2"),
            Err(MixError::Duplicate("place_bid"))
        );
        assert_eq!(
            Mix::parse("place_bid=0,create_auction=0"),
            Err(MixError::AllZero)
        );
        assert!(Mix::parse("foo=1").unwrap_err().to_string().contains("foo"));
    }

    #[test]
    fn pick_follows_the_weights() {
        let mix = Mix::default();
        // Sweep r evenly over the u64 range (rounded up, so each r lands in the slice
        // of i / steps): the picks split 1:4:10:2 exactly.
        let steps = 17_000u64;
        let mut counts = [0u64; 4];
        for i in 0..steps {
            let r = (u128::from(i) * (1u128 << 64)).div_ceil(u128::from(steps)) as u64;
            counts[mix.pick(r).index()] += 1;
        }
        assert_eq!(counts, [1000, 4000, 10_000, 2000]);
        assert_eq!(mix.pick(0), Op::CreateAuction);
        assert_eq!(mix.pick(u64::MAX), Op::GetCachedPricing);
    }

    #[test]
    fn pick_never_returns_a_zero_weight_operation() {
        let mix = Mix::parse("get_market_state=1,get_cached_pricing=0").unwrap();
        for r in [0, 1, u64::MAX / 2, u64::MAX] {
            assert_eq!(mix.pick(r), Op::GetMarketState);
        }
    }
}
