//! Starting and joining the scoped threads that split work (tracking, building and encoding
//! tables).

/// The thread's result. A worker thread only panics on a bug: its panic is passed on
/// unchanged, as if the work had run on the joining thread.
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Starts `work` on a scoped thread named `name`: profilers and debuggers show each step of
/// the pipeline by name.
pub fn spawn_named<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    work: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, work)
        // What `Scope::spawn` does too: a thread the system cannot start is not recoverable.
        .unwrap_or_else(|e| panic!("cannot start the {name} thread: {e}"))
}
