//! Discovery through the AWS API: the master by its tags (or as Terraform recorded it), the
//! workers as the Auto Scaling group's InService members that EC2 reports running.
//!
//! Every list call goes through the SDK paginators. Instances that are not meant to serve yet or
//! any more (Pending, Terminating, Standby, stopped, ...) are left out with a note, because
//! sparkboot must connect only to nodes that should be part of the cluster.

use std::net::Ipv4Addr;

use aws_config::SdkConfig;
use aws_sdk_autoscaling::types::{Filter as AsgFilter, LifecycleState};
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

/// The workers' group: by name, or the one tagged with the cluster and role worker.
async fn worker_group(
    asc: &aws_sdk_autoscaling::Client,
    cluster: &str,
    name: Option<&str>,
) -> Result<aws_sdk_autoscaling::types::AutoScalingGroup, String> {
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
    let master = match q.master {
        Some(m) => m,
        None => master_by_tags(&ec2, q.cluster).await?,
    };
    let group = worker_group(&asc, q.cluster, q.asg).await?;
    let mut notes = Vec::new();
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
    Ok(Found {
        master,
        workers,
        asg: group
            .auto_scaling_group_name()
            .unwrap_or_default()
            .to_string(),
        notes,
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
}
