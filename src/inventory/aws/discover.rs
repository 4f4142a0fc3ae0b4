//! Discovery through the AWS API: the master by its tags (or as Terraform recorded it, confirmed
//! against EC2), the workers as the Auto Scaling group's InService members that EC2 reports
//! running.
//!
//! Every list call goes through the SDK paginators. Instances that are not meant to serve yet or
//! any more (Pending, Terminating, Standby, stopped, ...) are left out with a note, because
//! sparkboot must connect only to nodes that should be part of the cluster. A master Terraform
//! recorded must still exist and run, and its current addresses win over the state's. When the
//! group wants more workers than it has in service, a warning says how many are missing and what
//! the group's latest scaling activities give as the reason (spot capacity, a launch template
//! error, ...), because converging fewer workers than asked for is otherwise silent.

use std::net::Ipv4Addr;

use aws_config::SdkConfig;
use aws_sdk_autoscaling::primitives::DateTimeFormat;
use aws_sdk_autoscaling::types::{
    Activity, AutoScalingGroup, Filter as AsgFilter, LifecycleState, ScalingActivityStatusCode,
};
use aws_sdk_ec2::types::Filter;

use super::{api_error, CLUSTER_TAG, ROLE_TAG};

/// One instance, as sparkboot needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub instance_type: String,
    pub zone: String,
}

/// What to look for. `master: None` finds it by tags.
pub struct Query<'a> {
    pub cluster: &'a str,
    pub asg: Option<&'a str>,
    /// The master as Terraform recorded it: confirmed against EC2 (it must exist and be running)
    /// and replaced by what EC2 reports now.
    pub master: Option<Node>,
    /// Also take instances a launch lifecycle hook holds in `Pending:Wait` (what `watch`
    /// configures before the group puts them in service).
    pub launching: bool,
}

pub struct Found {
    pub master: Node,
    pub workers: Vec<Node>,
    /// The workers' group, as found.
    pub asg: String,
    /// Instances left out, and why (printed on stderr).
    pub notes: Vec<String>,
    /// Problems the operator should act on, such as workers the group is missing (printed on
    /// stderr and carried into `converge --json`'s notes).
    pub warnings: Vec<String>,
}

/// `None` when an Auto Scaling member should be converged, else why it is left out. With
/// `launching`, a member a launch hook holds (`Pending:Wait`, `Pending:Proceed`) is taken too.
pub fn asg_exclusion(id: &str, lifecycle: &str, launching: bool) -> Option<String> {
    let held = [
        LifecycleState::PendingWait.as_str(),
        LifecycleState::PendingProceed.as_str(),
    ];
    if launching && held.contains(&lifecycle) {
        return None;
    }
    (lifecycle != LifecycleState::InService.as_str()).then(|| {
        format!("left out {id}: its Auto Scaling lifecycle state is {lifecycle} (only InService instances are converged; run converge again once it is)")
    })
}

/// `None` when EC2 reports the instance running, else why it is left out.
pub fn ec2_exclusion(id: &str, state: &str) -> Option<String> {
    (state != "running").then(|| format!("left out {id}: EC2 reports it {state}"))
}

fn node(i: &aws_sdk_ec2::types::Instance) -> Result<Node, String> {
    let id = i.instance_id().unwrap_or("(no id)").to_string();
    let Some(ip) = i.private_ip_address() else {
        return Err(format!("left out {id}: it has no private IPv4 address"));
    };
    Ok(Node {
        private_ip: ip.to_string(),
        public_ip: i.public_ip_address().map(str::to_string),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        zone: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        id,
    })
}

fn ec2_state(i: &aws_sdk_ec2::types::Instance) -> &str {
    i.state()
        .and_then(|s| s.name())
        .map(|n| n.as_str())
        .unwrap_or("unknown")
}

/// Every instance matching `filters`, through the paginator.
async fn instances(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
) -> Result<Vec<aws_sdk_ec2::types::Instance>, String> {
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("ec2:DescribeInstances", e))?;
        out.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances().iter().cloned()),
        );
    }
    Ok(out)
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

async fn master_by_tags(ec2: &aws_sdk_ec2::Client, cluster: &str) -> Result<Node, String> {
    let tagged = instances(
        ec2,
        vec![
            filter(&format!("tag:{CLUSTER_TAG}"), cluster),
            filter(&format!("tag:{ROLE_TAG}"), "master"),
        ],
    )
    .await?;
    let (running, other): (Vec<_>, Vec<_>) = tagged.iter().partition(|i| ec2_state(i) == "running");
    match running.as_slice() {
        [one] => node(one),
        [] => {
            let seen: Vec<String> = other
                .iter()
                .map(|i| format!("{} is {}", i.instance_id().unwrap_or("?"), ec2_state(i)))
                .collect();
            Err(format!(
                "no running master: no running instance is tagged {CLUSTER_TAG}={cluster} and {ROLE_TAG}=master{}; check [aws] cluster (default: [cluster] name) and the region, and that `terraform apply` finished",
                if seen.is_empty() { String::new() } else { format!(" ({})", seen.join(", ")) }
            ))
        }
        many => Err(format!(
            "{} running instances are tagged as the master of cluster {cluster} ({}); sparkboot needs exactly one: remove the {ROLE_TAG}=master tag from the others",
            many.len(),
            many.iter().map(|i| i.instance_id().unwrap_or("?")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Why a master Terraform recorded cannot be used, from its EC2 state; `None` when it runs.
pub fn master_state_error(id: &str, state: &str) -> Option<String> {
    let what = format!("the master {id} (from the Terraform state) is {state} in EC2");
    match state {
        "running" => None,
        "pending" => Some(format!(
            "{what}: it is still starting; converge again once it is running"
        )),
        "stopping" | "stopped" => Some(format!(
            "{what}; start it (`aws ec2 start-instances --instance-ids {id}`) and converge again"
        )),
        "shutting-down" | "terminated" => Some(format!(
            "{what}; run `terraform apply` to replace it, then converge again"
        )),
        _ => Some(format!("{what}, not running")),
    }
}

/// The master Terraform recorded, as EC2 reports it now. It must exist and be running; its
/// current addresses win over the state's (a stop and start changes the public address, and
/// the state is only as fresh as the last apply or refresh).
async fn confirm_master(
    ec2: &aws_sdk_ec2::Client,
    recorded: Node,
    region: &str,
    notes: &mut Vec<String>,
) -> Result<Node, String> {
    let id = recorded.id.clone();
    let found = instances(ec2, vec![filter("instance-id", &id)]).await?;
    let Some(instance) = found.iter().find(|i| i.instance_id() == Some(id.as_str())) else {
        return Err(format!(
            "the master {id} (from the Terraform state) does not exist in EC2 (region {region}): it was deleted outside Terraform, or the state belongs to another region or account; check [aws] region and the credentials, or run `terraform apply` to recreate it"
        ));
    };
    if let Some(e) = master_state_error(&id, ec2_state(instance)) {
        return Err(e);
    }
    let current = node(instance).map_err(|_| {
        format!("the master {id} (from the Terraform state) runs but EC2 reports no private IPv4 address for it")
    })?;
    if current.private_ip != recorded.private_ip {
        notes.push(format!(
            "the master {id} is at {} in EC2 (the Terraform state says {}); using EC2's address",
            current.private_ip, recorded.private_ip
        ));
    }
    if recorded.public_ip.is_some() && current.public_ip != recorded.public_ip {
        notes.push(format!(
            "the master {id}'s public address is {} in EC2 (the Terraform state says {}); using EC2's",
            current.public_ip.as_deref().unwrap_or("none"),
            recorded.public_ip.as_deref().unwrap_or("none"),
        ));
    }
    Ok(current)
}

/// How many activities the capacity warning quotes.
const ACTIVITIES_QUOTED: usize = 3;

/// What the group's latest activities say about launches that failed or have not finished:
/// up to three, newest first, with repeats of one message counted instead of listed.
pub fn activity_reasons(activities: &[Activity]) -> Vec<String> {
    // (status, message, when the newest of them started, how many)
    let mut reasons: Vec<(String, String, String, usize)> = Vec::new();
    for a in activities {
        let status = a
            .status_code()
            .cloned()
            .unwrap_or(ScalingActivityStatusCode::InProgress);
        if matches!(
            status,
            ScalingActivityStatusCode::Successful | ScalingActivityStatusCode::Cancelled
        ) {
            continue;
        }
        let text = a
            .status_message()
            .filter(|m| !m.trim().is_empty())
            .or(a.description())
            .unwrap_or("(no description)");
        let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.chars().count() > 300 {
            text = text.chars().take(300).collect::<String>() + "...";
        }
        let status = status.as_str().to_string();
        match reasons.iter().position(|r| r.0 == status && r.1 == text) {
            Some(i) => reasons[i].3 += 1,
            None if reasons.len() < ACTIVITIES_QUOTED => {
                let when = a
                    .start_time()
                    .and_then(|t| t.fmt(DateTimeFormat::DateTime).ok())
                    .map(|t| format!(" (started {t})"))
                    .unwrap_or_default();
                reasons.push((status, text, when, 1));
            }
            None => {}
        }
    }
    reasons
        .into_iter()
        .map(|(status, text, when, n)| {
            if n > 1 {
                format!("{status} x{n}: {text}{when}")
            } else {
                format!("{status}: {text}{when}")
            }
        })
        .collect()
}

/// The group's shortfall: (desired capacity, capacity sparkboot takes) when the first is
/// larger. `taken` holds the weights of the workers sparkboot converges (1 unless the group
/// uses weighted instance types). A group sized in vCPUs or memory without per-instance
/// weights cannot be compared and gives `None`.
pub fn shortfall(group: &AutoScalingGroup, taken: &[i64]) -> Option<(i64, i64)> {
    let desired = i64::from(group.desired_capacity()?);
    let by_units = group
        .desired_capacity_type()
        .is_none_or(|t| t.is_empty() || t == "units");
    let weighted = group
        .instances()
        .iter()
        .any(|i| i.weighted_capacity().is_some());
    if !by_units && !weighted {
        return None;
    }
    let have: i64 = taken.iter().sum();
    (desired > have).then_some((desired, have))
}

/// The warning for a group short of workers: the numbers, then why AWS says so.
pub fn capacity_warning(
    group: &str,
    (desired, have): (i64, i64),
    weighted: bool,
    launching: bool,
    activities: Result<Vec<String>, String>,
) -> String {
    let state = if launching {
        "in service or launching, and running"
    } else {
        "InService and running"
    };
    let numbers = if weighted {
        format!("the workers' group {group} wants a capacity of {desired} but its workers {state} give {have}: {} missing", desired - have)
    } else {
        format!("the workers' group {group} wants {desired} worker(s) (desired capacity) but {have} {} {state}: {} missing", if have == 1 { "is" } else { "are" }, desired - have)
    };
    let why = match activities {
        Ok(r) if !r.is_empty() => format!("AWS's latest scaling activities say: {}", r.join("; ")),
        Ok(_) => format!("the group's latest scaling activities show no failed or unfinished launch (see `aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}`)"),
        Err(e) => format!("its scaling activities could not be read ({e}); grant autoscaling:DescribeScalingActivities to see why"),
    };
    format!("{numbers}; {why}. This run converges the workers it found; converge again once the others are in service")
}

/// The group's latest scaling activities (newest first), for the capacity warning.
async fn recent_activities(
    asc: &aws_sdk_autoscaling::Client,
    group: &str,
) -> Result<Vec<String>, String> {
    let out = asc
        .describe_scaling_activities()
        .auto_scaling_group_name(group)
        .max_records(20)
        .send()
        .await
        .map_err(|e| format!("{}", aws_sdk_autoscaling::error::DisplayErrorContext(e)))?;
    Ok(activity_reasons(out.activities()))
}

/// The workers' group: by name, or the one tagged with the cluster and role worker.
async fn worker_group(
    asc: &aws_sdk_autoscaling::Client,
    cluster: &str,
    name: Option<&str>,
) -> Result<AutoScalingGroup, String> {
    let tag = |k: &str, v: &str| {
        AsgFilter::builder()
            .name(format!("tag:{k}"))
            .values(v)
            .build()
    };
    let request = match name {
        Some(n) => asc
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(n),
        None => asc
            .describe_auto_scaling_groups()
            .filters(tag(CLUSTER_TAG, cluster))
            .filters(tag(ROLE_TAG, "worker")),
    };
    let mut pages = request.into_paginator().send();
    let mut groups = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api_error("autoscaling:DescribeAutoScalingGroups", e))?;
        groups.extend(page.auto_scaling_groups().iter().cloned());
    }
    let names = || {
        groups
            .iter()
            .filter_map(|g| g.auto_scaling_group_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (groups.len(), name) {
        (1, _) => Ok(groups.remove(0)),
        (0, Some(n)) => Err(format!("no Auto Scaling group named {n:?}; check [aws] asg (or the Terraform output workers.asg_name) and the region")),
        (0, None) => Err(format!("no Auto Scaling group is tagged {CLUSTER_TAG}={cluster} and {ROLE_TAG}=worker; set [aws] asg to the workers' group name, or check [aws] cluster and the region")),
        _ => Err(format!("several Auto Scaling groups are tagged as the workers of cluster {cluster} ({}); set [aws] asg to one of them", names())),
    }
}

/// Finds the master and the group's InService, running workers.
pub async fn discover(sdk: &SdkConfig, q: Query<'_>) -> Result<Found, String> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let asc = aws_sdk_autoscaling::Client::new(sdk);
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let mut notes = Vec::new();
    let master = match q.master {
        Some(recorded) => confirm_master(&ec2, recorded, &region, &mut notes).await?,
        None => master_by_tags(&ec2, q.cluster).await?,
    };
    let group = worker_group(&asc, q.cluster, q.asg).await?;
    let group_name = group
        .auto_scaling_group_name()
        .unwrap_or_default()
        .to_string();
    let mut in_service = Vec::new();
    for member in group.instances() {
        let id = member.instance_id().unwrap_or("(no id)");
        let state = member
            .lifecycle_state()
            .map(|s| s.as_str())
            .unwrap_or("unknown");
        match asg_exclusion(id, state, q.launching) {
            Some(note) => notes.push(note),
            None => in_service.push(id.to_string()),
        }
    }
    let mut workers = Vec::new();
    // An EC2 filter takes at most 200 values.
    for chunk in in_service.chunks(199) {
        let ids = Filter::builder()
            .name("instance-id")
            .set_values(Some(chunk.to_vec()))
            .build();
        for i in instances(&ec2, vec![ids]).await? {
            let id = i.instance_id().unwrap_or("(no id)");
            match ec2_exclusion(id, ec2_state(&i)) {
                Some(note) => notes.push(note),
                None => match node(&i) {
                    Ok(n) if n.id == master.id => {}
                    Ok(n) => workers.push(n),
                    Err(note) => notes.push(note),
                },
            }
        }
    }
    for id in &in_service {
        if !workers.iter().any(|w| &w.id == id) && !notes.iter().any(|n| n.contains(id.as_str())) {
            notes.push(format!(
                "left out {id}: the group lists it but EC2 does not"
            ));
        }
    }
    workers.sort_by_key(|w| (w.private_ip.parse::<Ipv4Addr>().ok(), w.id.clone()));
    let weight = |id: &str| {
        group
            .instances()
            .iter()
            .find(|m| m.instance_id() == Some(id))
            .and_then(|m| m.weighted_capacity())
            .and_then(|w| w.trim().parse::<i64>().ok())
            .unwrap_or(1)
    };
    let taken: Vec<i64> = workers.iter().map(|w| weight(&w.id)).collect();
    let mut warnings = Vec::new();
    if let Some(short) = shortfall(&group, &taken) {
        let weighted = group
            .instances()
            .iter()
            .any(|i| i.weighted_capacity().is_some());
        let activities = recent_activities(&asc, &group_name).await;
        warnings.push(capacity_warning(
            &group_name,
            short,
            weighted,
            q.launching,
            activities,
        ));
    }
    Ok(Found {
        master,
        workers,
        asg: group_name,
        notes,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_in_service_running_instances_are_converged() {
        assert_eq!(asg_exclusion("i-1", "InService", false), None);
        assert_eq!(
            asg_exclusion("i-1", "Pending:Wait", true),
            None,
            "watch takes held launches"
        );
        assert!(asg_exclusion("i-1", "Pending:Wait", false).is_some());
        assert!(asg_exclusion("i-1", "Terminating:Wait", true).is_some());
        for state in [
            "Pending",
            "Pending:Wait",
            "Terminating",
            "Terminating:Wait",
            "Standby",
            "Detaching",
        ] {
            let note = asg_exclusion("i-1", state, false).expect("left out");
            assert!(note.contains("i-1") && note.contains(state), "{note}");
        }
        assert_eq!(ec2_exclusion("i-2", "running"), None);
        for state in [
            "pending",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
        ] {
            assert!(ec2_exclusion("i-2", state)
                .expect("left out")
                .contains(state));
        }
    }

    #[test]
    fn a_recorded_master_must_run() {
        assert_eq!(master_state_error("i-m", "running"), None);
        let stopped = master_state_error("i-m", "stopped").expect("error");
        assert!(
            stopped.contains("i-m")
                && stopped.contains("is stopped")
                && stopped.contains("start-instances"),
            "{stopped}"
        );
        let gone = master_state_error("i-m", "terminated").expect("error");
        assert!(gone.contains("terraform apply"), "{gone}");
        for state in ["pending", "stopping", "shutting-down", "rebooting?"] {
            let e = master_state_error("i-m", state).expect("error");
            assert!(e.contains("i-m") && e.contains(state), "{e}");
        }
    }

    fn activity(status: ScalingActivityStatusCode, message: Option<&str>, desc: &str) -> Activity {
        Activity::builder()
            .activity_id("a")
            .auto_scaling_group_name("g")
            .cause("c")
            .start_time(aws_sdk_autoscaling::primitives::DateTime::from_secs(
                1_800_000_000,
            ))
            .status_code(status)
            .set_status_message(message.map(str::to_string))
            .description(desc)
            .build()
    }

    #[test]
    fn activities_give_the_reason_newest_first_without_repeats() {
        use ScalingActivityStatusCode as S;
        let spot = "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.";
        let acts = vec![
            activity(
                S::Failed,
                Some(spot),
                "Launching a new EC2 instance. Status Reason: ...",
            ),
            activity(
                S::Failed,
                Some(spot),
                "Launching a new EC2 instance. Status Reason: ...",
            ),
            activity(S::Successful, None, "Launching a new EC2 instance: i-1"),
            activity(S::InProgress, None, "Launching a new EC2 instance: i-2"),
            activity(S::Cancelled, None, "cancelled"),
            activity(
                S::WaitingForSpotInstanceId,
                Some("  "),
                "Placing\nSpot request",
            ),
            activity(S::Failed, Some("a fourth reason"), "x"),
        ];
        let r = activity_reasons(&acts);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(
            r[0].starts_with("Failed x2: Could not launch Spot Instances."),
            "{r:?}"
        );
        assert!(r[0].contains("(started 2027-01-15T08:00:00Z)"), "{r:?}");
        assert!(
            r[1].starts_with("InProgress: Launching a new EC2 instance: i-2"),
            "{r:?}"
        );
        assert!(
            r[2].starts_with("WaitingForSpotInstanceId: Placing Spot request"),
            "{r:?}"
        );
    }

    #[test]
    fn the_capacity_warning_has_the_numbers_and_the_reason() {
        let group = |desired: i32, kind: Option<&str>| {
            AutoScalingGroup::builder()
                .desired_capacity(desired)
                .set_desired_capacity_type(kind.map(str::to_string))
                .build()
        };
        assert_eq!(shortfall(&group(4, None), &[1, 1]), Some((4, 2)));
        assert_eq!(shortfall(&group(2, None), &[1, 1]), None);
        assert_eq!(shortfall(&group(0, None), &[]), None);
        assert_eq!(shortfall(&group(4, Some("units")), &[2, 2]), None);
        assert_eq!(shortfall(&group(64, Some("vcpu")), &[1]), None);
        let w = capacity_warning(
            "spark-workers",
            (4, 2),
            false,
            false,
            Ok(vec!["Failed: no spot capacity".into()]),
        );
        assert!(
            w.contains("spark-workers wants 4 worker(s)")
                && w.contains("2 are InService and running: 2 missing")
                && w.contains("AWS's latest scaling activities say: Failed: no spot capacity"),
            "{w}"
        );
        let w = capacity_warning("g", (3, 1), false, true, Ok(vec![]));
        assert!(
            w.contains("1 is in service or launching") && w.contains("describe-scaling-activities"),
            "{w}"
        );
        let w = capacity_warning("g", (3, 1), false, false, Err("AccessDenied".into()));
        assert!(
            w.contains("AccessDenied") && w.contains("autoscaling:DescribeScalingActivities"),
            "{w}"
        );
    }
}
