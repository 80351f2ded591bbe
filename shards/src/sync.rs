//! The `sync` shim: std's atomics, threads and cells in normal builds, loom's under
//! `--cfg mabeam_loom`.
//!
//! Every primitive in this crate that shares memory between threads imports its atomics,
//! fences, `UnsafeCell` and thread parking from here and nowhere else, so the loom models
//! in `loom-tests/` check exactly the code the engine runs.

#[cfg(not(mabeam_loom))]
pub use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(mabeam_loom))]
pub use std::sync::{Arc, Mutex};
#[cfg(not(mabeam_loom))]
pub use std::thread;

#[cfg(mabeam_loom)]
pub use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(mabeam_loom)]
pub use loom::sync::{Arc, Mutex};
#[cfg(mabeam_loom)]
pub use loom::thread;

/// Spin-loop hint: `std::hint::spin_loop` normally, a loom yield under the model checker
/// (a loom model that spins without yielding never terminates).
#[inline]
pub fn spin_loop() {
    #[cfg(not(mabeam_loom))]
    std::hint::spin_loop();
    #[cfg(mabeam_loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure-based access API, so the same code compiles
/// against both std and loom.
#[derive(Debug)]
pub struct UnsafeCell<T>(
    #[cfg(not(mabeam_loom))] std::cell::UnsafeCell<T>,
    #[cfg(mabeam_loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        #[cfg(not(mabeam_loom))]
        return Self(std::cell::UnsafeCell::new(value));
        #[cfg(mabeam_loom)]
        return Self(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` with a shared raw pointer to the value.
    ///
    /// The caller must uphold the aliasing rules when dereferencing the pointer.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(mabeam_loom))]
        return f(self.0.get());
        #[cfg(mabeam_loom)]
        return self.0.with(f);
    }

    /// Runs `f` with an exclusive raw pointer to the value.
    ///
    /// The caller must uphold the aliasing rules when dereferencing the pointer.
    #[inline]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(mabeam_loom))]
        return f(self.0.get());
        #[cfg(mabeam_loom)]
        return self.0.with_mut(f);
    }
}
