//! Rows of the README's reliability table, written by the fault tests that produce them.
//!
//! Each fault test asserts the behaviour its row states, then records the row (with the exit
//! code and time it measured) as JSON under `target/tmp/reliability/`. `scripts/reliability`
//! renders the table from those files and, in CI, checks that README.md's table says what the
//! tests of this run showed: a row without a test that ran, or a test whose row changed, fails.

use std::time::Duration;

use serde_json::json;

/// One row: the fault, how it was injected, and what was observed.
pub struct Row<'a> {
    /// Stable key, also the file name.
    pub id: &'a str,
    pub fault: &'a str,
    pub injected: &'a str,
    pub exit: Option<i32>,
    pub failed_host: &'a str,
    pub rest: &'a str,
    pub rerun: &'a str,
    /// The faulty run's wall time (or the time the row's claim is about).
    pub took: Duration,
}

pub fn record(row: Row) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliability");
    std::fs::create_dir_all(&dir).expect("reliability dir");
    let doc = json!({
        "id": row.id,
        "fault": row.fault,
        "injected": row.injected,
        "exit": row.exit,
        "failed_host": row.failed_host,
        "rest": row.rest,
        "rerun": row.rerun,
        "seconds": (row.took.as_secs_f64() * 10.0).round() / 10.0,
    });
    std::fs::write(dir.join(format!("{}.json", row.id)), doc.to_string()).expect("write row");
}
