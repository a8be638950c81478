//! Hints that start fetching memory a loop will read a few steps later: lookups into tables
//! of hundreds of MB, and records visited out of order, otherwise wait on memory one at a
//! time.

/// Asks the CPU to fetch the cache line holding `p` (a hint: never faults, any address).
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the prefetch instruction reads nothing architecturally and cannot fault, and
    // SSE is part of x86_64's baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks the CPU to fetch every cache line of `value`.
#[inline]
pub fn prefetch_whole<T>(value: &T) {
    let start: *const u8 = (value as *const T).cast();
    for line in (0..size_of::<T>()).step_by(64) {
        prefetch(start.wrapping_add(line));
    }
}
