//! The task pool: a bounded set of worker threads for heavy work (pricing and whatever
//! the host delegates), never run on a shard thread — the original's Task.Supervisor.
//!
//! Bounds: `Config::task_workers` threads and a queue of `Config::task_queue` jobs; a
//! spawn into a full queue resolves its ticket with [`Error::Busy`] at once. A job that
//! panics resolves its ticket with [`TaskError::Panicked`] and the message, is counted,
//! and its worker goes on to the next job, so the pool never shrinks.
//!
//! Shutdown takes no new jobs, drops the queued ones (their tickets resolve with
//! `ShutDown`), and waits up to `Config::shutdown_timeout` for the running ones. A job
//! still running then is abandoned: its ticket resolves with `ShutDown` at once, its
//! worker thread is detached and finishes the job on its own (its result is dropped),
//! and the shutdown report counts it.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flume::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};

use crate::engine::Inner;
use crate::runtime::{DropScope, Reply, Ticket};
use crate::telemetry::histogram::AtomicHistogram;
use crate::Error;

/// Why a task produced no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic message (or a placeholder if it was not a string).
    Panicked(String),
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Panicked(msg) => write!(f, "task panicked: {msg}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// Resolves a job's ticket without a result (when the job is abandoned).
type Abandon = Box<dyn FnOnce() + Send>;

/// A queued job: what to run, and how to resolve its ticket if it never finishes.
struct Job {
    run: Box<dyn FnOnce() + Send>,
    abandon: Abandon,
}

/// Counters of the pool.
#[derive(Debug, Default)]
struct PoolStats {
    spawned: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskStats {
    /// Worker threads.
    pub workers: usize,
    /// Jobs accepted.
    pub spawned: u64,
    /// Jobs finished (including those that panicked).
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs waiting in the queue.
    pub queued: usize,
}

/// The worker threads and their queue.
pub(crate) struct TaskPool {
    /// `None` once shut down; submits hold the read lock, so none is in flight when
    /// shutdown takes it away.
    tx: RwLock<Option<Sender<Job>>>,
    /// Kept to drop the queued jobs at shutdown.
    rx: Receiver<Job>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    worker_count: usize,
    /// The abandon hook of each worker's current job.
    running: Arc<[Mutex<Option<Abandon>>]>,
    /// Each worker sends its index here when it leaves its loop.
    exited: Receiver<usize>,
    stats: Arc<PoolStats>,
    /// Each worker's job durations (telemetry), written by that worker alone.
    durations: Arc<[AtomicHistogram]>,
}

impl TaskPool {
    /// Starts `workers` threads `mabeam-task-{i}` on a queue of `queue` jobs.
    pub(crate) fn start(workers: usize, queue: usize) -> std::io::Result<Self> {
        let (tx, rx) = flume::bounded::<Job>(queue);
        let (exited_tx, exited) = flume::bounded(workers);
        let stats = Arc::new(PoolStats::default());
        let running: Arc<[Mutex<Option<Abandon>>]> =
            (0..workers).map(|_| Mutex::new(None)).collect();
        let durations: Arc<[AtomicHistogram]> =
            (0..workers).map(|_| AtomicHistogram::default()).collect();
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let running = running.clone();
            let exited_tx = exited_tx.clone();
            let durations = durations.clone();
            let handle = std::thread::Builder::new()
                .name(format!("mabeam-task-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        *running[i].lock() = Some(job.abandon);
                        let began = Instant::now();
                        // Jobs catch their own panics (`run_caught`); this guard keeps
                        // the worker alive even if a reply's drop were to panic.
                        let _ = catch_unwind(AssertUnwindSafe(job.run));
                        durations[i]
                            .record(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
                        running[i].lock().take();
                    }
                    let _ = exited_tx.send(i);
                });
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    drop(tx);
                    for h in handles {
                        let _ = h.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(Self {
            tx: RwLock::new(Some(tx)),
            rx,
            workers: Mutex::new(handles),
            worker_count: workers,
            running,
            exited,
            stats,
            durations,
        })
    }

    /// Queues a job that runs `work` on a worker (a panic caught and counted) and hands
    /// the result to `deliver` with `reply`. If the job is dropped unrun, or abandoned
    /// at shutdown, `reply` is dropped instead (resolving its ticket with `ShutDown`); a
    /// refused submit drops it with the refusal (`Busy` or `ShutDown`).
    pub(crate) fn submit<T, R>(
        &self,
        reply: Reply<T>,
        work: impl FnOnce() -> R + Send + 'static,
        deliver: impl FnOnce(Result<R, TaskError>, Reply<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        R: Send + 'static,
    {
        let slot = Arc::new(Mutex::new(Some(reply)));
        let theirs = slot.clone();
        let stats = self.stats.clone();
        let job = Job {
            run: Box::new(move || {
                let result = run_caught(work);
                if result.is_err() {
                    stats.panicked.fetch_add(1, Ordering::Relaxed);
                }
                // Counted before the answer, so a ticket that resolved is counted.
                stats.completed.fetch_add(1, Ordering::Relaxed);
                // Taken only now: until the result exists, an abandon can resolve it.
                if let Some(reply) = theirs.lock().take() {
                    deliver(result, reply);
                }
            }),
            abandon: Box::new(move || drop(slot.lock().take())),
        };
        let tx = self.tx.read();
        let refused = match tx.as_ref() {
            None => Some((job, Error::ShutDown)),
            Some(tx) => match tx.try_send(job) {
                Ok(()) => {
                    self.stats.spawned.fetch_add(1, Ordering::Relaxed);
                    None
                }
                Err(TrySendError::Full(job)) => Some((job, Error::Busy)),
                Err(TrySendError::Disconnected(job)) => Some((job, Error::ShutDown)),
            },
        };
        drop(tx);
        if let Some((job, error)) = refused {
            let _scope = DropScope::new(error);
            drop(job);
        }
    }

    /// Adds every worker's job durations into `into` (telemetry).
    pub(crate) fn durations_into(&self, into: &mut crate::telemetry::histogram::Hdr) {
        for d in self.durations.iter() {
            d.add_to(into);
        }
    }

    pub(crate) fn stats(&self) -> TaskStats {
        TaskStats {
            workers: self.worker_count,
            spawned: self.stats.spawned.load(Ordering::Relaxed),
            completed: self.stats.completed.load(Ordering::Relaxed),
            panicked: self.stats.panicked.load(Ordering::Relaxed),
            queued: self.rx.len(),
        }
    }

    /// Takes no more jobs, drops the queued ones, waits up to `timeout` for the running
    /// ones, then abandons those still running. Returns the number abandoned. Idempotent.
    pub(crate) fn shutdown(&self, timeout: Duration) -> usize {
        let Some(tx) = self.tx.write().take() else {
            return 0;
        };
        while let Ok(job) = self.rx.try_recv() {
            drop(job);
        }
        // With the sender gone, each worker leaves its loop once the queue is empty.
        drop(tx);
        let deadline = mabeam_shards::mailbox::deadline_after(timeout);
        let mut exited = vec![false; self.worker_count];
        for _ in 0..self.worker_count {
            match self.exited.recv_deadline(deadline).ok() {
                Some(i) => exited[i] = true,
                None => break,
            }
        }
        let mut abandoned = 0;
        for (i, done) in exited.iter().enumerate() {
            if !done {
                if let Some(abandon) = self.running[i].lock().take() {
                    abandon();
                    abandoned += 1;
                }
            }
        }
        let mut workers = self.workers.lock();
        for (i, handle) in workers.drain(..).enumerate() {
            if exited[i] {
                let _ = handle.join();
            }
            // Otherwise detached: it finishes its job alone and finds nobody waiting.
        }
        abandoned
    }
}

/// Runs `f`, turning a panic into [`TaskError::Panicked`] with its message.
fn run_caught<T>(f: impl FnOnce() -> T) -> Result<T, TaskError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|payload| TaskError::Panicked(panic_message(&*payload)))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The task pool of an engine; get it with [`Engine::tasks`](crate::EngineHandle::tasks).
#[derive(Clone, Copy)]
pub struct Tasks<'e> {
    inner: &'e Arc<Inner>,
}

impl fmt::Debug for Tasks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tasks")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<'e> Tasks<'e> {
    pub(crate) fn new(inner: &'e Arc<Inner>) -> Self {
        Self { inner }
    }

    /// Runs `f` on a pool worker. The ticket resolves with `Ok(value)`, with
    /// `Ok(Err(TaskError::Panicked(msg)))` if `f` panicked, with `Err(Busy)` at once if
    /// the queue is full, and with `Err(ShutDown)` if the engine shut down before `f`
    /// ran or while it was still running past `Config::shutdown_timeout`.
    ///
    /// ```
    /// let engine = mabeam::Engine::start(mabeam::Config::default().with_shards(1).with_pin_threads(false))?;
    /// assert_eq!(engine.tasks().spawn(|| 6 * 7).wait()?, Ok(42));
    /// let failed = engine.tasks().spawn(|| -> u32 { panic!("boom") }).wait()?;
    /// assert_eq!(failed, Err(mabeam::TaskError::Panicked("boom".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> Ticket<Result<T, TaskError>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (ticket, reply) = self.inner.rt.ticket();
        if let Err(e) = self.inner.check_open() {
            reply.send(Err(e));
            return ticket;
        }
        self.inner
            .tasks
            .submit(reply, f, |result, reply| reply.send(Ok(result)));
        ticket
    }

    /// The pool's counters.
    pub fn stats(&self) -> TaskStats {
        self.inner.tasks.stats()
    }
}
