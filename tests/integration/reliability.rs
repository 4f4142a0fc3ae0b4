//! Rows of the README's reliability table, written by the fault tests that produce them.
//!
//! Each fault test asserts the behaviour its row states, then records the row (with the exit
//! code and time it measured) as JSON under `target/tmp/reliability/`. `scripts/reliability`
//! renders the table from those files and, in CI, checks that README.md's table says what the
//! tests of this run showed: a row without a test that ran, or a test whose row changed, fails.
//! A case that runs on both lab flavours records its row once per flavour; the table shows it
//! once, with the flavours it was seen on and each one's time.

use std::time::Duration;

use serde_json::json;

use crate::common::Flavour;

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

/// Records a row seen on plain lab nodes.
pub fn record(row: Row) {
    record_on(Flavour::Plain, row)
}

/// Records a row seen on nodes of `flavour`.
pub fn record_on(flavour: Flavour, row: Row) {
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
        "nodes": flavour.name(),
        "seconds": (row.took.as_secs_f64() * 10.0).round() / 10.0,
    });
    let file = format!("{}.{}.json", row.id, flavour.name());
    std::fs::write(dir.join(file), doc.to_string()).expect("write row");
}
