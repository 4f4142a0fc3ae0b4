//! Hosts behind a jump host share one session to it: a master and four workers, every host
//! reached through the master (`[defaults] jump_host` in a static inventory file; the file takes
//! `jump_host` only as a default). The master's sshd must see exactly one jump session per run,
//! whatever the number of hosts behind it, and a second (no-op) converge must work the same way.

use crate::common::{counts, json, text, Lab};

const WORKERS: usize = 4;

/// sshd's log lines on the master (its LogLevel raised to DEBUG1 so tunnels are logged).
fn sshd_log(lab: &Lab, cfg: &std::path::Path) -> String {
    lab.sh(cfg, "lab-master", "cat /var/log/sshd-lab.log")
}

/// (accepted logins, connections that carried tunnels, tunnels) in the master's sshd log. sshd
/// logs each direct-tcpip open with the client's channel number, which starts at 0 on every
/// connection: the opens numbered 0 count the connections that carried tunnels.
fn tally(log: &str) -> (usize, usize, usize) {
    let accepted = log.matches("Accepted publickey").count();
    let opens: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ctype direct-tcpip rchan "))
        .collect();
    let connections = opens
        .iter()
        .filter(|l| l.contains("ctype direct-tcpip rchan 0 "))
        .count();
    (accepted, connections, opens.len())
}

#[test]
fn one_session_to_the_jump_host_carries_every_worker() {
    let lab = Lab::up(230, WORKERS);
    let master = lab.address("lab-master");
    let cfg = lab.config(
        "sparkboot.toml",
        "roles = [\"demo\"]\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n",
    );
    lab.sh(
        &cfg,
        "lab-master",
        "echo 'LogLevel DEBUG1' > /etc/ssh/sshd_config.d/01-debug.conf && kill -HUP $(cat /run/sshd.pid) && sleep 0.5 && : > /var/log/sshd-lab.log",
    );

    // A static inventory: every host (the master too) through the master's sshd.
    let mut inv = format!(
        "[defaults]\nuser = \"root\"\nport = 22\nidentity_file = {:?}\njump_host = \"root@{master}:22\"\n\n[master]\nname = \"lab-master\"\naddress = \"{master}\"\n",
        lab.lab_dir().join("id_ed25519")
    );
    for i in 1..=WORKERS {
        let name = format!("lab-worker-{i}");
        inv.push_str(&format!(
            "\n[[workers]]\nname = \"{name}\"\naddress = \"{}\"\n",
            lab.address(&name)
        ));
    }
    let inv_path = lab.path().join("jumped.toml");
    std::fs::write(&inv_path, inv).expect("write inventory");
    let converge = || {
        crate::common::sparkboot([
            "converge",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--inventory",
            inv_path.to_str().expect("utf-8"),
            "--json",
        ])
    };

    let first = converge();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let hosts = counts(&json(&first));
    assert_eq!(hosts.len(), WORKERS + 1);
    for (name, _, changed, failed, unreachable) in &hosts {
        assert!(*changed >= 5, "{name} converged: {}", text(&first));
        assert_eq!((*failed, *unreachable), (0, 0), "{name}");
    }
    // The master's sshd saw two logins (the ONE jump session, and the master's own session
    // through it) and all five tunnels came from a single sshd process: one connection carried
    // every host. Before the pool, that was 5 jump logins + 5 through them.
    let log = sshd_log(&lab, &cfg);
    assert_eq!(
        tally(&log),
        (2 + 1, 1, WORKERS + 1),
        "logins, jump sessions, tunnels on the master's sshd after the first converge (the\n\
         third login is the `sparkboot exec` that reads the log):\n{log}"
    );

    // A second converge changes nothing and again uses one jump session (a new run, a new one).
    let second = converge();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    for (name, _, changed, failed, unreachable) in counts(&json(&second)) {
        assert_eq!(
            (changed, failed, unreachable),
            (0, 0, 0),
            "{name} on the no-op run"
        );
    }
    // Per converge: the jump session and the master's own session through it; per log read:
    // one direct `sparkboot exec`.
    let log = sshd_log(&lab, &cfg);
    assert_eq!(
        tally(&log),
        (2 * 2 + 2, 2, 2 * (WORKERS + 1)),
        "logins, jump sessions, tunnels on the master's sshd after both converges:\n{log}"
    );
}

/// The jump session dies under `sparkboot watch` (its TCP connection is destroyed with `ss -K`,
/// as when the jump host reboots or a middlebox drops it): the next reconcile finds every
/// session lost, opens one new jump session and reconnects every host through it.
#[test]
fn a_dead_jump_session_is_replaced_on_reconnect() {
    use crate::watch::Watcher;
    use std::process::Command;

    let lab = Lab::up(232, 2);
    let master = lab.address("lab-master");
    let inv = std::fs::read_to_string(lab.inventory())
        .expect("inventory")
        .replacen(
            "[defaults]\n",
            &format!("[defaults]\njump_host = \"root@{master}:22\"\n"),
            1,
        );
    let inv_path = lab.path().join("jumped.toml");
    std::fs::write(&inv_path, inv).expect("write inventory");
    let fx = crate::common::fixtures();
    let cfg = lab.path().join("watch.toml");
    std::fs::write(
        &cfg,
        format!(
            "inventory = {inv_path:?}\nroles = [\"demo\"]\nroles_dir = {:?}\ntemplates_dir = {:?}\n[vars]\ndemo_secret = \"first-secret-0123456789\"\n[cluster]\nname = \"jumpwatch\"\nstate_dir = {:?}\n",
            fx.join("roles"),
            fx.join("templates"),
            lab.path().join("state"),
        ),
    )
    .expect("config");
    let w = Watcher::start(
        &mut Command::new(crate::common::BIN),
        &cfg,
        lab.path().join("watch.log"),
        &["--interval", "2", "--batch-window", "1"],
    );
    let first = w.wait_for(0, 120, |e| e["event"] == "reconcile");
    assert_eq!(
        (&first["failed"], &first["handshakes"]),
        (&0.into(), &3.into()),
        "{first}"
    );
    let idle = w.wait_for(0, 60, |e| {
        e["event"] == "reconcile" && e["trigger"] == "interval"
    });
    assert_eq!(
        idle["handshakes"], 0,
        "sessions are kept between reconciles: {idle}"
    );

    // The watcher's only TCP connection to the master's sshd is the jump session (every host,
    // the master too, rides on it through a socket pair).
    let pid = w.child.id();
    let listing = Command::new("ss")
        .args(["-tnpH", &format!("dst {master} and dport = :22")])
        .output()
        .expect("ss");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    let ours: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .collect();
    assert_eq!(ours.len(), 1, "one jump session:\n{listing}");
    let sport = ours[0]
        .split_whitespace()
        .nth(3)
        .and_then(|local| local.rsplit(':').next())
        .expect("local port");
    let seen = w.events().len();
    let killed = Command::new("ss")
        .args([
            "-K",
            "-tn",
            &format!("dst {master} and dport = :22 and sport = :{sport}"),
        ])
        .output()
        .expect("ss -K");
    assert!(killed.status.success(), "ss -K failed");

    // The next reconcile: every host reconnects (3 handshakes) through a new jump session.
    let healed = w.wait_for(seen, 60, |e| {
        e["event"] == "reconcile" && e["handshakes"] != 0
    });
    assert_eq!(
        (&healed["failed"], &healed["handshakes"], &healed["changed"]),
        (&0.into(), &3.into(), &0.into()),
        "{healed}"
    );
    let after = Command::new("ss")
        .args(["-tnpH", &format!("dst {master} and dport = :22")])
        .output()
        .expect("ss");
    let after = String::from_utf8_lossy(&after.stdout).into_owned();
    let now: Vec<&str> = after
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .collect();
    assert_eq!(now.len(), 1, "again exactly one jump session:\n{after}");
    assert!(
        !now[0].contains(&format!(":{sport} ")),
        "a new one:\n{after}"
    );
}
