//! Exact nearest-rank percentiles, as README.md ("Analysis") states them: the p-th
//! percentile of n sorted values is the value at 1-based rank ceil(p/100 · n).
//! No interpolation: every reported percentile is a duration that was
//! actually recorded.

use serde::Serialize;

/// The 1-based nearest rank of percentile `p` (in (0, 100]) among `n` values,
/// clamped to `[1, n]`. `n` must be positive.
pub(crate) fn nearest_rank(p: f64, n: usize) -> usize {
    debug_assert!(n > 0);
    let exact = p / 100.0 * n as f64;
    // p/100·n is often an integer in exact arithmetic (p=95, n=100) that
    // floating point lands a hair above; ceil would then skip a rank.
    let nearest = exact.round();
    let rank = if (exact - nearest).abs() <= 1e-9 * nearest.max(1.0) {
        nearest
    } else {
        exact.ceil()
    };
    if rank.is_nan() || rank < 1.0 {
        1
    } else {
        (rank as usize).min(n)
    }
}

/// The nearest-rank percentile `p` of ascending `sorted` values, or `None`
/// if there are none.
pub(crate) fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[nearest_rank(p, sorted.len()) - 1])
}

/// Latency summary in milliseconds. All zeros when `count` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl LatencyStats {
    /// Exact stats of `values` (sorted in place; NaNs, which no parsed
    /// duration can be, sort last).
    pub fn from_values(values: &mut [f64]) -> Self {
        values.sort_unstable_by(f64::total_cmp);
        Self::from_sorted(values)
    }

    /// Exact stats of values already sorted ascending.
    pub fn from_sorted(sorted: &[f64]) -> Self {
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return LatencyStats::default();
        };
        let sum: f64 = sorted.iter().sum();
        let at = |p| percentile_sorted(sorted, p).unwrap_or(0.0);
        LatencyStats {
            count: sorted.len() as u64,
            min,
            max,
            avg: sum / sorted.len() as f64,
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranks_by_hand() {
        // n = 20: p50 -> rank 10, p95 -> 19, p99 -> ceil(19.8) = 20.
        assert_eq!(nearest_rank(50.0, 20), 10);
        assert_eq!(nearest_rank(95.0, 20), 19);
        assert_eq!(nearest_rank(99.0, 20), 20);
        // n = 100: integral products must not round up.
        assert_eq!(nearest_rank(95.0, 100), 95);
        assert_eq!(nearest_rank(99.0, 100), 99);
        assert_eq!(nearest_rank(99.9, 1000), 999);
        assert_eq!(nearest_rank(57.0, 100), 57);
        assert_eq!(nearest_rank(29.0, 100), 29);
        // n = 3: p50 -> ceil(1.5) = 2.
        assert_eq!(nearest_rank(50.0, 3), 2);
        assert_eq!(nearest_rank(1.0, 1), 1);
        assert_eq!(nearest_rank(100.0, 7), 7);
        assert_eq!(nearest_rank(250.0, 7), 7);
        assert_eq!(nearest_rank(f64::NAN, 7), 1);
    }

    #[test]
    fn stats_by_hand() {
        // 1..=10 ms shuffled: p50 = 5, p95 = 10 (rank ceil(9.5)), p99 = 10.
        let mut values = [7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0];
        let stats = LatencyStats::from_values(&mut values);
        assert_eq!(
            stats,
            LatencyStats {
                count: 10,
                min: 1.0,
                max: 10.0,
                avg: 5.5,
                p50: 5.0,
                p95: 10.0,
                p99: 10.0
            }
        );
        // 1..=100: p50 = 50, p95 = 95, p99 = 99.
        let mut values: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let stats = LatencyStats::from_values(&mut values);
        assert_eq!((stats.p50, stats.p95, stats.p99), (50.0, 95.0, 99.0));
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(LatencyStats::from_values(&mut []), LatencyStats::default());
        let stats = LatencyStats::from_values(&mut [4.5]);
        assert_eq!(stats.count, 1);
        assert_eq!(
            (stats.min, stats.p50, stats.p99, stats.max),
            (4.5, 4.5, 4.5, 4.5)
        );
        assert_eq!(percentile_sorted(&[], 50.0), None);
    }

    #[test]
    fn serialises_with_the_pinned_keys() {
        let v = serde_json::to_value(LatencyStats::default()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec!["count", "min", "max", "avg", "p50", "p95", "p99"];
        expected.sort();
        assert_eq!(keys, expected);
    }

    proptest! {
        #[test]
        fn matches_the_definition(
            mut values in prop::collection::vec(0.0f64..1e6, 1..300),
            p in 0.1f64..=100.0,
        ) {
            values.sort_by(f64::total_cmp);
            let n = values.len();
            let got = percentile_sorted(&values, p).unwrap();
            // Count-based restatement: the smallest value v such that at
            // least p% of the values are <= v.
            let needed = p / 100.0 * n as f64;
            let slack = 1e-9 * needed.round().max(1.0);
            let expected = values
                .iter()
                .copied()
                .find(|v| {
                    let at_most = values.iter().filter(|w| *w <= v).count();
                    at_most as f64 >= needed - slack
                })
                .unwrap();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn nearest_rank_examples() {
        assert_eq!(nearest_rank(50.0, 10), 5);
        assert_eq!(nearest_rank(95.0, 10), 10);
        assert_eq!(nearest_rank(0.0, 10), 1);
    }

    #[test]
    fn percentile_sorted_examples() {
        let v = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile_sorted(&v, 30.0), Some(20.0));
        assert_eq!(percentile_sorted(&v, 100.0), Some(50.0));
    }
}
