//! The watcher's log: one human line per event and decision on stdout, or with `--json` one
//! JSON object per line (`{"ts_ms", "event", ...}`, schema 1, fields only ever added), with
//! timings, so a test or an operator's tooling can follow every decision.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

pub fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub fn now_secs() -> u64 {
    (now_ms() / 1000) as u64
}

/// `YYYY-MM-DD HH:MM:SS UTC` for unix seconds (civil-from-days, no time zone database needed).
pub fn clock(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub struct Log {
    json: bool,
}

impl Log {
    pub fn new(json: bool) -> Log {
        Log { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Records `event` with its fields; `text` is the human line.
    /// An `error` event: `context: error` for people, `{"error": ...}` for --json.
    pub fn error(&self, context: &str, error: impl std::fmt::Display) {
        let e = error.to_string();
        self.record("error", &format!("{context}: {e}"), json!({ "error": e }));
    }

    pub fn record(&self, event: &str, text: &str, fields: Value) {
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut obj = Map::new();
            obj.insert("schema".into(), json!(1));
            obj.insert("ts_ms".into(), json!(now_ms() as u64));
            obj.insert("event".into(), json!(event));
            if let Value::Object(f) = fields {
                obj.extend(f);
            }
            let _ = writeln!(out, "{}", Value::Object(obj));
        } else {
            let _ = writeln!(out, "{} watch: {text}", clock(now_secs()));
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_formats_utc() {
        assert_eq!(clock(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(clock(1_796_256_000 + 3_661), "2026-12-03 01:01:01 UTC");
        assert_eq!(clock(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
