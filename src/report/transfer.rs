//! How long to wait: the words of a transfer's progress (bytes done of the total, rate, time
//! left) and of the hosts-done line, and the parser of the progress lines a node's download
//! prints. All pure: numbers in, text out, so they are tested without a terminal; the bars
//! themselves are in the parent module.

use std::time::Duration;

/// What a node's download prints on stdout, once a second while it runs:
/// `<MARKER> <bytes so far> <total bytes, 0 when unknown>`. Only numbers follow the marker, so
/// nothing of the URL (a presigned one is a credential) can reach the controller's screen.
pub const MARKER: &str = "sparkboot-progress";

/// `1536` -> `1.5 KiB`; below 1 KiB, bytes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `75 s` -> `1 min 15 s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// One transfer's progress: `120.0 MiB / 316.2 MiB (37%), 12.0 MiB/s, 16 s left`. Without a
/// total, bytes and rate only; before a rate means anything (under half a second, or nothing
/// yet), no rate and no time left.
pub fn transfer_line(done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let total = total.filter(|t| *t > 0);
    let mut line = match total {
        Some(t) => {
            let pct = (done.min(t) as f64 * 100.0 / t as f64).floor() as u64;
            format!("{} / {} ({pct}%)", human_bytes(done), human_bytes(t))
        }
        None => human_bytes(done),
    };
    let secs = elapsed.as_secs_f64();
    if secs >= 0.5 && done > 0 {
        let rate = done as f64 / secs;
        line.push_str(&format!(", {}/s", human_bytes(rate as u64)));
        if let Some(t) = total {
            let left = t.saturating_sub(done) as f64 / rate;
            line.push_str(&format!(
                ", {} left",
                human_duration(Duration::from_secs_f64(left.ceil()))
            ));
        }
    }
    line
}

/// A finished transfer: `downloaded 301.5 MiB in 3 s (89.0 MiB/s)`.
pub fn transfer_done(verb_past: &str, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let mut line = format!(
        "{verb_past} {} in {}",
        human_bytes(bytes),
        human_duration(Duration::from_secs_f64(secs.round()))
    );
    if secs >= 0.5 {
        line.push_str(&format!(
            " ({}/s)",
            human_bytes((bytes as f64 / secs) as u64)
        ));
    }
    line
}

/// The overall line: `phase 0: 3/10 hosts done` (no stage: `3/10 hosts done`).
pub fn hosts_line(stage: &str, done: u64, total: u64) -> String {
    if stage.is_empty() {
        format!("{done}/{total} hosts done")
    } else {
        format!("{stage}: {done}/{total} hosts done")
    }
}

/// Collects a command's stdout as it arrives and yields the latest progress line's numbers.
#[derive(Debug, Default)]
pub struct ProgressLines {
    pending: Vec<u8>,
}

impl ProgressLines {
    /// Feeds a chunk; returns `(done, total)` of the last complete progress line in it, if any.
    /// Lines that are not progress lines are ignored; an unfinished line waits for the next
    /// chunk (kept to 256 bytes: a progress line is short, anything longer is not one).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<(u64, Option<u64>)> {
        let mut latest = None;
        for &b in chunk {
            if b == b'\n' {
                if let Some(p) = parse_line(&self.pending) {
                    latest = Some(p);
                }
                self.pending.clear();
            } else if self.pending.len() < 256 {
                self.pending.push(b);
            }
        }
        latest
    }
}

fn parse_line(line: &[u8]) -> Option<(u64, Option<u64>)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    if words.next()? != MARKER {
        return None;
    }
    let done = words.next()?.parse().ok()?;
    let total = match words.next() {
        Some(t) => Some(t.parse::<u64>().ok()?).filter(|t| *t > 0),
        None => None,
    };
    words.next().is_none().then_some((done, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(316 * MIB + MIB / 5), "316.2 MiB");
        assert_eq!(human_bytes(3 * 1024 * MIB), "3.0 GiB");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0 s");
        assert_eq!(human_duration(Duration::from_secs(59)), "59 s");
        assert_eq!(human_duration(Duration::from_secs(75)), "1 min 15 s");
        assert_eq!(human_duration(Duration::from_secs(3725)), "1 h 02 min");
    }

    #[test]
    fn a_transfer_with_a_total_shows_share_rate_and_time_left() {
        // 120 MiB of 316 MiB in 10 s: 12 MiB/s, 196 MiB left: 16.3 s, rounded up to 17.
        assert_eq!(
            transfer_line(120 * MIB, Some(316 * MIB), Duration::from_secs(10)),
            "120.0 MiB / 316.0 MiB (37%), 12.0 MiB/s, 17 s left"
        );
        assert_eq!(
            transfer_line(316 * MIB, Some(316 * MIB), Duration::from_secs(79)),
            "316.0 MiB / 316.0 MiB (100%), 4.0 MiB/s, 0 s left"
        );
        // A slow mirror: minutes.
        assert_eq!(
            transfer_line(10 * MIB, Some(310 * MIB), Duration::from_secs(60)),
            "10.0 MiB / 310.0 MiB (3%), 170.7 KiB/s, 30 min 00 s left"
        );
    }

    #[test]
    fn without_a_total_or_a_rate_it_says_only_what_it_knows() {
        assert_eq!(
            transfer_line(5 * MIB, None, Duration::from_secs(2)),
            "5.0 MiB, 2.5 MiB/s"
        );
        assert_eq!(
            transfer_line(5 * MIB, Some(0), Duration::from_secs(2)),
            "5.0 MiB, 2.5 MiB/s"
        );
        assert_eq!(
            transfer_line(0, Some(316 * MIB), Duration::from_secs(3)),
            "0 B / 316.0 MiB (0%)"
        );
        assert_eq!(
            transfer_line(MIB, Some(316 * MIB), Duration::from_millis(100)),
            "1.0 MiB / 316.0 MiB (0%)"
        );
        // More than announced (a wrong Content-Length) never shows more than 100%.
        assert!(transfer_line(2 * MIB, Some(MIB), Duration::from_secs(1)).contains("(100%)"));
    }

    #[test]
    fn a_finished_transfer_says_how_much_and_how_fast() {
        assert_eq!(
            transfer_done("downloaded", 301 * MIB, Duration::from_millis(3400)),
            "downloaded 301.0 MiB in 3 s (88.5 MiB/s)"
        );
        assert_eq!(
            transfer_done("uploaded", 2 * MIB, Duration::from_millis(100)),
            "uploaded 2.0 MiB in 0 s"
        );
    }

    #[test]
    fn the_hosts_line_counts_hosts_done() {
        assert_eq!(hosts_line("phase 0", 3, 10), "phase 0: 3/10 hosts done");
        assert_eq!(hosts_line("", 0, 1), "0/1 hosts done");
    }

    #[test]
    fn progress_lines_are_found_across_chunks_and_anything_else_is_ignored() {
        let mut p = ProgressLines::default();
        assert_eq!(p.feed(b"hello\nsparkboot-progress 10"), None);
        assert_eq!(p.feed(b"24 2048\n"), Some((1024, Some(2048))));
        assert_eq!(
            p.feed(b"sparkboot-progress 1 0\nsparkboot-progress 2 0\n"),
            Some((2, None))
        );
        assert_eq!(p.feed(b"sparkboot-progress 3\n"), Some((3, None)));
        for junk in [
            "sparkboot-progress\n",
            "sparkboot-progress x 1\n",
            "sparkboot-progress 1 2 3\n",
            "sparkboot-progress -1 2\n",
            "sparkboot-progressive 1 2\n",
            "https://bucket/x?X-Amz-Signature=abc\n",
        ] {
            assert_eq!(p.feed(junk.as_bytes()), None, "{junk}");
        }
        // An endless line is cut, not buffered.
        assert_eq!(p.feed(&vec![b'x'; 100_000]), None);
        assert!(p.pending.len() <= 256);
        assert_eq!(p.feed(b"\nsparkboot-progress 7 9\n"), Some((7, Some(9))));
    }
}
