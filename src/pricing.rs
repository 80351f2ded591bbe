//! Pricing: the original's models (optimal price, dynamic price) computed on the task
//! pool, never on a shard, and cached.
//!
//! A result is cached on the shard that owns the hash of its input; `cached` reads that
//! snapshot without a message. Each shard caches at most
//! `Config::economics.pricing_cache` results and evicts the oldest beyond that. A cache
//! record also holds a second, independent hash of the input, so two inputs whose first
//! hashes collide never read each other's result.

use std::sync::Arc;

pub use mabeam_shards::pricing::{
    input_hash, Pricing, PricingError, PricingField, PricingInput, Trend, MAX_RECENT_PRICES,
};
use mabeam_shards::registry::mix64;

use crate::economics::{decode_pricing, EconomicsCommand};
use crate::engine::Inner;
use crate::runtime::Ticket;
use crate::telemetry::ops::read;
use crate::Error;

/// A second hash of the input, independent of [`input_hash`]: a different basis and
/// multiplier, finished by a mix.
fn check_hash(input: &PricingInput) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut eat = |x: f64| {
        let bits = if x == 0.0 { 0 } else { x.to_bits() };
        h = (h ^ bits)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9)
            .rotate_left(29);
    };
    eat(input.recent_prices.len() as f64);
    for &p in &input.recent_prices {
        eat(p);
    }
    eat(input.demand);
    eat(input.supply);
    eat(input.base_price);
    mix64(h)
}

/// The pricer of an engine: pricing computed on the task pool, and its cache; get it
/// with [`Engine::pricing`](crate::EngineHandle::pricing).
///
/// ```
/// use mabeam::pricing::{PricingInput, Trend};
/// let engine = mabeam::Engine::start(mabeam::Config::default().with_shards(2).with_pin_threads(false))?;
/// let input = PricingInput { recent_prices: vec![100.0, 105.0, 112.0], demand: 3.0, supply: 2.0, base_price: 10.0 };
/// let p = engine.pricing().calculate(&input).wait()??;
/// assert_eq!(p.trend, Trend::Rising);
/// assert_eq!(p.dynamic_price, 15.0);
/// assert_eq!(engine.pricing().cached(&input)?, Some(p)); // cached before the ticket resolved
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct Pricer<'e> {
    inner: &'e Arc<Inner>,
}

/// The former name of [`Pricer`].
#[deprecated(note = "renamed to `Pricer`, like the other handles (`Registry`, `Market`, …)")]
pub type PricingService<'e> = Pricer<'e>;

impl std::fmt::Debug for Pricer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.debug_handle("Pricer", f)
    }
}

impl<'e> Pricer<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Computes the pricing of `input` on the task pool and caches it; the ticket
    /// resolves once the result is cached. NaN, infinite, negative or empty input, and
    /// zero supply, are refused here without using the pool. A model that panics
    /// resolves with the outer `Err(Error::Internal)` (and is counted by the pool).
    pub fn calculate(&self, input: &PricingInput) -> Ticket<Result<Pricing, PricingError>> {
        if let Err(e) = input.validate() {
            return self.inner.ready(Ok(Err(e)));
        }
        if let Err(e) = self.inner.check_open() {
            return self.inner.ready(Err(e));
        }
        let (mut ticket, reply) = self.inner.rt.ticket();
        self.inner
            .rt
            .time_ticket(&mut ticket, crate::telemetry::ops::PRICING_CALCULATE);
        let inner = self.inner.clone();
        let input = input.clone();
        let key = input_hash(&input);
        let check = check_hash(&input);
        self.inner.tasks.submit(
            reply,
            move || mabeam_shards::pricing::calculate(&input),
            move |result, reply| match result {
                Ok(Ok(pricing)) => {
                    let shard = inner.shard_of(key);
                    let put = EconomicsCommand::PricingPut {
                        key,
                        check,
                        pricing,
                        reply,
                    };
                    // The shard answers the ticket once the result is cached; a refused
                    // send drops the command, which resolves it with the refusal.
                    let _ = inner.rt.send_call(shard, put.into());
                }
                Ok(Err(e)) => reply.send(Ok(Err(e))),
                // An engine failure: the ticket's outer error (see the crate docs).
                Err(_panic) => reply.send(Err(Error::Internal("the pricing model panicked"))),
            },
        );
        ticket
    }

    /// The cached pricing of `input`, `None` if it was never calculated or was evicted:
    /// a snapshot read, no message.
    #[inline]
    pub fn cached(&self, input: &PricingInput) -> Result<Option<Pricing>, Error> {
        let key = input_hash(input);
        let check = check_hash(input);
        let shard = self.inner.shard_of(key);
        self.inner.rt.check_readable(shard)?;
        self.inner.read(read::PRICING_CACHED);
        if self.inner.centralized() {
            return self.inner.round_trip(|reply| EconomicsCommand::PricingGet {
                key,
                check,
                reply,
            });
        }
        let port = &self.inner.ports[shard].economics;
        Ok(port
            .pricing
            .get(key)
            .and_then(|w| decode_pricing(check, &w)))
    }
}
