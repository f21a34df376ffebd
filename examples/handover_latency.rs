//! What handing a frame to a sleeping thread over a bounded crossbeam channel costs: what
//! an engine thread fed by the capture threads would add to every relayed frame, and why
//! the live driver drives the engine from the capture threads under a lock instead
//! (`docs/live-driver.md`). A sender puts a timestamp on the channel every 20 ms (the
//! bench's bound-guest pace, so the receiver is asleep each time, as an idle engine
//! thread would be); the receiver notes how long after the send it had it.
//!
//! ```text
//! cargo run --release --example handover_latency [COUNT]   (default 500)
//! ```
//!
//! Prints one JSON object: median, p90, p99 and max in µs.

use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let count: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 500,
    };
    anyhow::ensure!(count > 0, "COUNT must be at least 1");
    let (tx, rx) = crossbeam_channel::bounded::<Instant>(1024);
    let receiver = std::thread::spawn(move || {
        let mut waits = Vec::with_capacity(count);
        while let Ok(sent) = rx.recv() {
            waits.push(sent.elapsed().as_secs_f64() * 1e6);
        }
        waits
    });
    for _ in 0..count {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(Instant::now())?;
    }
    drop(tx);
    let mut waits = receiver.join().expect("receiver panicked");
    waits.sort_by(f64::total_cmp);
    println!(
        r#"{{"handovers":{},"median_us":{:.1},"p90_us":{:.1},"p99_us":{:.1},"max_us":{:.1}}}"#,
        waits.len(),
        percentile(&waits, 0.5),
        percentile(&waits, 0.9),
        percentile(&waits, 0.99),
        waits[waits.len() - 1]
    );
    Ok(())
}
