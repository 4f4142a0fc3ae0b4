//! The watcher's AWS calls: long-polling the queue, deleting handled messages, and answering
//! or heartbeating lifecycle actions. Credentials, region and endpoints come from the same
//! chains as discovery (`AWS_ENDPOINT_URL` points them at an emulator).
//!
//! A lifecycle answer is sent once: the SDK's own retries are off for it (a retried 5xx could
//! answer twice), a throttled call is tried again at the next reconcile, and "no active
//! lifecycle action" means it was already answered (by us before a restart, or by its
//! timeout), which is success.

use aws_config::retry::RetryConfig;
use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::MessageSystemAttributeName;

use super::events::Action;
use crate::inventory::aws::{api_error, sdk_config, Cloud};

/// One message off the queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times the queue has delivered it (the dead-letter queue takes it after 5).
    pub receives: u32,
}

/// How a lifecycle answer went.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Sent,
    /// Nothing was waiting for it any more: answered before, or timed out.
    AlreadyAnswered(String),
    /// Throttled: try again at the next reconcile.
    Retry(String),
    /// Refused for good (logged; the hook's default result applies at its timeout).
    Failed(String),
}

pub struct Aws {
    sqs: aws_sdk_sqs::Client,
    asg: aws_sdk_autoscaling::Client,
    runtime: tokio::runtime::Runtime,
}

impl Aws {
    pub fn new(cloud: &Cloud) -> Result<Aws, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let sdk = runtime.block_on(sdk_config(Some(&cloud.region), cloud.profile.as_deref()))?;
        let asg_config = aws_sdk_autoscaling::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .build();
        Ok(Aws {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            asg: aws_sdk_autoscaling::Client::from_conf(asg_config),
            runtime,
        })
    }

    /// Waits up to `wait_secs` (0-20) for up to 10 messages.
    pub fn receive(&self, queue: &str, wait_secs: u32) -> Result<Vec<Message>, String> {
        let out = self
            .runtime
            .block_on(
                self.sqs
                    .receive_message()
                    .queue_url(queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(wait_secs.min(20) as i32)
                    .message_system_attribute_names(
                        MessageSystemAttributeName::ApproximateReceiveCount,
                    )
                    .send(),
            )
            .map_err(|e| api_error("sqs:ReceiveMessage", e))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Message {
                id: m.message_id().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receives: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    pub fn delete(&self, queue: &str, receipt: &str) -> Result<(), String> {
        self.runtime
            .block_on(
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(receipt)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| api_error("sqs:DeleteMessage", e))
    }

    /// Makes a message visible again at once: one that cannot be parsed never will be, so it
    /// reaches the dead-letter queue after its few receives instead of one per visibility
    /// timeout.
    pub fn release(&self, queue: &str, receipt: &str) -> Result<(), String> {
        self.runtime
            .block_on(
                self.sqs
                    .change_message_visibility()
                    .queue_url(queue)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| api_error("sqs:ChangeMessageVisibility", e))
    }

    /// Answers a lifecycle action (`CONTINUE` or `ABANDON`).
    pub fn complete(&self, a: &Action, result: &str) -> Answer {
        let call = self
            .asg
            .complete_lifecycle_action()
            .auto_scaling_group_name(&a.group)
            .lifecycle_hook_name(&a.hook)
            .lifecycle_action_token(&a.token)
            .instance_id(&a.instance)
            .lifecycle_action_result(result)
            .send();
        answered(
            self.runtime.block_on(call),
            "autoscaling:CompleteLifecycleAction",
        )
    }

    /// Keeps a lifecycle action open while the work it waits for runs.
    pub fn heartbeat(&self, a: &Action) -> Answer {
        let call = self
            .asg
            .record_lifecycle_action_heartbeat()
            .auto_scaling_group_name(&a.group)
            .lifecycle_hook_name(&a.hook)
            .lifecycle_action_token(&a.token)
            .instance_id(&a.instance)
            .send();
        answered(
            self.runtime.block_on(call),
            "autoscaling:RecordLifecycleActionHeartbeat",
        )
    }
}

fn answered<T, E>(result: Result<T, E>, call: &str) -> Answer
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match result {
        Ok(_) => Answer::Sent,
        Err(e) => {
            let code = e.code().map(str::to_string);
            classify(code.as_deref(), &api_error(call, e))
        }
    }
}

/// Sorts an error by what the watcher should do about it.
pub fn classify(code: Option<&str>, message: &str) -> Answer {
    match code {
        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded") => {
            Answer::Retry(message.to_string())
        }
        Some("ValidationError") if message.contains("No active Lifecycle Action") => {
            Answer::AlreadyAnswered(message.to_string())
        }
        _ => Answer::Failed(message.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_sorted_by_what_to_do() {
        assert!(matches!(
            classify(Some("Throttling"), "slow down"),
            Answer::Retry(_)
        ));
        assert!(matches!(
            classify(
                Some("ValidationError"),
                "No active Lifecycle Action found with token t"
            ),
            Answer::AlreadyAnswered(_)
        ));
        assert!(matches!(
            classify(Some("ValidationError"), "bad group"),
            Answer::Failed(_)
        ));
        assert!(matches!(
            classify(None, "500 internal error"),
            Answer::Failed(_)
        ));
    }
}
