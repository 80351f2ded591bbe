//! Resident memory and mailbox depth while a preset runs: sampled every
//! [`PERIOD`] by a thread of the run's scope, shown on the progress line and written
//! into the JSON as peaks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mabeam::EngineHandle;

/// How often the gauges are sampled.
pub const PERIOD: Duration = Duration::from_millis(10);

/// The gauges of one run (`u64::MAX` resident: not known on this platform).
#[derive(Debug)]
pub struct Gauges {
    resident: AtomicU64,
    mailbox: AtomicU64,
    peak_resident: AtomicU64,
    peak_mailbox: AtomicU64,
    stop: AtomicBool,
}

impl Default for Gauges {
    fn default() -> Self {
        Self {
            resident: AtomicU64::new(u64::MAX),
            mailbox: AtomicU64::new(0),
            peak_resident: AtomicU64::new(0),
            peak_mailbox: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }
}

impl Gauges {
    /// Samples once: the process's resident memory, the messages in every mailbox.
    pub fn sample(&self, engine: &EngineHandle) {
        if let Some(rss) = mabeam::resources::resident_bytes() {
            self.resident.store(rss, Ordering::Relaxed);
            self.peak_resident.fetch_max(rss, Ordering::Relaxed);
        }
        let depth: usize = engine.mailbox_depths().iter().sum();
        self.mailbox.store(depth as u64, Ordering::Relaxed);
        self.peak_mailbox.fetch_max(depth as u64, Ordering::Relaxed);
    }

    /// Samples every [`PERIOD`] until [`stop`](Self::stop).
    pub fn run(&self, engine: &EngineHandle) {
        while !self.stop.load(Ordering::Relaxed) {
            self.sample(engine);
            std::thread::sleep(PERIOD);
        }
        self.sample(engine);
    }

    /// Ends [`run`](Self::run).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// `rss 41.2 MiB, mailboxes 12` for the progress line.
    pub fn line(&self) -> String {
        let rss = match self.resident.load(Ordering::Relaxed) {
            u64::MAX => "rss ?".to_string(),
            b => format!("rss {:.1} MiB", b as f64 / (1 << 20) as f64),
        };
        format!("{rss}, mailboxes {}", self.mailbox.load(Ordering::Relaxed))
    }

    /// The peaks seen: resident bytes (`None` where unknown), messages in all mailboxes.
    pub fn peaks(&self) -> (Option<u64>, u64) {
        let rss = self.peak_resident.load(Ordering::Relaxed);
        (
            (rss > 0).then_some(rss),
            self.peak_mailbox.load(Ordering::Relaxed),
        )
    }
}

/// `path` with `name` inserted before its extension: `metrics.prom` and `sharded` give
/// `metrics.sharded.prom`; a path without an extension gets `.sharded` appended.
pub fn with_preset(path: &std::path::Path, name: &str) -> std::path::PathBuf {
    let mut file = path.file_stem().unwrap_or_default().to_os_string();
    file.push(".");
    file.push(name);
    if let Some(ext) = path.extension() {
        file.push(".");
        file.push(ext);
    }
    path.with_file_name(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn preset_name_goes_before_the_extension() {
        assert_eq!(
            with_preset(Path::new("out/metrics.prom"), "sharded"),
            Path::new("out/metrics.sharded.prom")
        );
        assert_eq!(
            with_preset(Path::new("metrics"), "centralized"),
            Path::new("metrics.centralized")
        );
    }
}
