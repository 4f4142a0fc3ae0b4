//! Reading the master's `/json/` status: which workers are ALIVE. The request runs on the master
//! itself (its UI may listen only on the private address); parsing is pure.

use std::collections::BTreeSet;

use serde_json::Value;

/// Addresses of workers the master reports ALIVE.
pub fn alive_workers(json: &str) -> Result<BTreeSet<String>, String> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("the master's /json/ is not JSON: {e}"))?;
    let workers = doc["workers"]
        .as_array()
        .ok_or("the master's /json/ has no workers list")?;
    Ok(workers
        .iter()
        .filter(|w| w["state"] == "ALIVE")
        .filter_map(|w| w["host"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from a lab master (Spark 3.5.7) with one worker alive and one gone.
    const JSON: &str = r#"{
      "url" : "spark://127.100.0.2:7077",
      "workers" : [ {
        "id" : "worker-20261125140101-127.100.0.3-39275", "host" : "127.100.0.3", "port" : 39275,
        "webuiaddress" : "http://127.100.0.3:8081", "cores" : 2, "state" : "ALIVE"
      }, {
        "id" : "worker-20261125135901-127.100.0.4-41111", "host" : "127.100.0.4", "port" : 41111,
        "webuiaddress" : "http://127.100.0.4:8081", "cores" : 2, "state" : "DEAD"
      } ],
      "aliveworkers" : 1, "status" : "ALIVE"
    }"#;

    #[test]
    fn only_alive_workers_count() {
        let alive = alive_workers(JSON).expect("parses");
        assert_eq!(
            alive.into_iter().collect::<Vec<_>>(),
            vec!["127.100.0.3".to_string()]
        );
    }

    #[test]
    fn html_is_an_error() {
        assert!(alive_workers("<html>").is_err());
    }
}
