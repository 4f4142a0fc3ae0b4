//! The history server on the master: a 1+1 lab with Spark converged from the lab's own
//! sparkboot.toml, a spark-sql application run on the master as the spark user, and the history
//! server's REST API (read from this machine on the master's loopback address) listing it as
//! completed. A second converge changes nothing, and the event log is the spark user's and not
//! readable by others.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// The applications the history server lists, or nothing while it is not answering.
fn applications(master: &str) -> Vec<Value> {
    let Ok(resp) = ureq::get(&format!("http://{master}:18080/api/v1/applications"))
        .timeout(Duration::from_secs(5))
        .call()
    else {
        return Vec::new();
    };
    resp.into_string()
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn converge(lab: &Lab, cfg: &std::path::Path) -> Value {
    let out = lab.run("converge", cfg, &["--json"]);
    assert!(out.status.success(), "converge failed:\n{}", text(&out));
    json(&out)
}

#[test]
fn history_server_lists_finished_applications() {
    let started = Instant::now();
    let lab = Lab::up_with_spark(90, 1);
    let cfg = lab.lab_dir().join("sparkboot.toml");
    let master = lab.address("lab-master");

    converge(&lab, &cfg);
    let conf = lab.sh(
        &cfg,
        "lab-master",
        "cat /opt/spark/conf/spark-defaults.conf",
    );
    assert!(
        conf.contains("spark.history.fs.logDirectory       file:/var/lib/spark/events"),
        "{conf}"
    );
    // The UI listens on the master's address only (Java shows it IPv4-mapped), never on a
    // wildcard address.
    let listen = lab.sh(&cfg, "lab-master", "ss -Hltn 'sport = :18080'");
    assert!(
        listen.contains(&format!("{master}]:18080")) || listen.contains(&format!("{master}:18080")),
        "{listen}"
    );
    assert!(
        !listen.contains("0.0.0.0") && !listen.contains("[::]") && !listen.contains("*:18080"),
        "{listen}"
    );

    let sql = format!(
        "runuser -u spark -- /opt/spark/bin/spark-sql --master spark://{master}:7077 --name history-check -e 'SELECT sum(id) FROM range(1000)' 2>/dev/null"
    );
    assert_eq!(lab.sh(&cfg, "lab-master", &sql).trim(), "499500");

    let deadline = Instant::now() + Duration::from_secs(90);
    let app = loop {
        let apps = applications(&master);
        let done = apps.into_iter().find(|a| {
            a["name"] == "history-check"
                && a["attempts"]
                    .as_array()
                    .is_some_and(|at| at.iter().any(|t| t["completed"] == true))
        });
        if let Some(app) = done {
            break app;
        }
        assert!(
            Instant::now() < deadline,
            "the history server never listed the application as completed: {:?}",
            applications(&master)
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let id = app["id"].as_str().expect("application id");

    // The event log (Spark 4 rolls it: a directory eventlog_v2_<id> holding events_N_<id>;
    // 3.5 writes one file <id>): every part the spark user's, nothing for others.
    let stat = lab.sh(
        &cfg,
        "lab-master",
        &format!("find /var/lib/spark/events -name '*{id}*' -exec stat -c '%U %G %a %n' {{}} +"),
    );
    assert!(!stat.trim().is_empty(), "no event log for {id}");
    for line in stat.lines() {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("spark"), "{stat}");
        assert_eq!(words.next(), Some("spark"), "{stat}");
        let mode = u32::from_str_radix(words.next().expect("mode"), 8).expect("octal");
        assert_eq!(mode & 0o007, 0, "world-readable event log: {stat}");
    }

    // `status` reports it on the master.
    let st = json(&lab.run("status", &cfg, &["--json"]));
    let m = st["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["role"] == "master")
        .expect("master")
        .clone();
    assert_eq!(m["history_running"], true, "{st:#}");

    // Re-running converge changes nothing (and so restarts nothing).
    let again = converge(&lab, &cfg);
    for (name, _, changed, failed, unreachable) in counts(&again) {
        assert_eq!(
            (changed, failed, unreachable),
            (0, 0, 0),
            "{name}: {again:#}"
        );
    }
    // Still one handshake and one round trip per host: the history server adds no command.
    for h in again["hosts"].as_array().expect("hosts") {
        assert_eq!(
            (&h["handshakes"], &h["commands"]),
            (&1.into(), &1.into()),
            "{h}"
        );
    }
    // Turned off: the running server stops, and a re-run stays a no-op.
    let off = lab.lab_dir().join("history-off.toml");
    let text = std::fs::read_to_string(&cfg).expect("lab config");
    assert_eq!(
        text.lines().rfind(|l| l.starts_with('[')),
        Some("[spark]"),
        "the line goes into the last table"
    );
    std::fs::write(&off, format!("{text}history_server = false\n")).expect("write config");
    let stopped = converge(&lab, &off);
    let gone = lab.sh(
        &off,
        "lab-master",
        "for i in $(seq 30); do ss -Hltn 'sport = :18080' | grep -q . || { echo gone; break; }; sleep 1; done",
    );
    if gone.trim() != "gone" {
        let why = lab.sh(
            &off,
            "lab-master",
            "ps -eo pid,ppid,user,etimes,args | grep -v ' ps ' | cut -c1-220; ls -l /var/lib/spark/run; cat /var/lib/spark/run/*.pid; tail -n 30 /var/log/spark/*HistoryServer*.out",
        );
        panic!("the history server still listens:\n{why}\nthe converge that turned it off: {stopped:#}");
    }
    let again = converge(&lab, &off);
    for (name, _, changed, failed, unreachable) in counts(&again) {
        assert_eq!(
            (changed, failed, unreachable),
            (0, 0, 0),
            "{name}: {again:#}"
        );
    }
    eprintln!("history test took {:.1} s", started.elapsed().as_secs_f64());
}
