//! Reading a hostile envelope holds no more memory than its declared data:
//! a tiny compressed file that decompresses to far more than its header
//! announces, or a header announcing more than follows, is rejected without
//! buffering the decompressed stream, and a bomb whose zeros do follow is
//! refused once they outgrow what its compressed size can honestly hold. Peak heap use is measured with a
//! counting allocator (this test binary's only test, so nothing else runs
//! concurrently and inflates the peak).

#![allow(clippy::disallowed_methods)] // tests, benches and examples build their own scratch files

use baton_native::Agent;
use baton_native::envelope::{Envelope, EnvelopeError, EnvelopeMeta};
use baton_native::rehydrate::{LineageFile, NativeSession};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap growth while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn sample() -> Envelope {
    Envelope::from_files(
        NativeSession {
            agent: Agent::Codex,
            id: "s1".into(),
            files: vec![LineageFile {
                id: "s1".into(),
                name: "sessions/2026/01/01/rollout-2026-01-01T00-00-00-s1.jsonl".into(),
                bytes: b"{\"type\":\"session_meta\"}\n".to_vec(),
            }],
            extras: Vec::new(),
        },
        EnvelopeMeta::default(),
    )
}

/// A zstd-compressed stream: `header` as one line, `payload`, then `zeros`
/// zero bytes (compressed to almost nothing).
fn compressed(header: &serde_json::Value, payload: &[u8], zeros: usize) -> Vec<u8> {
    let mut enc = zstd::Encoder::new(Vec::new(), 1).unwrap();
    serde_json::to_writer(&mut enc, header).unwrap();
    enc.write_all(b"\n").unwrap();
    enc.write_all(payload).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..zeros / block.len() {
        enc.write_all(&block).unwrap();
    }
    enc.finish().unwrap()
}

#[test]
fn hostile_envelopes_fail_without_large_allocations() {
    const LIMIT: usize = 16 << 20;
    let env = sample();
    let payload = env.session.files[0].bytes.clone();
    let header = serde_json::to_value(env.header()).unwrap();

    // A valid envelope followed by 256 MiB of zeros: a few hundred KiB on disk.
    let bomb = compressed(&header, &payload, 256 << 20);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let (result, peak) = peak_during(|| Envelope::read_from(bomb.as_slice()));
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("more data follows"),
        "unexpected error: {err}"
    );
    assert!(peak < LIMIT, "reading the bomb allocated {peak} bytes");

    // A header announcing 3 GiB that are not there.
    let mut huge = header.clone();
    huge["files"][0]["bytes"] = (3u64 << 30).into();
    let tiny = compressed(&huge, &payload, 0);
    let (result, peak) = peak_during(|| Envelope::read_from(tiny.as_slice()));
    let err = result.unwrap_err();
    assert!(
        matches!(err, EnvelopeError::Corrupt(_)) && err.to_string().contains("truncated"),
        "unexpected error: {err}"
    );
    assert!(
        peak < LIMIT,
        "reading the short envelope allocated {peak} bytes"
    );

    // A header announcing 3 GiB that do follow, as zeros in about 100 KB:
    // refused once the data outgrows what a file that small can hold.
    let mut header_line = serde_json::to_vec(&huge).unwrap();
    header_line.push(b'\n');
    let bomb = baton_testkit::zstd_bomb(&header_line, 0, 3 << 30);
    assert!(bomb.len() < 110_000, "bomb is {} bytes", bomb.len());
    let (result, peak) = peak_during(|| Envelope::read_from(bomb.as_slice()));
    let err = result.unwrap_err();
    assert!(
        matches!(err, EnvelopeError::TooLarge { limit } if limit < 64 << 20),
        "unexpected error: {err}"
    );
    // What was allowed to arrive (under 64 MiB), and one growth of its buffer.
    assert!(
        peak < 128 << 20,
        "reading the 3 GiB bomb allocated {peak} bytes"
    );

    // A header announcing more than the limit: refused before any payload.
    huge["files"][0]["bytes"] = (5u64 << 30).into();
    let over = compressed(&huge, &payload, 0);
    let (result, peak) = peak_during(|| Envelope::read_from(over.as_slice()));
    assert!(matches!(result, Err(EnvelopeError::TooLarge { .. })));
    assert!(
        peak < LIMIT,
        "refusing the oversized header allocated {peak} bytes"
    );

    // The untouched envelope still reads.
    assert_eq!(
        Envelope::read_from(compressed(&header, &payload, 0).as_slice()).unwrap(),
        env
    );
}
