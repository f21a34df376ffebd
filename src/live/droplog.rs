//! Log lines for per-packet problems: the engine counts every dropped frame
//! (`drop_<reason>`); the log gets the first occurrence of each reason at once and then
//! at most one summary line per interval with what increased, so a flood of bad frames
//! costs a counter, not a log line per frame.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Watches counter snapshots and says what to log.
#[derive(Debug)]
pub struct DropLog {
    interval: Duration,
    seen: HashMap<String, u64>,
    at_summary: HashMap<String, u64>,
    last_summary: Option<Instant>,
}

impl DropLog {
    /// Summaries at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            seen: HashMap::new(),
            at_summary: HashMap::new(),
            last_summary: None,
        }
    }

    /// Feeds a counter snapshot taken at `now`; returns (first occurrences, summary).
    pub fn observe(
        &mut self,
        counters: &[(String, u64)],
        now: Instant,
    ) -> (Vec<String>, Option<String>) {
        let mut first = Vec::new();
        for (name, v) in counters.iter().filter(|(n, _)| n.starts_with("drop_")) {
            let prev = self.seen.insert(name.clone(), *v).unwrap_or(0);
            if prev == 0 && *v > 0 {
                // A port not proxying yet is the usual first-run surprise: point at
                // the column that says why.
                let why = if name == "drop_port_disabled" {
                    "; a port that is down, disabled or still enabling: the LOOP-PREVENTION \
                     column of `ndprelay status` says why"
                } else {
                    ""
                };
                first.push(format!(
                    "dropping frames: {name} (first occurrence; `ndprelay status` counts them, later ones are summarised{why})"
                ));
                // The first one is reported; the summary covers what comes after.
                self.at_summary.insert(name.clone(), *v);
            }
        }
        let due = self
            .last_summary
            .is_none_or(|t| now.duration_since(t) >= self.interval);
        if !due {
            return (first, None);
        }
        self.last_summary = Some(now);
        let mut parts: Vec<String> = counters
            .iter()
            .filter(|(n, _)| n.starts_with("drop_"))
            .filter_map(|(name, v)| {
                let before = self.at_summary.insert(name.clone(), *v).unwrap_or(0);
                (*v > before).then(|| format!("{name} +{}", v - before))
            })
            .collect();
        parts.sort();
        let summary = (!parts.is_empty()).then(|| {
            format!(
                "dropped in the last {}s: {}",
                self.interval.as_secs(),
                parts.join(", ")
            )
        });
        (first, summary)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn c(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(n, x)| (n.to_string(), *x)).collect()
    }

    #[test]
    fn first_occurrence_at_once_then_one_summary_per_interval() {
        let t0 = Instant::now();
        let mut d = DropLog::new(Duration::from_secs(60));
        let (first, summary) = d.observe(&c(&[("drop_hop_limit", 0), ("rx_frames", 5)]), t0);
        assert!(first.is_empty() && summary.is_none());
        let (first, summary) = d.observe(
            &c(&[("drop_hop_limit", 3), ("rx_frames", 9)]),
            t0 + Duration::from_secs(1),
        );
        assert_eq!(first.len(), 1);
        assert!(first[0].contains("drop_hop_limit"));
        assert!(
            summary.is_none(),
            "the first occurrence is not summarised again"
        );
        // A flood within the interval: no line at all.
        let (first, summary) = d.observe(
            &c(&[("drop_hop_limit", 5000)]),
            t0 + Duration::from_secs(30),
        );
        assert!(first.is_empty() && summary.is_none());
        let (first, summary) = d.observe(
            &c(&[("drop_hop_limit", 9000), ("drop_bad_csum", 2)]),
            t0 + Duration::from_secs(61),
        );
        assert_eq!(first.len(), 1, "a new reason is reported at once");
        assert!(!first[0].contains("LOOP-PREVENTION"), "{}", first[0]);
        let (first, _) = d.observe(
            &c(&[("drop_port_disabled", 1)]),
            t0 + Duration::from_secs(62),
        );
        assert!(
            first[0].contains(
                "still enabling: the LOOP-PREVENTION column of `ndprelay status` says why"
            ),
            "{}",
            first[0]
        );
        assert_eq!(
            summary.as_deref(),
            Some("dropped in the last 60s: drop_hop_limit +8997")
        );
        let (_, summary) = d.observe(
            &c(&[("drop_hop_limit", 9000), ("drop_bad_csum", 2)]),
            t0 + Duration::from_secs(200),
        );
        assert!(summary.is_none(), "nothing new, nothing said");
    }
}
