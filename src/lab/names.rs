//! Node names and addresses: `lab-master`, `lab-worker-N`, and loopback addresses counted up
//! from the lab's first address (master at the first, worker N at first + N, skipping any address
//! another node already holds and the Spark server's .255.254).

use std::net::Ipv4Addr;

use super::http;
use super::node::NodeSpec;
use super::state::LabState;
use super::LabError;

pub const MASTER: &str = "lab-master";
pub const WORKER_PREFIX: &str = "lab-worker-";
pub const DEFAULT_FIRST: Ipv4Addr = Ipv4Addr::new(127, 100, 0, 2);

pub fn worker_number(name: &str) -> Option<u32> {
    name.strip_prefix(WORKER_PREFIX)?.parse().ok()
}

/// Node names become hostnames, so they follow hostname rules.
pub fn check_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LabError::BadName {
            name: name.to_string(),
        })
    }
}

/// The first address at or after `first + offset` that no node (recorded or planned) uses.
pub fn allocate(state: &LabState, planned: &[NodeSpec], offset: u32) -> Result<Ipv4Addr, LabError> {
    let base = u32::from(state.first_address);
    let taken = |a: Ipv4Addr| {
        state.nodes.iter().any(|n| n.address == a) || planned.iter().any(|p| p.address == a)
    };
    let mut candidate = base.checked_add(offset);
    while let Some(value) = candidate {
        let address = Ipv4Addr::from(value);
        if address.octets()[0] != 127 || address == Ipv4Addr::new(127, 255, 255, 255) {
            break;
        }
        if !taken(address) && address != http::server_address(state.first_address) {
            return Ok(address);
        }
        candidate = value.checked_add(1);
    }
    Err(LabError::AddressesExhausted {
        last: Ipv4Addr::from(base.saturating_add(offset)).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::state::{NodeState, Role};

    #[test]
    fn addresses_follow_the_master_and_skip_used_ones() {
        let mut state = LabState::new(DEFAULT_FIRST);
        assert_eq!(allocate(&state, &[], 0).ok(), Some(DEFAULT_FIRST));
        state.nodes.push(NodeState {
            name: "x".into(),
            address: Ipv4Addr::new(127, 100, 0, 4),
            hostname: "x".into(),
            role: Role::Worker,
            init_pid: 0,
            unshare_pid: 0,
            systemd: false,
        });
        assert_eq!(
            allocate(&state, &[], 2).ok(),
            Some(Ipv4Addr::new(127, 100, 0, 5))
        );
        assert_eq!(
            allocate(&state, &[], 1).ok(),
            Some(Ipv4Addr::new(127, 100, 0, 3))
        );
    }

    #[test]
    fn names_must_be_hostnames() {
        assert!(check_name("lab-worker-7").is_ok());
        assert!(check_name("bad_name").is_err());
        assert!(check_name("").is_err());
        assert_eq!(worker_number("lab-worker-12"), Some(12));
        assert_eq!(worker_number("lab-master"), None);
    }
}
