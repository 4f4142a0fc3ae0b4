//! What arrives on the watch queue, parsed purely: the EventBridge envelopes the module's rules
//! deliver (an Auto Scaling lifecycle action, an EC2 spot interruption warning, a rebalance
//! recommendation), and the plain lifecycle notifications a hook sends when its target is the
//! queue itself. Anything else is an error that leaves the message for the dead-letter queue.

use serde::Serialize;
use serde_json::Value;

/// What one queue message asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new instance is held by the launch hook until it is configured.
    Launching(Action),
    /// An instance is held by the terminate hook until it is decommissioned.
    Terminating(Action),
    /// EC2 reclaims a spot instance in about two minutes.
    Interruption { instance: String, action: String },
    /// EC2 says a spot instance is at elevated risk of interruption.
    Rebalance { instance: String },
    /// A hook's test message when it is created: nothing to do.
    Test,
}

/// A lifecycle action: what `CompleteLifecycleAction` needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Action {
    pub instance: String,
    pub group: String,
    pub hook: String,
    pub token: String,
}

impl Event {
    /// The instance the event is about.
    pub fn instance(&self) -> Option<&str> {
        match self {
            Event::Launching(a) | Event::Terminating(a) => Some(&a.instance),
            Event::Interruption { instance, .. } | Event::Rebalance { instance } => Some(instance),
            Event::Test => None,
        }
    }
}

const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no `{key}`"))
}

/// Checks an instance ID's shape (`i-` and hex), so nothing else reaches an API call or a log.
fn instance_id(s: &str) -> Result<String, String> {
    let ok = s.starts_with("i-")
        && s.len() <= 40
        && s[2..].chars().all(|c| c.is_ascii_hexdigit())
        && s.len() > 2;
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an instance ID"))
    }
}

fn action(detail: &Value) -> Result<(String, Action), String> {
    let transition = text(detail, "LifecycleTransition")?.to_string();
    let a = Action {
        instance: instance_id(text(detail, "EC2InstanceId")?)?,
        group: text(detail, "AutoScalingGroupName")?.to_string(),
        hook: text(detail, "LifecycleHookName")?.to_string(),
        token: text(detail, "LifecycleActionToken")?.to_string(),
    };
    Ok((transition, a))
}

fn lifecycle(detail: &Value) -> Result<Event, String> {
    let (transition, a) = action(detail)?;
    match transition.as_str() {
        LAUNCHING => Ok(Event::Launching(a)),
        TERMINATING => Ok(Event::Terminating(a)),
        other => Err(format!("unknown lifecycle transition {other:?}")),
    }
}

/// Parses one message body.
pub fn parse(body: &str) -> Result<Event, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON ({e})"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    // A hook's own notification (target: the queue, not EventBridge).
    if v.get("Event").and_then(Value::as_str) == Some("autoscaling:TEST_NOTIFICATION") {
        return Ok(Event::Test);
    }
    if v.get("LifecycleTransition").is_some() && v.get("detail").is_none() {
        return lifecycle(&v);
    }
    let detail_type = text(&v, "detail-type")?;
    let detail = v.get("detail").ok_or("no `detail`")?;
    match (text(&v, "source")?, detail_type) {
        (
            "aws.autoscaling",
            "EC2 Instance-launch Lifecycle Action" | "EC2 Instance-terminate Lifecycle Action",
        ) => lifecycle(detail),
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => Ok(Event::Interruption {
            instance: instance_id(text(detail, "instance-id")?)?,
            action: text(detail, "instance-action")?.to_string(),
        }),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => Ok(Event::Rebalance {
            instance: instance_id(text(detail, "instance-id")?)?,
        }),
        (source, other) => Err(format!("unknown event {other:?} from {source}")),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// The shapes AWS documents (EventBridge user guide, EC2 and Auto Scaling event references).
    pub const LAUNCH: &str = r#"{"version":"0","id":"12345678-1234-1234-1234-123456789012","detail-type":"EC2 Instance-launch Lifecycle Action","source":"aws.autoscaling","account":"123456789012","time":"2026-12-03T00:00:00Z","region":"us-east-1","resources":["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:042cba90-ad2f-431c-9b4d-6d9055bcc9fb:autoScalingGroupName/spark-workers"],"detail":{"LifecycleActionToken":"87654321-4321-4321-4321-210987654321","AutoScalingGroupName":"spark-workers","LifecycleHookName":"spark-launch","EC2InstanceId":"i-1234567890abcdef0","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","NotificationMetadata":"","Origin":"EC2","Destination":"AutoScalingGroup"}}"#;
    pub const SPOT: &str = r#"{"version":"0","id":"1e5527d7-bb36-4607-3370-4164db56a40e","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012","time":"2026-12-03T00:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1b:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0","instance-action":"terminate"}}"#;
    pub const REBALANCE: &str = r#"{"version":"0","id":"5a3c3a15-6a6c-4d66-9a2e-a8f4a1b7e0d1","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","account":"123456789012","time":"2026-12-03T00:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1b:instance/i-1234567890abcdef0"],"detail":{"instance-id":"i-1234567890abcdef0"}}"#;

    #[test]
    fn documented_events_parse() {
        let Event::Launching(a) = parse(LAUNCH).expect("launch") else {
            panic!("not a launch")
        };
        assert_eq!(a.instance, "i-1234567890abcdef0");
        assert_eq!(a.group, "spark-workers");
        assert_eq!(a.hook, "spark-launch");
        assert_eq!(a.token, "87654321-4321-4321-4321-210987654321");
        let term = LAUNCH
            .replace("Instance-launch", "Instance-terminate")
            .replace("EC2_INSTANCE_LAUNCHING", "EC2_INSTANCE_TERMINATING");
        assert!(matches!(parse(&term), Ok(Event::Terminating(_))));
        assert_eq!(
            parse(SPOT).expect("spot"),
            Event::Interruption {
                instance: "i-1234567890abcdef0".into(),
                action: "terminate".into()
            }
        );
        assert_eq!(
            parse(REBALANCE).expect("rebalance").instance(),
            Some("i-1234567890abcdef0")
        );
    }

    #[test]
    fn a_hook_s_own_notifications_parse_too() {
        let direct = r#"{"Origin":"EC2","Destination":"AutoScalingGroup","Service":"AWS Auto Scaling","Time":"2026-12-03T00:00:00Z","AccountId":"123456789012","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","RequestId":"x","LifecycleActionToken":"tok","EC2InstanceId":"i-0abc","LifecycleHookName":"h","AutoScalingGroupName":"g"}"#;
        assert!(matches!(parse(direct), Ok(Event::Launching(_))));
        let test = r#"{"AccountId":"123456789012","RequestId":"x","AutoScalingGroupARN":"arn","AutoScalingGroupName":"g","Service":"AWS Auto Scaling","Event":"autoscaling:TEST_NOTIFICATION","Time":"2026-12-03T00:00:00Z"}"#;
        assert_eq!(parse(test).expect("test"), Event::Test);
    }

    #[test]
    fn garbage_and_near_misses_are_errors() {
        for bad in [
            "",
            "garbage",
            "[1,2]",
            "{}",
            r#"{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{}}"#,
            r#"{"detail-type":"Something Else","source":"aws.ec2","detail":{"instance-id":"i-1"}}"#,
            &SPOT.replace("i-1234567890abcdef0", "i-$(reboot)"),
            &LAUNCH.replace("EC2_INSTANCE_LAUNCHING", "EC2_INSTANCE_SLEEPING"),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
