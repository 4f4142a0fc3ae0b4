//! Golden plan cases: captured facts and evaluated steps in, expected changes out.

use super::*;
use crate::facts::{PathFact, ServiceFact, SystemFacts, UserFact};
use crate::roles::model::*;
use crate::roles::{Resource, Step};

fn step(name: &str, resource: Resource) -> Step {
    Step {
        role: "t".into(),
        phase: 0,
        name: name.into(),
        notify: vec![],
        resource,
    }
}

fn facts() -> Facts {
    Facts {
        system: SystemFacts {
            hostname: "n1".into(),
            package_manager: "apt".into(),
            java_major: 17,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn dir(path: &str, mode: &str) -> Resource {
    Resource::Directory(DirectorySpec {
        path: path.into(),
        owner: "spark".into(),
        group: "spark".into(),
        mode: mode.into(),
    })
}

fn file(path: &str, content: &str) -> Resource {
    Resource::File {
        spec: FileSpec {
            path: path.into(),
            template: None,
            content: Some(content.into()),
            owner: "root".into(),
            group: "root".into(),
            mode: "0644".into(),
            comment: "#".into(),
            secret: false,
        },
        content: content.into(),
    }
}

fn reasons(planned: &[PlannedStep]) -> Vec<(bool, String)> {
    planned
        .iter()
        .map(|p| (matches!(p.action, Action::Change(_)), p.report().reason))
        .collect()
}

#[test]
fn fresh_host_creates_everything_in_order() {
    let steps = vec![
        step(
            "group",
            Resource::Group(GroupSpec {
                name: "spark".into(),
                system: true,
            }),
        ),
        step(
            "user",
            Resource::User(UserSpec {
                name: "spark".into(),
                group: Some("spark".into()),
                system: true,
                home: None,
                shell: None,
            }),
        ),
        step("dir", dir("/opt/data", "0750")),
        step("file", file("/opt/data/x.conf", "a=1\n")),
    ];
    let planned = plan(&steps, &facts(), &PlanOptions::default()).expect("plans");
    assert_eq!(
        reasons(&planned),
        vec![
            (true, "create group spark".into()),
            (true, "create user spark".into()),
            (true, "create /opt/data".into()),
            (true, "create /opt/data/x.conf".into()),
        ]
    );
}

#[test]
fn converged_host_plans_no_change() {
    let content = "a=1\n";
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
    let mut f = facts();
    f.groups.insert("spark".into(), Some(998));
    f.users.insert(
        "spark".into(),
        Some(UserFact {
            uid: 999,
            gid: 998,
            home: "/var/lib/spark".into(),
            shell: "/bin/sh".into(),
        }),
    );
    f.paths.insert(
        "/opt/data".into(),
        PathFact::Dir {
            owner: "spark".into(),
            group: "spark".into(),
            mode: 0o750,
        },
    );
    f.paths.insert(
        "/opt/data/x.conf".into(),
        PathFact::File {
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            sha256: sha,
        },
    );
    let steps = vec![
        step(
            "group",
            Resource::Group(GroupSpec {
                name: "spark".into(),
                system: true,
            }),
        ),
        step(
            "user",
            Resource::User(UserSpec {
                name: "spark".into(),
                group: None,
                system: true,
                home: None,
                shell: None,
            }),
        ),
        step("dir", dir("/opt/data", "0750")),
        step("file", file("/opt/data/x.conf", content)),
    ];
    let planned = plan(&steps, &f, &PlanOptions::default()).expect("plans");
    assert!(
        planned
            .iter()
            .all(|p| matches!(p.action, Action::Unchanged(_))),
        "{:?}",
        reasons(&planned)
    );
}

#[test]
fn mode_drift_fixes_mode_without_rewriting() {
    let mut f = facts();
    f.paths.insert(
        "/opt/data".into(),
        PathFact::Dir {
            owner: "spark".into(),
            group: "spark".into(),
            mode: 0o777,
        },
    );
    let planned = plan(
        &[step("dir", dir("/opt/data", "0750"))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    assert_eq!(
        reasons(&planned),
        vec![(true, "fix /opt/data: mode 0777 -> 0750".into())]
    );
}

#[test]
fn moving_a_symlink_makes_files_below_it_stale() {
    let mut f = facts();
    f.paths.insert(
        "/opt/spark".into(),
        PathFact::Link {
            target: "/opt/spark-3.5.6".into(),
        },
    );
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"same\n"));
    f.paths.insert(
        "/opt/spark/conf/x".into(),
        PathFact::File {
            owner: "root".into(),
            group: "root".into(),
            mode: 0o644,
            sha256: sha,
        },
    );
    let steps = vec![
        step(
            "link",
            Resource::Symlink(SymlinkSpec {
                path: "/opt/spark".into(),
                target: "/opt/spark-3.5.7".into(),
            }),
        ),
        step("conf", file("/opt/spark/conf/x", "same\n")),
    ];
    let planned = plan(&steps, &f, &PlanOptions::default()).expect("plans");
    // Without invalidation the file would look up to date (it was probed through the old link).
    assert_eq!(
        reasons(&planned),
        vec![
            (
                true,
                "repoint /opt/spark from /opt/spark-3.5.6 to /opt/spark-3.5.7".into()
            ),
            (true, "create /opt/spark/conf/x".into()),
        ]
    );
}

#[test]
fn service_starts_only_when_stopped() {
    let svc = ServiceSpec {
        name: "demo".into(),
        user: "root".into(),
        start: "start-demo".into(),
        stop: "stop-demo".into(),
        pidfile: "/run/demo.pid".into(),
        cmdline_match: None,
        systemd_unit: Some("demo.service".into()),
    };
    let mut f = facts();
    let planned = plan(
        &[step("svc", Resource::Service(svc.clone()))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    let Action::Change(c) = &planned[0].action else {
        panic!("expected a start")
    };
    assert_eq!(c.starts_service.as_deref(), Some("demo"));
    assert!(
        c.script.contains("start-demo"),
        "no systemd: the fallback start runs"
    );
    f.services.insert(
        "demo".into(),
        ServiceFact {
            running: true,
            pid: Some(12),
        },
    );
    let planned = plan(
        &[step("svc", Resource::Service(svc))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    assert_eq!(
        reasons(&planned),
        vec![(false, "demo is running (pid 12)".into())]
    );
}

#[test]
fn authorized_key_replaces_a_stale_tagged_key_and_keeps_others() {
    let mut f = facts();
    f.users.insert(
        "spark".into(),
        Some(UserFact {
            uid: 1,
            gid: 1,
            home: "/home/spark".into(),
            shell: String::new(),
        }),
    );
    f.authorized_keys.insert(
        "spark".into(),
        Some("ssh-ed25519 AAAAop operator\nssh-ed25519 AAAAold sparkboot-cluster\n".into()),
    );
    let k = AuthorizedKeySpec {
        user: "spark".into(),
        key: "ssh-ed25519 AAAAnew".into(),
        options: "from=\"127.1.0.2\"".into(),
        tag: "sparkboot-cluster".into(),
    };
    let planned = plan(
        &[step("key", Resource::AuthorizedKey(k))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    let Action::Change(c) = &planned[0].action else {
        panic!("expected a change")
    };
    assert_eq!(
        c.reason,
        "replace 1 stale key(s) tagged sparkboot-cluster in spark's authorized_keys"
    );
    let Some(Payload::Bytes(b)) = &c.stdin else {
        panic!("content on stdin")
    };
    assert_eq!(
        String::from_utf8_lossy(b),
        "ssh-ed25519 AAAAop operator\nfrom=\"127.1.0.2\" ssh-ed25519 AAAAnew sparkboot-cluster\n"
    );
}

#[test]
fn download_is_skipped_when_the_marker_matches() {
    let sha = "ab".repeat(64);
    let d = DownloadSpec {
        url: "http://x/s.tgz".into(),
        sha512: sha.clone(),
        dest: "/opt/s".into(),
        owner: "root".into(),
        group: "root".into(),
        source: "url".into(),
    };
    let mut f = facts();
    let planned = plan(
        &[step("dl", Resource::Download(d.clone()))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    assert!(matches!(planned[0].action, Action::Change(_)));
    f.contents
        .insert("/opt/s/.sparkboot-sha512".into(), Some(format!("{sha}\n")));
    let planned = plan(
        &[step("dl", Resource::Download(d))],
        &f,
        &PlanOptions::default(),
    )
    .expect("plans");
    assert!(matches!(planned[0].action, Action::Unchanged(_)));
}

#[test]
fn command_guards() {
    let c = CommandSpec {
        run: "make it".into(),
        creates: Some("/opt/made".into()),
        unless: None,
        user: "root".into(),
    };
    let mut f = facts();
    assert!(matches!(
        plan(
            &[step("c", Resource::Command(c.clone()))],
            &f,
            &PlanOptions::default()
        )
        .expect("plans")[0]
            .action,
        Action::Change(_)
    ));
    f.paths.insert("/opt/made".into(), PathFact::Other);
    assert!(matches!(
        plan(
            &[step("c", Resource::Command(c))],
            &f,
            &PlanOptions::default()
        )
        .expect("plans")[0]
            .action,
        Action::Unchanged(_)
    ));
}

#[test]
fn package_without_a_manager_is_a_clear_error() {
    let mut f = facts();
    f.system.package_manager = "none".into();
    let p = PackageSpec {
        apt: vec!["openjdk-17-jdk-headless".into()],
        dnf: vec![],
    };
    let err = plan(
        &[step("java", Resource::Package(p))],
        &f,
        &PlanOptions::default(),
    )
    .expect_err("no manager");
    assert!(
        err.to_string().contains("no supported package manager"),
        "{err}"
    );
}
