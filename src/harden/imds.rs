//! Is this node an EC2 instance, and does its instance metadata service insist on IMDSv2?
//!
//! EC2 is recognised without any network traffic, from the DMI and hypervisor identifiers the
//! probe reads under /sys. Only a node that says it is EC2 is asked to send a token-less request
//! to 169.254.169.254; a lab node (loopback address) never is, whatever its /sys says, because
//! the metadata address lies off the machine. Off EC2 the check is "not applicable", not a pass.

use super::Verdict;

/// The identifiers EC2 sets (Nitro: DMI; older Xen instances: /sys/hypervisor/uuid).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dmi {
    pub board_asset_tag: String,
    pub sys_vendor: String,
    pub product_uuid: String,
    pub hypervisor_uuid: String,
}

impl Dmi {
    pub fn set(&mut self, name: &str, value: &str) {
        let slot = match name {
            "board_asset_tag" => &mut self.board_asset_tag,
            "sys_vendor" => &mut self.sys_vendor,
            "product_uuid" => &mut self.product_uuid,
            "hypervisor_uuid" => &mut self.hypervisor_uuid,
            _ => return,
        };
        *slot = value.trim().to_string();
    }
}

fn starts_ec2(s: &str) -> bool {
    s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("ec2"))
}

/// True when the identifiers say EC2: `sys_vendor` "Amazon EC2", a product or hypervisor UUID
/// starting with "ec2", or an instance id (`i-...`) as board asset tag from an Amazon vendor.
pub fn is_ec2(d: &Dmi) -> bool {
    d.sys_vendor.eq_ignore_ascii_case("Amazon EC2")
        || starts_ec2(&d.product_uuid)
        || starts_ec2(&d.hypervisor_uuid)
        || starts_ec2(&d.board_asset_tag)
        || (d.board_asset_tag.starts_with("i-") && d.sys_vendor.starts_with("Amazon"))
}

/// What the token-less request got back.
#[derive(Debug, Clone, PartialEq)]
pub enum Imds {
    /// HTTP 401: a token is required (IMDSv2 enforced).
    TokenRequired,
    /// HTTP 200: IMDSv1 answers without a token.
    OpenV1,
    /// No HTTP answer: the endpoint is disabled (or unreachable).
    NoAnswer,
    Other(String),
}

/// Parses the probe's `curl -w '%{http_code}'` output.
pub fn parse_probe(text: &str) -> Imds {
    match text.trim() {
        "401" => Imds::TokenRequired,
        "200" => Imds::OpenV1,
        "000" | "" => Imds::NoAnswer,
        other => Imds::Other(other.to_string()),
    }
}

/// Whether the network probe may run for a node at `address` with these identifiers.
pub fn may_probe(d: &Dmi, address: &str) -> bool {
    let loopback = address
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback())
        || address == "localhost";
    is_ec2(d) && !loopback
}

pub fn verdict(d: &Dmi, address: &str, probe: Option<&Imds>) -> Verdict {
    if !is_ec2(d) {
        return Verdict::NotApplicable("not an EC2 instance (no EC2 DMI or hypervisor id)".into());
    }
    if !may_probe(d, address) {
        return Verdict::NotApplicable(
            "a lab node on a loopback address: the metadata service is not its own".into(),
        );
    }
    match probe {
        Some(Imds::TokenRequired) => {
            Verdict::Pass("a request without a token is refused (401)".into())
        }
        Some(Imds::NoAnswer) => {
            Verdict::Pass("the metadata endpoint does not answer (disabled)".into())
        }
        Some(Imds::OpenV1) => Verdict::Fail("IMDSv1 answers without a token (200)".into()),
        Some(Imds::Other(code)) => Verdict::Fail(format!(
            "unexpected answer {code:?} to a token-less request"
        )),
        None => Verdict::Fail("the metadata probe did not run".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dmi(pairs: &[(&str, &str)]) -> Dmi {
        let mut d = Dmi::default();
        for (k, v) in pairs {
            d.set(k, v);
        }
        d
    }

    #[test]
    fn recognises_ec2_from_local_identifiers_only() {
        assert!(is_ec2(&dmi(&[("sys_vendor", "Amazon EC2\n")])));
        assert!(is_ec2(&dmi(&[(
            "product_uuid",
            "EC2E1916-9099-7CAF-FD21-012345678910"
        )])));
        assert!(is_ec2(&dmi(&[("hypervisor_uuid", "ec2e1916-9099-7caf")])));
        assert!(is_ec2(&dmi(&[
            ("board_asset_tag", "i-0123456789abcdef0"),
            ("sys_vendor", "Amazon")
        ])));
        assert!(!is_ec2(&dmi(&[
            ("sys_vendor", "QEMU"),
            ("product_uuid", "4c4c4544-0042")
        ])));
        assert!(!is_ec2(&Dmi::default()));
        assert!(!is_ec2(&dmi(&[("board_asset_tag", "i-123")])));
    }

    #[test]
    fn off_ec2_is_not_applicable_and_loopback_is_never_probed() {
        assert!(matches!(
            verdict(&Dmi::default(), "192.0.2.5", None),
            Verdict::NotApplicable(_)
        ));
        let ec2 = dmi(&[("sys_vendor", "Amazon EC2")]);
        assert!(!may_probe(&ec2, "127.140.0.2"));
        assert!(matches!(
            verdict(&ec2, "127.140.0.2", None),
            Verdict::NotApplicable(_)
        ));
        assert!(may_probe(&ec2, "192.0.2.5"));
    }

    #[test]
    fn probe_answers() {
        let ec2 = dmi(&[("sys_vendor", "Amazon EC2")]);
        let v = |t: &str| verdict(&ec2, "192.0.2.5", Some(&parse_probe(t)));
        assert!(!v("401").failed());
        assert!(!v("000").failed());
        assert!(v("200").failed());
        assert!(v("403").failed());
        assert!(verdict(&ec2, "192.0.2.5", None).failed());
    }
}
