//! Joining the scoped threads that split work (tracking, building and encoding tables).

/// The thread's result. A worker thread only panics on a bug: its panic is passed on
/// unchanged, as if the work had run on the joining thread.
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
