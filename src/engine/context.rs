//! The template context each host's roles are evaluated with.

use serde_json::{json, Value};

use crate::config::Config;
use crate::facts::SystemFacts;
use crate::inventory::{Host, Inventory};

/// `host`, `facts`, `inventory`, `cluster` and `vars` (config vars, overridden by host vars).
pub fn build(
    config: &Config,
    inventory: &Inventory,
    host: &Host,
    facts: &SystemFacts,
    extra: &Value,
) -> Value {
    let node = |h: &Host| json!({"name": h.name, "address": h.address, "role": h.role.as_str()});
    let mut vars = serde_json::to_value(&config.vars).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut vars {
        for (k, v) in &host.vars {
            map.insert(k.clone(), Value::String(v.clone()));
        }
    }
    let mut ctx = json!({
        "host": {"name": host.name, "address": host.address, "role": host.role.as_str(), "user": host.user},
        "facts": facts,
        "inventory": {
            "source": inventory.source,
            "master": node(&inventory.master),
            "workers": inventory.workers.iter().map(node).collect::<Vec<_>>(),
        },
        "cluster": {"name": config.cluster_name},
        "vars": vars,
    });
    // Values computed by sparkboot itself (for example the resolved Spark checksum) are merged
    // last so roles can rely on them.
    if let (Value::Object(target), Value::Object(add)) = (&mut ctx, extra) {
        for (k, v) in add {
            target.insert(k.clone(), v.clone());
        }
    }
    ctx
}
