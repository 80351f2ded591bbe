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
///
/// Panics if loom explored only one execution. Every model here runs threads that race,
/// so a single execution means loom checked no interleaving at all: it happens when a
/// spawned thread's first access is a load (a known loom limitation that stopped the
/// interner's reader model from exploring anything, so it passed with its ordering
/// weakened).
#[cfg(mabeam_loom)]
pub fn model(preemption_bound: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // A plain std counter: it lives outside loom's model and counts its executions.
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    let explored = executions.load(Ordering::Relaxed);
    assert!(
        explored > 1,
        "loom explored {explored} execution: the model checks no interleaving"
    );
}
