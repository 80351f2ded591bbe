//! Loom models of mabeam's shared-memory primitives.
//!
//! The models live in `tests/`; they compile to nothing unless built with
//! `RUSTFLAGS="--cfg mabeam_loom"`, which also switches `mabeam-shards` to loom's atomics:
//!
//! ```text
//! RUSTFLAGS="--cfg mabeam_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p mabeam-loom-tests
//! ```
