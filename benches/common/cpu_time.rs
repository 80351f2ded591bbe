//! Threads' on-CPU time, read from Linux's scheduler statistics, so a bench can say how
//! much of the machine each role of a run (readers, writer, shards) actually got.
//!
//! The source is `/proc/<task>/schedstat`, whose first field is the nanoseconds the task
//! has spent running on a CPU (the scheduler's own accounting, not sampled ticks). Every
//! function returns `None` where that file is missing (another OS, or a kernel built
//! without `CONFIG_SCHED_INFO`); the benches then print no CPU figures.

use std::time::Duration;

/// The on-CPU time of the calling thread so far.
pub fn this_thread() -> Option<Duration> {
    schedstat("/proc/thread-self/schedstat")
}

/// On-CPU time so far of the process's long-lived helper threads, by role: summed over
/// the threads whose name starts with `mabeam-shard` (the engine's shards) and over those
/// named `bench-writer` (the bench's writer). Threads that have exited are not counted,
/// so take both readings of a span while the same threads run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Roles {
    /// The engine's shard threads.
    pub shards: Duration,
    /// The bench's writer thread.
    pub writer: Duration,
}

impl Roles {
    /// Reads every thread of this process.
    pub fn now() -> Option<Self> {
        let mut roles = Self::default();
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = task.ok()?.path();
            let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
                continue; // the thread exited between the listing and the read
            };
            let role = if name.starts_with("mabeam-shard") {
                &mut roles.shards
            } else if name.trim_end() == "bench-writer" {
                &mut roles.writer
            } else {
                continue;
            };
            match schedstat(dir.join("schedstat")) {
                Some(t) => *role += t,
                // The thread is there but its statistics are not: no figure at all
                // rather than one that leaves it out.
                None if dir.exists() => return None,
                None => {} // the thread exited after its name was read
            }
        }
        Some(roles)
    }

    /// The time each role ran between `earlier` and `self` (zero for a role whose
    /// threads were replaced in between).
    pub fn since(self, earlier: Self) -> Self {
        Self {
            shards: self.shards.saturating_sub(earlier.shards),
            writer: self.writer.saturating_sub(earlier.writer),
        }
    }
}

/// The first field of a `schedstat` file: on-CPU nanoseconds.
fn schedstat(path: impl AsRef<std::path::Path>) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let nanos = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(nanos))
}
