//! Small helpers shared by the benchmarks: repeat a corpus to a size, time
//! the best of several runs, and express a rate in MB/s.

use std::time::{Duration, Instant};

/// `one` repeated until the result holds at least `target` bytes (at least
/// once). Panics when `one` is empty: a benchmark over nothing is a mistake.
pub fn repeat_to(one: &[u8], target: usize) -> Vec<u8> {
    assert!(!one.is_empty(), "the corpus to repeat is empty");
    let mut out = Vec::with_capacity(target + one.len());
    while out.is_empty() || out.len() < target {
        out.extend_from_slice(one);
    }
    out
}

/// Best (shortest) of `runs` timings of `f`.
pub fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// `bytes` processed in `d`, in MB/s (10^6 bytes).
pub fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// p50 and p99 of `runs` (nearest rank); panics on no runs.
pub fn p50_p99(mut runs: Vec<Duration>) -> (Duration, Duration) {
    runs.sort();
    let at = |q: f64| runs[((runs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// `d` in milliseconds with two decimals: `1.25 ms`.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
