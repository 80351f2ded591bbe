//! mabeam: a thread-per-core shard engine.
#![warn(missing_docs)]
