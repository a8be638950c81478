//! 32-bit wrap-around comparisons, as the kernel's `before()`/`after()` (include/net/tcp.h).

/// `a` comes after `b` in sequence space.
pub fn after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

/// `a` comes before `b` in sequence space.
pub fn before(a: u32, b: u32) -> bool {
    after(b, a)
}

/// `(s32)(a - b)`: how far timestamp `a` is ahead of `b`, with wrap-around.
pub fn ts_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_handles_wrap_around() {
        assert!(after(5, 0xffff_fff0));
        assert!(!after(0xffff_fff0, 5));
        assert!(before(0xffff_fff0, 5));
        assert!(!after(7, 7));
    }

    #[test]
    fn ts_diff_is_signed_distance() {
        assert_eq!(ts_diff(10, 3), 7);
        assert_eq!(ts_diff(3, 10), -7);
        assert_eq!(ts_diff(2, 0xffff_fffe), 4);
        // Exactly half the space apart: the sign bit decides, as in the kernel.
        assert_eq!(ts_diff(0x8000_0000, 0), i32::MIN);
    }
}
