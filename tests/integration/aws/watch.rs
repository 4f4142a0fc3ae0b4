//! `sparkboot watch` against the module on moto: nobody runs converge. moto emits no Auto
//! Scaling or EC2 events and implements neither CompleteLifecycleAction nor
//! RecordLifecycleActionHeartbeat, so the test puts events on the module's queue in the shape
//! EventBridge delivers them (tests/terraform/run.sh shows the module's rules route a
//! PutEvents to that queue), drives the group in moto, and checks the lifecycle answers through
//! watch's `--json` decisions and moto's request recording.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use super::harness::{
    add_node, apply_example, assert_within, complete_vars, copy_module, demo_config, empty_lab,
    inventory, lab_spark, lab_spark_sha512, serve, terraform_outputs, workdir, Aws, Moto, REGION,
};
use crate::common::*;
use crate::watch::{alive, libc_signal::Signal, until, Watcher};

const CLUSTER: &str = "sb-watch";
/// Nothing else uses this /16.
const SUBNET: &str = "127.152.1.";

fn lifecycle_event(kind: &str, instance: &str, group: &str, hook: &str, token: &str) -> String {
    let (detail_type, transition) = match kind {
        "launch" => (
            "EC2 Instance-launch Lifecycle Action",
            "autoscaling:EC2_INSTANCE_LAUNCHING",
        ),
        _ => (
            "EC2 Instance-terminate Lifecycle Action",
            "autoscaling:EC2_INSTANCE_TERMINATING",
        ),
    };
    json!({
        "version": "0", "id": format!("evt-{token}"), "detail-type": detail_type,
        "source": "aws.autoscaling", "account": "123456789012", "time": "2026-12-03T00:00:00Z",
        "region": REGION, "resources": [format!("arn:aws:autoscaling:{REGION}:123456789012:autoScalingGroup:x:autoScalingGroupName/{group}")],
        "detail": {"LifecycleActionToken": token, "AutoScalingGroupName": group,
                   "LifecycleHookName": hook, "EC2InstanceId": instance,
                   "LifecycleTransition": transition, "NotificationMetadata": "",
                   "Origin": "EC2", "Destination": "AutoScalingGroup"}
    })
    .to_string()
}

fn interruption(instance: &str) -> String {
    json!({
        "version": "0", "id": format!("spot-{instance}"), "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2", "account": "123456789012", "time": "2026-12-03T00:00:00Z", "region": REGION,
        "resources": [format!("arn:aws:ec2:{REGION}a:instance/{instance}")],
        "detail": {"instance-id": instance, "instance-action": "terminate"}
    })
    .to_string()
}

/// moto's recording of the requests it received (one JSON object per line).
fn recorded(moto: &Moto) -> String {
    ureq::get(&format!(
        "{}/moto-api/recorder/download-recording",
        moto.endpoint
    ))
    .call()
    .ok()
    .and_then(|r| r.into_string().ok())
    .unwrap_or_default()
}

/// How many CompleteLifecycleAction requests moto received for `token` (bodies are recorded
/// base64-encoded).
fn completes_for(recording: &str, token: &str) -> usize {
    use base64::Engine;
    recording
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| {
            let body = r["body"].as_str().unwrap_or_default();
            if r["body_encoded"] == true {
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            } else {
                body.to_string()
            }
        })
        .filter(|b| {
            b.contains("Action=CompleteLifecycleAction")
                && (b.contains(&format!("LifecycleActionToken={token}&"))
                    || b.ends_with(&format!("LifecycleActionToken={token}")))
        })
        .count()
}

struct Cluster<'a> {
    moto: &'a Moto,
    aws: Aws,
    lab: Lab,
    spec: String,
    asg: String,
    queue: String,
    hook: String,
}

impl Cluster<'_> {
    fn workers(&self, config: &Path) -> Vec<(String, String)> {
        inventory(self.moto, config, &self.spec).1
    }

    /// Scales the group to `n` and gives every new instance a lab node; returns the new ones.
    fn scale(&self, config: &Path, n: i32) -> Vec<(String, String)> {
        let before = self.workers(config);
        self.aws.set_capacity(&self.asg, n);
        let after = self.workers(config);
        let new: Vec<(String, String)> =
            after.into_iter().filter(|w| !before.contains(w)).collect();
        for (id, address) in &new {
            assert!(
                address.starts_with(SUBNET),
                "{address} is outside the test's subnet"
            );
            add_node(&self.lab, id, address);
        }
        new
    }

    fn launch(&self, id: &str) -> String {
        let token = format!("tok-{id}");
        self.aws.send(
            &self.queue,
            &lifecycle_event("launch", id, &self.asg, &self.hook, &token),
        );
        token
    }

    fn watch(&self, config: &Path, log: &str, extra: &[&str]) -> Watcher {
        let mut cmd = Command::new(BIN);
        self.moto.env(&mut cmd);
        let mut args = vec!["--inventory", self.spec.as_str()];
        args.extend_from_slice(extra);
        Watcher::start(&mut cmd, config, self.lab.path().join(log), &args)
    }
}

fn completes(w: &Watcher, token: &str) -> Vec<Value> {
    w.events()
        .into_iter()
        .filter(|e| e["event"] == "lifecycle_complete" && e["token"] == token)
        .collect()
}

#[test]
fn watch_heals_spot_churn_on_the_module_with_nobody_running_converge() {
    require_root();
    let moto = Moto::start();
    let _ = ureq::post(&format!(
        "{}/moto-api/recorder/start-recording",
        moto.endpoint
    ))
    .call();
    let work = workdir("sparkboot-watch-");
    let example = copy_module(work.path());
    let vars = complete_vars(CLUSTER, "127.152.0.0/16", "127.152.1.0/24");
    apply_example(&moto, work.path(), &example, vars, None);
    let outputs = terraform_outputs(&moto, &example);
    let tf = &outputs["sparkboot_inventory"]["value"];
    let text_of = |v: &Value| v.as_str().expect("an output").to_string();
    let dlq = text_of(&outputs["watch_dlq_url"]["value"]);
    let c = Cluster {
        moto: &moto,
        aws: Aws::new(&moto.endpoint),
        spec: format!("terraform:{}", example.display()),
        asg: text_of(&tf["workers"]["asg_name"]),
        queue: text_of(&tf["queue_url"]),
        hook: text_of(&tf["launch_hook"]),
        lab: empty_lab(),
    };
    let spark = lab_spark();
    let config = work.path().join("sparkboot.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"{CLUSTER}\"\nstate_dir = {state:?}\n[spark]\nsource = \"file://{src}\"\nsha512 = \"{sha}\"\ndistribution = \"push\"\nregistration_timeout_secs = 120\n# No Maven repository on this machine: the S3A connector (on by default with this\n# bucket-carrying inventory) stays off.\ns3a = false\n[aws]\nidentity_file = {key:?}\n",
            state = work.path().join("state"),
            src = spark.display(),
            sha = lab_spark_sha512(),
            key = c.lab.lab_dir().join("id_ed25519"),
        ),
    )
    .expect("config");
    // Lab nodes serve exactly the addresses discovery reports, before anything connects.
    let (master, workers, _) = inventory(&moto, &config, &c.spec);
    assert_within(SUBNET, &master, &workers);
    serve(&c.lab, &master, &workers, &[]);

    // The watcher brings the whole cluster up from bare nodes.
    let w = c.watch(
        &config,
        "watch-1.log",
        &["--interval", "30", "--batch-window", "2"],
    );
    let first = w.wait_for(0, 400, |e| e["event"] == "reconcile");
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(alive(&master).len(), 2);

    // Scale out 2 -> 4: launch events, both new workers ALIVE, each action answered once.
    let new = c.scale(&config, 4);
    assert_eq!(new.len(), 2, "{new:?}");
    let sent = Instant::now();
    let tokens: Vec<String> = new.iter().map(|(id, _)| c.launch(id)).collect();
    until(300, "both new workers ALIVE", || {
        let a = alive(&master);
        new.iter().all(|(_, addr)| a.contains(addr))
    });
    eprintln!(
        "watch: 2 launch events -> both ALIVE in {:.1}s",
        sent.elapsed().as_secs_f64()
    );
    for t in &tokens {
        let done = w.wait_for(0, 120, |e| {
            e["event"] == "lifecycle_complete" && e["token"] == t.as_str()
        });
        assert_eq!(done["result"], "CONTINUE", "{done}");
    }

    // A spot interruption warning while a job runs: the worker is decommissioned (its log says
    // so), the job still gives the right answer, the master no longer lists it.
    let victim = workers[0].clone();
    let job = "cd /tmp; . /opt/spark/conf/spark-env.sh; nohup /opt/spark/bin/spark-sql --master spark://$SPARK_MASTER_HOST:7077 -e 'SELECT count(*), sum(s) FROM (SELECT id % 1000 k, sum(id) s FROM range(0, 200000000, 1, 40) GROUP BY k)' > /tmp/job.out 2> /tmp/job.err &";
    let exec = |host: &str, script: &str| {
        let out = moto.sparkboot(&[
            "exec",
            "--json",
            "--config",
            config.to_str().expect("utf-8"),
            "--inventory",
            &c.spec,
            "--limit",
            host,
            "--sudo",
            "--",
            "sh",
            "-c",
            script,
        ]);
        exec_stdout(&out, host, script)
    };
    exec("master", job);
    until(120, "the job runs executors on the victim", || {
        exec(
            &victim.0,
            "pgrep -f '[C]oarseGrainedExecutorBackend' >/dev/null && echo yes || true",
        )
        .contains("yes")
    });
    let seen = w.events().len();
    c.aws.send(&c.queue, &interruption(&victim.0));
    let done = w.wait_for(seen, 240, |e| {
        e["event"] == "decommissioned" && e["instance"] == victim.0.as_str()
    });
    eprintln!("watch: notice -> decommissioned: {done}");
    until(400, "the job finished", || {
        !exec("master", "cat /tmp/job.out").trim().is_empty()
    });
    assert_eq!(
        exec("master", "cat /tmp/job.out").trim(),
        "1000\t19999999900000000",
        "{}",
        exec("master", "tail -20 /tmp/job.err")
    );
    assert!(exec(&victim.0, "cat /var/log/spark/*Worker*.out").contains("Decommission worker"));
    until(
        60,
        "the master no longer lists the decommissioned worker",
        || !alive(&master).contains(&victim.1),
    );

    // SIGKILL during a converge, then a new watcher: the worker joins, and its launch action is
    // answered exactly once (in the logs and in what moto received).
    let late = c.scale(&config, 5);
    assert_eq!(late.len(), 1, "{late:?}");
    let seen = w.events().len();
    let token = c.launch(&late[0].0);
    w.wait_for(seen, 120, |e| {
        e["event"] == "reconcile_start"
            && e["launching"]
                .as_array()
                .is_some_and(|l| l.iter().any(|i| i == late[0].0.as_str()))
    });
    w.signal(Signal::Kill);
    let mut w = w;
    let _ = w.child.wait();
    let w2 = c.watch(
        &config,
        "watch-2.log",
        &["--interval", "30", "--batch-window", "2"],
    );
    until(300, "the late worker ALIVE", || {
        alive(&master).contains(&late[0].1)
    });
    let answered = w2.wait_for(0, 120, |e| {
        e["event"] == "lifecycle_complete" && e["token"] == token.as_str()
    });
    assert_eq!(answered["result"], "CONTINUE");
    assert_eq!(
        completes(&w, &token).len() + completes(&w2, &token).len(),
        1
    );
    let recording = recorded(&moto);
    for t in tokens.iter().chain(std::iter::once(&token)) {
        assert_eq!(
            completes_for(&recording, t),
            1,
            "moto received one answer for {t}"
        );
    }

    // A terminate lifecycle action (scale-in): decommissioned, then answered CONTINUE.
    let leaving = workers[1].clone();
    let seen = w2.events().len();
    let term_token = format!("term-{}", leaving.0);
    c.aws.send(
        &c.queue,
        &lifecycle_event(
            "terminate",
            &leaving.0,
            &c.asg,
            &text_of(&tf["terminate_hook"]),
            &term_token,
        ),
    );
    let gone = w2.wait_for(seen, 180, |e| {
        e["event"] == "decommissioned" && e["instance"] == leaving.0.as_str()
    });
    assert!(
        gone["outcome"]
            .as_str()
            .unwrap_or_default()
            .contains("executors_left=0"),
        "{gone}"
    );
    let answered = w2.wait_for(seen, 120, |e| {
        e["event"] == "lifecycle_complete" && e["token"] == term_token.as_str()
    });
    assert_eq!(answered["result"], "CONTINUE", "{answered}");
    until(
        60,
        "the master no longer lists the scaled-in worker",
        || !alive(&master).contains(&leaving.1),
    );
    assert!(!exec("master", "cat /opt/spark/conf/workers").contains(&leaving.1));

    // Garbage on the queue: logged, dead-lettered; the watcher keeps going.
    let seen = w2.events().len();
    c.aws.send(&c.queue, "this is not an event {");
    w2.wait_for(seen, 60, |e| e["event"] == "message_ignored");
    until(120, "the garbage reaches the dead-letter queue", || {
        c.aws
            .peek(&dlq)
            .iter()
            .any(|b| b.contains("this is not an event"))
    });
    let seen = w2.events().len();
    w2.wait_for(seen, 90, |e| e["event"] == "reconcile");
    assert!(w2.child.id() > 0);
    w2.signal(Signal::Term);
    let mut w2 = w2;
    let _ = w2.child.wait();

    // A burst of 10 launches is converged in one batch (or a few), not ten converges: a
    // watcher with a light role (no Spark daemons) over the same group.
    let light = work.path().join("light.toml");
    demo_config(
        &light,
        "burst",
        "burst-secret-0123456789",
        &work.path().join("state"),
        &c.lab,
        "",
        "",
    );
    let b = c.watch(
        &light,
        "burst.log",
        &["--interval", "600", "--batch-window", "3"],
    );
    b.wait_for(0, 300, |e| e["event"] == "reconcile");
    let burst = c.scale(&light, 15);
    assert_eq!(burst.len(), 10, "{burst:?}");
    let seen = b.events().len();
    let tokens: Vec<String> = burst.iter().map(|(id, _)| c.launch(id)).collect();
    let started = Instant::now();
    until(300, "all ten launch actions answered", || {
        tokens.iter().all(|t| !completes(&b, t).is_empty())
    });
    let batches = b
        .events()
        .into_iter()
        .skip(seen)
        .filter(|e| e["event"] == "reconcile" && e["trigger"] == "event")
        .count();
    eprintln!(
        "watch: 10 launches answered in {:.1}s over {batches} converge(s)",
        started.elapsed().as_secs_f64()
    );
    assert!(
        (1..=3).contains(&batches),
        "{batches} converges for one burst"
    );
}
