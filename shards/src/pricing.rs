//! Pricing models: pure functions of a [`PricingInput`], run on the engine's task pool
//! and cached under [`input_hash`].
//!
//! # Models
//!
//! One input feeds every model and [`calculate`] returns them all in one [`Pricing`]:
//!
//! - **Optimal price**: the mean of `recent_prices` (the recent transaction prices),
//!   computed as a running mean (`m += (x - m) / k`), which cannot overflow for finite
//!   non-negative prices.
//! - **Confidence**: `n / 50` for `n` recent prices, capped at 1.0 (50 prices or more
//!   give full confidence).
//! - **Trend**: the last recent price against the *first* (the movement over the
//!   sample, not against the mean, which a single outlier would move):
//!   [`Trend::Rising`] if `last >= first * 1.1`, [`Trend::Falling`] if
//!   `last <= first * 0.9`, else [`Trend::Flat`]. The test is done as
//!   `10 * (last - first) >= first` so that an exact 10 % move counts; with a first
//!   price of 0, any positive last price is rising; one price is flat.
//! - **Dynamic price**: `base_price * demand / supply`.
//!
//! # Validation
//!
//! Every field must be finite and non-negative, `recent_prices` must hold between 1
//! and [`MAX_RECENT_PRICES`] prices and `supply` must be positive; [`PricingError`]
//! names the field (and the index of a bad price). A finite input whose result is not
//! finite (a dynamic price beyond `f64::MAX`) is refused too
//! ([`PricingError::ResultNotFinite`]), so a [`Pricing`] is always finite.
//!
//! ```
//! use mabeam_shards::pricing::{calculate, PricingInput, Trend};
//!
//! let input = PricingInput {
//!     recent_prices: vec![100.0, 104.0, 112.0],
//!     demand: 30.0,
//!     supply: 20.0,
//!     base_price: 10.0,
//! };
//! let pricing = calculate(&input)?;
//! assert_eq!(pricing.optimal_price, 316.0 / 3.0);
//! assert_eq!(pricing.trend, Trend::Rising);
//! assert_eq!(pricing.dynamic_price, 15.0);
//! # Ok::<(), mabeam_shards::pricing::PricingError>(())
//! ```

use std::fmt;

/// Most recent prices an input may hold ([`PricingError::TooManyPrices`] beyond).
pub const MAX_RECENT_PRICES: usize = 4096;

/// Recent prices at which [`Pricing::confidence`] reaches 1.0.
pub const FULL_CONFIDENCE_PRICES: usize = 50;

/// What the pricing models read.
#[derive(Debug, Clone, PartialEq)]
pub struct PricingInput {
    /// Recent transaction prices, oldest first (1..=[`MAX_RECENT_PRICES`]).
    pub recent_prices: Vec<f64>,
    /// Demand (any non-negative finite quantity, same unit as `supply`).
    pub demand: f64,
    /// Supply (positive, finite).
    pub supply: f64,
    /// Base price the dynamic price scales (non-negative, finite).
    pub base_price: f64,
}

/// Direction of the recent prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Trend {
    /// Last price at least 10 % above the first.
    Rising,
    /// Last price at least 10 % below the first.
    Falling,
    /// Within 10 %.
    Flat,
}

/// What the pricing models computed; every number is finite.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pricing {
    /// Mean of the recent prices.
    pub optimal_price: f64,
    /// How much to trust `optimal_price`, in `0.0..=1.0`.
    pub confidence: f64,
    /// Direction of the recent prices.
    pub trend: Trend,
    /// `base_price * demand / supply`.
    pub dynamic_price: f64,
}

/// A field of [`PricingInput`] (or of [`Pricing`], for a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PricingField {
    /// `recent_prices[index]`.
    RecentPrice {
        /// Index of the price.
        index: usize,
    },
    /// `demand`.
    Demand,
    /// `supply`.
    Supply,
    /// `base_price`.
    BasePrice,
    /// The computed `optimal_price`.
    OptimalPrice,
    /// The computed `dynamic_price`.
    DynamicPrice,
}

impl fmt::Display for PricingField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PricingField::RecentPrice { index } => write!(f, "recent_prices[{index}]"),
            PricingField::Demand => f.write_str("demand"),
            PricingField::Supply => f.write_str("supply"),
            PricingField::BasePrice => f.write_str("base_price"),
            PricingField::OptimalPrice => f.write_str("optimal_price"),
            PricingField::DynamicPrice => f.write_str("dynamic_price"),
        }
    }
}

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PricingError {
    /// The field is NaN or infinite.
    NotFinite(PricingField),
    /// The field is negative.
    Negative(PricingField),
    /// `recent_prices` is empty.
    NoRecentPrices,
    /// `recent_prices` holds more than [`MAX_RECENT_PRICES`] prices.
    TooManyPrices {
        /// How many it holds.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// `supply` is zero.
    ZeroSupply,
    /// The inputs are valid but this result would not be finite.
    ResultNotFinite(PricingField),
    /// The engine could not carry out the call (shut down, busy, handler failure).
    Engine(crate::Error),
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PricingError::Engine(e) => e.fmt(f),
            PricingError::NotFinite(field) => write!(f, "{field} is NaN or infinite"),
            PricingError::Negative(field) => write!(f, "{field} is negative"),
            PricingError::NoRecentPrices => f.write_str("recent_prices is empty"),
            PricingError::TooManyPrices { len, limit } => {
                write!(f, "recent_prices holds {len} prices, more than {limit}")
            }
            PricingError::ZeroSupply => f.write_str("supply is zero"),
            PricingError::ResultNotFinite(field) => write!(f, "{field} would not be finite"),
        }
    }
}

impl std::error::Error for PricingError {}

fn check(value: f64, field: PricingField) -> Result<(), PricingError> {
    if !value.is_finite() {
        Err(PricingError::NotFinite(field))
    } else if value < 0.0 {
        Err(PricingError::Negative(field))
    } else {
        Ok(())
    }
}

impl PricingInput {
    /// Checks the input as [`calculate`] does (see the [module docs](self)); the first
    /// problem found, in field order, is reported.
    pub fn validate(&self) -> Result<(), PricingError> {
        let len = self.recent_prices.len();
        if len == 0 {
            return Err(PricingError::NoRecentPrices);
        }
        if len > MAX_RECENT_PRICES {
            return Err(PricingError::TooManyPrices {
                len,
                limit: MAX_RECENT_PRICES,
            });
        }
        for (index, &price) in self.recent_prices.iter().enumerate() {
            check(price, PricingField::RecentPrice { index })?;
        }
        check(self.demand, PricingField::Demand)?;
        check(self.supply, PricingField::Supply)?;
        if self.supply == 0.0 {
            return Err(PricingError::ZeroSupply);
        }
        check(self.base_price, PricingField::BasePrice)
    }
}

/// Runs every model on `input` (see the [module docs](self)).
pub fn calculate(input: &PricingInput) -> Result<Pricing, PricingError> {
    input.validate()?;
    let prices = &input.recent_prices;
    let mut mean = 0.0;
    for (k, &price) in prices.iter().enumerate() {
        mean += (price - mean) / (k + 1) as f64;
    }
    if !mean.is_finite() {
        return Err(PricingError::ResultNotFinite(PricingField::OptimalPrice));
    }
    let confidence = (prices.len() as f64 / FULL_CONFIDENCE_PRICES as f64).min(1.0);
    let dynamic_price = input.base_price * input.demand / input.supply;
    if !dynamic_price.is_finite() {
        return Err(PricingError::ResultNotFinite(PricingField::DynamicPrice));
    }
    Ok(Pricing {
        optimal_price: mean,
        confidence,
        trend: trend(prices),
        dynamic_price,
    })
}

/// The trend of validated (finite, non-negative, non-empty) prices: last against first.
fn trend(prices: &[f64]) -> Trend {
    let (Some(&first), Some(&last)) = (prices.first(), prices.last()) else {
        return Trend::Flat;
    };
    if last > first && 10.0 * (last - first) >= first {
        Trend::Rising
    } else if last < first && 10.0 * (first - last) >= first {
        Trend::Falling
    } else {
        Trend::Flat
    }
}

/// A stable 64-bit hash of an input, the key of the pricing cache.
///
/// FNV-1a (64-bit) over the little-endian bytes of: the number of recent prices, each
/// price's bits, then `demand`, `supply` and `base_price`'s bits. `-0.0` is hashed as
/// `0.0` (they compare equal and give the same [`Pricing`]); any NaN is hashed as the
/// canonical NaN (such an input is refused by [`calculate`] anyway). The value is the
/// same on every platform and every run, and does not validate the input.
///
/// ```
/// use mabeam_shards::pricing::{input_hash, PricingInput};
///
/// let a = PricingInput { recent_prices: vec![1.0, 2.0], demand: 0.0, supply: 1.0, base_price: 5.0 };
/// let b = PricingInput { demand: -0.0, ..a.clone() };
/// assert_eq!(input_hash(&a), input_hash(&b));
/// assert_ne!(input_hash(&a), input_hash(&PricingInput { base_price: 5.5, ..a.clone() }));
/// ```
pub fn input_hash(input: &PricingInput) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    fn mix(hash: u64, word: u64) -> u64 {
        word.to_le_bytes()
            .iter()
            .fold(hash, |h, &byte| (h ^ u64::from(byte)).wrapping_mul(PRIME))
    }
    fn bits(value: f64) -> u64 {
        if value == 0.0 {
            0 // both zeros
        } else if value.is_nan() {
            f64::NAN.to_bits()
        } else {
            value.to_bits()
        }
    }
    let mut hash = mix(OFFSET, input.recent_prices.len() as u64);
    for &price in &input.recent_prices {
        hash = mix(hash, bits(price));
    }
    hash = mix(hash, bits(input.demand));
    hash = mix(hash, bits(input.supply));
    mix(hash, bits(input.base_price))
}

impl From<crate::Error> for PricingError {
    fn from(e: crate::Error) -> Self {
        PricingError::Engine(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(prices: &[f64]) -> PricingInput {
        PricingInput {
            recent_prices: prices.to_vec(),
            demand: 10.0,
            supply: 4.0,
            base_price: 2.0,
        }
    }

    #[test]
    fn optimal_price_is_the_mean() {
        let p = calculate(&input(&[10.0, 20.0, 30.0])).unwrap();
        assert_eq!(p.optimal_price, 20.0);
        let p = calculate(&input(&[7.5])).unwrap();
        assert_eq!(p.optimal_price, 7.5);
        let big = calculate(&input(&[f64::MAX, f64::MAX, f64::MAX])).unwrap();
        assert_eq!(big.optimal_price, f64::MAX, "no overflow on huge prices");
        let many: Vec<f64> = (1..=1000).map(f64::from).collect();
        let p = calculate(&input(&many)).unwrap();
        assert!((p.optimal_price - 500.5).abs() < 1e-9);
    }

    #[test]
    fn confidence_grows_to_one_at_fifty_prices() {
        let c = |n: usize| calculate(&input(&vec![1.0; n])).unwrap().confidence;
        assert_eq!(c(1), 0.02);
        assert_eq!(c(25), 0.5);
        assert_eq!(c(50), 1.0);
        assert_eq!(c(MAX_RECENT_PRICES), 1.0);
    }

    #[test]
    fn trend_compares_last_with_first_at_ten_percent() {
        let t = |prices: &[f64]| calculate(&input(prices)).unwrap().trend;
        assert_eq!(t(&[100.0]), Trend::Flat);
        assert_eq!(t(&[100.0, 500.0, 110.0]), Trend::Rising); // exactly +10 %
        assert_eq!(t(&[100.0, 109.9]), Trend::Flat);
        assert_eq!(t(&[100.0, 0.0, 90.0]), Trend::Falling); // exactly -10 %
        assert_eq!(t(&[100.0, 90.1]), Trend::Flat);
        assert_eq!(t(&[0.0, 0.0]), Trend::Flat);
        assert_eq!(t(&[0.0, 0.01]), Trend::Rising);
        assert_eq!(t(&[5.0, 0.0]), Trend::Falling);
        assert_eq!(t(&[1.0, f64::MAX]), Trend::Rising);
    }

    #[test]
    fn dynamic_price_is_base_times_demand_over_supply() {
        assert_eq!(calculate(&input(&[1.0])).unwrap().dynamic_price, 5.0);
        let zero_demand = PricingInput {
            demand: 0.0,
            ..input(&[1.0])
        };
        assert_eq!(calculate(&zero_demand).unwrap().dynamic_price, 0.0);
        let huge = PricingInput {
            base_price: f64::MAX,
            demand: 4.0,
            supply: 2.0,
            ..input(&[1.0])
        };
        assert_eq!(
            calculate(&huge),
            Err(PricingError::ResultNotFinite(PricingField::DynamicPrice))
        );
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let ok = input(&[1.0, 2.0]);
        let cases = [
            (input(&[]), PricingError::NoRecentPrices),
            (
                input(&vec![1.0; MAX_RECENT_PRICES + 1]),
                PricingError::TooManyPrices {
                    len: MAX_RECENT_PRICES + 1,
                    limit: MAX_RECENT_PRICES,
                },
            ),
            (
                input(&[1.0, f64::NAN]),
                PricingError::NotFinite(PricingField::RecentPrice { index: 1 }),
            ),
            (
                input(&[f64::INFINITY]),
                PricingError::NotFinite(PricingField::RecentPrice { index: 0 }),
            ),
            (
                input(&[1.0, 2.0, -3.0]),
                PricingError::Negative(PricingField::RecentPrice { index: 2 }),
            ),
            (
                PricingInput {
                    demand: f64::NEG_INFINITY,
                    ..ok.clone()
                },
                PricingError::NotFinite(PricingField::Demand),
            ),
            (
                PricingInput {
                    demand: -1.0,
                    ..ok.clone()
                },
                PricingError::Negative(PricingField::Demand),
            ),
            (
                PricingInput {
                    supply: f64::NAN,
                    ..ok.clone()
                },
                PricingError::NotFinite(PricingField::Supply),
            ),
            (
                PricingInput {
                    supply: -2.0,
                    ..ok.clone()
                },
                PricingError::Negative(PricingField::Supply),
            ),
            (
                PricingInput {
                    supply: 0.0,
                    ..ok.clone()
                },
                PricingError::ZeroSupply,
            ),
            (
                PricingInput {
                    supply: -0.0,
                    ..ok.clone()
                },
                PricingError::ZeroSupply,
            ),
            (
                PricingInput {
                    base_price: f64::NAN,
                    ..ok.clone()
                },
                PricingError::NotFinite(PricingField::BasePrice),
            ),
            (
                PricingInput {
                    base_price: -0.5,
                    ..ok.clone()
                },
                PricingError::Negative(PricingField::BasePrice),
            ),
        ];
        for (bad, expected) in cases {
            assert_eq!(calculate(&bad), Err(expected), "{bad:?}");
        }
        assert_eq!(
            PricingError::Negative(PricingField::RecentPrice { index: 2 }).to_string(),
            "recent_prices[2] is negative"
        );
        assert_eq!(
            calculate(&input(&vec![3.0; MAX_RECENT_PRICES]))
                .unwrap()
                .optimal_price,
            3.0
        );
    }

    #[test]
    fn input_hash_is_stable_and_sensitive() {
        let a = input(&[1.0, 2.0, 3.0]);
        // A fixed value: the hash must not change between runs, builds or platforms.
        assert_eq!(input_hash(&a), input_hash(&a.clone()));
        assert_eq!(
            input_hash(&a),
            0x4c5e_39f7_76d0_dc9b,
            "got {:#x}",
            input_hash(&a)
        );
        let variants = [
            input(&[1.0, 2.0]),
            input(&[1.0, 2.0, 3.0, 0.0]),
            input(&[2.0, 1.0, 3.0]),
            PricingInput {
                demand: 10.5,
                ..a.clone()
            },
            PricingInput {
                supply: 4.5,
                ..a.clone()
            },
            PricingInput {
                base_price: 2.5,
                ..a.clone()
            },
            // Fields are not interchangeable.
            PricingInput {
                demand: 4.0,
                supply: 10.0,
                ..a.clone()
            },
        ];
        for v in &variants {
            assert_ne!(input_hash(v), input_hash(&a), "{v:?}");
        }
        let zero = input(&[0.0]);
        let negative_zero = input(&[-0.0]);
        assert_eq!(input_hash(&zero), input_hash(&negative_zero));
        assert_eq!(calculate(&zero), calculate(&negative_zero));
    }
}
