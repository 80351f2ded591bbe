//! On-CPU time of this process's threads, by name, from Linux's scheduler statistics:
//! the first field of `/proc/self/task/<tid>/schedstat` is the nanoseconds the thread has
//! spent on a CPU (the scheduler's own accounting, not sampled ticks).
//!
//! Dependency-free, so the load tool (its `cpu` module) and the `reads` bench (which
//! includes this file by path) read it the same way. Every function is `None` where the
//! files are missing (another OS, or a kernel without `CONFIG_SCHED_INFO`).

use std::path::Path;
use std::time::Duration;

/// On-CPU time so far of this process's threads, summed into `N` roles: `role(name)`
/// gives a thread's role from its name (as `/proc` shows it, with a trailing newline), or
/// `None` to leave the thread out. Threads that have exited are not counted, so take both
/// readings of a span while the same threads run. `None` if a thread still there has no
/// readable statistics: no figure rather than a total that leaves it out.
pub fn by_role<const N: usize>(role: impl Fn(&str) -> Option<usize>) -> Option<[Duration; N]> {
    let mut totals = [Duration::ZERO; N];
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread exited between the listing and the read
        };
        let Some(total) = role(&name).and_then(|i| totals.get_mut(i)) else {
            continue;
        };
        match schedstat(dir.join("schedstat")) {
            Some(t) => *total += t,
            None if dir.exists() => return None,
            None => {} // the thread exited after its name was read
        }
    }
    Some(totals)
}

/// The first field of a `schedstat` file: on-CPU nanoseconds.
pub fn schedstat(path: impl AsRef<Path>) -> Option<Duration> {
    let text = std::fs::read_to_string(path).ok()?;
    let nanos = text.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(nanos))
}
