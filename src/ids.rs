//! Trace and span identifiers: generation and hex formatting.
//!
//! IDs come from a per-thread wyrand generator seeded from the OS. It costs a
//! couple of nanoseconds per ID, where a syscall per ID would cost hundreds.
//! A forked child inherits its parent's generator state, so the fork hook
//! calls [`reseed_after_fork`]; otherwise parent and child would mint the same
//! IDs.

use std::cell::Cell;
use std::fmt;

/// A 128-bit trace id. Zero is invalid (W3C Trace Context).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub u128);

/// A 64-bit span id. Zero is invalid (W3C Trace Context).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub u64);

impl TraceId {
    /// A new trace id, all 128 bits from the generator. W3C Trace Context
    /// Level 2 lets a trace whose id's rightmost 7 bytes are random (or
    /// pseudo-random) say so with the `random` trace flag, which every trace
    /// ferrotrace starts sets (see `propagation.rs`): nothing here may
    /// ever put structure (a timestamp, a counter) in the low bytes.
    pub fn random() -> Self {
        loop {
            let id = (u128::from(next_u64()) << 64) | u128::from(next_u64());
            if id != 0 {
                return TraceId(id);
            }
        }
    }

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(self) -> HexBuf<32> {
        HexBuf::from_u128(self.0)
    }

    /// Parses exactly 32 lowercase hex digits; rejects the all-zero id.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 {
            return None;
        }
        parse_lower_hex(s.as_bytes())
            .map(TraceId)
            .filter(|id| id.is_valid())
    }
}

impl SpanId {
    pub fn random() -> Self {
        loop {
            let id = next_u64();
            if id != 0 {
                return SpanId(id);
            }
        }
    }

    pub fn is_valid(self) -> bool {
        self.0 != 0
    }

    /// 16 lowercase hex digits.
    pub fn to_hex(self) -> HexBuf<16> {
        HexBuf::from_u128(u128::from(self.0))
    }

    /// Parses exactly 16 lowercase hex digits; rejects the all-zero id.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 16 {
            return None;
        }
        parse_lower_hex(s.as_bytes())
            .map(|v| SpanId(v as u64))
            .filter(|id| id.is_valid())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

/// Fixed-size lowercase hex rendering on the stack (no allocation).
#[derive(Clone, Copy)]
pub struct HexBuf<const N: usize>([u8; N]);

impl<const N: usize> HexBuf<N> {
    /// A byte at a time from a table of digit pairs: ids are written for
    /// every span (three per line), and a nibble loop over `u128` was a
    /// visible part of the writer thread's time.
    fn from_u128(value: u128) -> Self {
        const PAIRS: [[u8; 2]; 256] = {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let mut pairs = [[0u8; 2]; 256];
            let mut i = 0;
            while i < 256 {
                pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
                i += 1;
            }
            pairs
        };
        let bytes = value.to_be_bytes();
        let mut out = [b'0'; N];
        // N is 16 or 32 digits: the last N/2 bytes of the big-endian value.
        for (pair, byte) in out.chunks_exact_mut(2).zip(&bytes[16 - N / 2..]) {
            pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
        }
        HexBuf(out)
    }

    /// The digits as bytes (always ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The digits as a fixed-size array, for copies of known size.
    pub fn as_array(&self) -> &[u8; N] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into the buffer.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Lowercase-only hex parsing: W3C Trace Context forbids upper case.
fn parse_lower_hex(bytes: &[u8]) -> Option<u128> {
    if bytes.is_empty() || bytes.len() > 32 {
        return None;
    }
    let mut value: u128 = 0;
    for &b in bytes {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u128::from(digit);
    }
    Some(value)
}

thread_local! {
    static RNG_STATE: Cell<u64> = const { Cell::new(0) };
}

fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS entropy (should not happen on Linux): fall back to time and
        // address noise, still distinct per thread and process.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        return t ^ (&local as *const u8 as u64).rotate_left(32) ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes) | 1
}

/// wyrand: tiny, fast, and passes BigCrush; good enough for unique IDs.
pub fn next_u64() -> u64 {
    RNG_STATE.with(|cell| {
        let mut state = cell.get();
        if state == 0 {
            state = os_seed();
        }
        state = state.wrapping_add(0xa076_1d64_78bd_642f);
        cell.set(state);
        let t = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

/// Gives the calling thread a fresh seed. Called in a forked child, whose
/// only thread is the one that forked.
pub fn reseed_after_fork() {
    RNG_STATE.with(|cell| cell.set(os_seed()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    proptest::proptest! {
        #[test]
        fn hex_is_fixed_width_lowercase(trace: u128, span: u64) {
            let (trace_hex, span_hex) = (TraceId(trace).to_hex(), SpanId(span).to_hex());
            proptest::prop_assert_eq!(trace_hex.as_str(), format!("{trace:032x}"));
            proptest::prop_assert_eq!(span_hex.as_str(), format!("{span:016x}"));
        }
    }

    #[test]
    fn hex_round_trip() {
        let t = TraceId(0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(t.to_hex().as_str(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            TraceId::from_hex("0af7651916cd43dd8448eb211c80319c"),
            Some(t)
        );
        let s = SpanId(0xb7ad6b7169203331);
        assert_eq!(s.to_hex().as_str(), "b7ad6b7169203331");
        assert_eq!(SpanId::from_hex("b7ad6b7169203331"), Some(s));
        assert_eq!(SpanId(1).to_hex().as_str(), "0000000000000001");
    }

    #[test]
    fn parsing_rejects_bad_ids() {
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), None);
        assert_eq!(SpanId::from_hex(&"0".repeat(16)), None);
        assert_eq!(SpanId::from_hex("B7AD6B7169203331"), None);
        assert_eq!(SpanId::from_hex("b7ad6b716920333"), None);
        assert_eq!(SpanId::from_hex("b7ad6b716920333g"), None);
    }

    #[test]
    fn random_ids_are_distinct_and_valid() {
        let ids: HashSet<u64> = (0..100_000).map(|_| SpanId::random().0).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(TraceId::random().is_valid());
    }

    /// The W3C `random` flag promises the rightmost 7 bytes are random:
    /// each of those 56 bits is set in about half of many ids. (A bit stuck
    /// at 0 or 1, or a counter in the low bytes, fails; a fair generator
    /// leaves 4096 draws within 40-60% with certainty short of 12 standard
    /// deviations.)
    #[test]
    fn trace_id_low_seven_bytes_are_random() {
        let ids: Vec<u128> = (0..4096).map(|_| TraceId::random().0).collect();
        for bit in 0..56 {
            let set = ids.iter().filter(|id| (*id >> bit) & 1 == 1).count();
            assert!(
                (1638..=2458).contains(&set),
                "bit {bit} set in {set} of 4096"
            );
        }
        let distinct: HashSet<u64> = ids
            .iter()
            .map(|id| (*id as u64) & ((1 << 56) - 1))
            .collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn reseeding_changes_the_sequence() {
        reseed_after_fork();
        let a: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        reseed_after_fork();
        let b: Vec<u64> = (0..4).map(|_| next_u64()).collect();
        assert_ne!(a, b);
    }
}
