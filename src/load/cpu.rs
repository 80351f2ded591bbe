//! CPU time, so a run can say where the machine's cores went: to the client threads
//! (each reads its own), to the engine's shard threads, or to the rest of the process
//! (the tool's monitor and gauges, which sleep between their samples, and the exits of
//! the client threads).
//!
//! The thread and process clocks are the kernel's own accounting of time on a CPU (user
//! and system), read with `clock_gettime`; the shards' time comes from Linux's
//! scheduler statistics of the threads named `mabeam-shard-*` ([`super::thread_cpu`]).
//! Where a source is missing the figure is `None` and the report leaves it out.

use std::time::Duration;

use super::thread_cpu;

/// CPU time the calling thread has used so far.
pub fn this_thread() -> Option<Duration> {
    #[cfg(unix)]
    {
        read(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// CPU time every thread of this process has used so far (threads that have exited
/// included).
pub fn process() -> Option<Duration> {
    #[cfg(unix)]
    {
        read(libc::CLOCK_PROCESS_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// On-CPU time so far of this process's threads whose name starts with `mabeam-shard`
/// (the engine's shards; read both ends of a span while the same engine runs).
pub fn shard_threads() -> Option<Duration> {
    let [shards] = thread_cpu::by_role(|name| name.starts_with("mabeam-shard").then_some(0))?;
    Some(shards)
}

#[cfg(unix)]
fn read(clock: libc::clockid_t) -> Option<Duration> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable `timespec` for the whole call, which writes
    // nothing else; `clock` is one of the CPU-time clocks every Unix we build for has.
    let rc = unsafe { libc::clock_gettime(clock, &mut t) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u32::try_from(t.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

/// Where a run's CPU went, between the clients' start and the end of the final flush.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    /// The wall time the process's reading spans (from just before the clients' start
    /// barrier to the end of the final flush): what "cores' worth" divides by.
    pub span: Duration,
    /// Every thread of the process.
    pub process: Duration,
    /// The client threads, each from its first operation to its last answer.
    pub clients: Duration,
    /// The engine's shard threads (`None` where the OS does not report them).
    pub shards: Option<Duration>,
}

impl CpuUse {
    /// The rest of the process: everything but the clients and, where known, the shards.
    pub fn other(&self) -> Duration {
        let rest = self.process.saturating_sub(self.clients);
        rest.saturating_sub(self.shards.unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_sees_its_cpu_time_grow_and_the_process_sees_at_least_as_much() {
        let (Some(t0), Some(p0)) = (this_thread(), process()) else {
            return; // no CPU clocks on this platform: nothing to compare
        };
        let mut x = 1u64;
        let mut spun = Duration::ZERO;
        while spun < Duration::from_millis(5) {
            for i in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
            }
            spun = this_thread().expect("read once, readable again") - t0;
        }
        let p1 = process().expect("read once, readable again");
        assert!(
            p1 - p0 >= spun,
            "the process's CPU time includes this thread's"
        );
        let cpu = CpuUse {
            span: Duration::from_millis(5),
            process: p1 - p0,
            clients: spun,
            shards: None,
        };
        assert_eq!(cpu.other(), (p1 - p0) - spun);
        let cpu = CpuUse {
            shards: Some(p1 - p0),
            ..cpu
        };
        assert_eq!(cpu.other(), Duration::ZERO, "never below zero");
    }
}
