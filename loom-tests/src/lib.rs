//! Loom models of mabeam's shared-memory primitives.
//!
//! The models live in `tests/`; they compile to nothing unless built with
//! `RUSTFLAGS="--cfg mabeam_loom"`, which also switches `mabeam-shards` to loom's atomics:
//!
//! ```text
//! RUSTFLAGS="--cfg mabeam_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p mabeam-loom-tests
//! ```

/// Model-checks `f` with loom, exploring executions with at most `preemption_bound`
/// preemptions (2–3 keep every model here well under a minute).
#[cfg(mabeam_loom)]
pub fn model(preemption_bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.check(f);
}
