//! What sparkboot knows about Spark releases: the default version, which releases carry the fix
//! for Spark's AES-GCM RPC cipher (SPARK-56227), and the Java a release needs. Pure functions of
//! the version string, so the settings, the hardening audit and the lab all ask the same table.
//!
//! ## AES-GCM and SPARK-56227
//! Spark 3.4.4 / 3.5.2 / 4.0 added `spark.network.crypto.cipher = AES/GCM/NoPadding`
//! (SPARK-47172), which authenticates RPC traffic where the older AES-CTR only encrypts it. Its
//! `GcmTransportCipher.DecryptionHandler` never reset its per-message state, so every message
//! after the first on a channel was silently dropped (a worker connects and never registers).
//! SPARK-56227 fixed it in 2026. Which releases carry the fix, and how that was established:
//!
//! | release | fix | evidence |
//! |---|---|---|
//! | 3.5.0 – 3.5.8 | no | 3.5.7: read in the jar (`DecryptionHandler` has a `final` decrypter and no `resetForNextMessage`) and run on the lab (GCM: no job completes). 3.5.8: read, the v3.5.8 tag's `common/network-common/src` was last changed by SPARK-47172 |
//! | 3.5.9 and later 3.5.x | yes | read: the v3.5.9 tag's `common/network-common/src` was last changed by "[SPARK-56227][3.5][CORE]" |
//! | 4.0.x | no release known | read: backported to branch-4.0 by apache/spark#57186 (merged 2026-07-11), after v4.0.3-rc1 (2026-06-08); no later 4.0 release was found, so 4.0 keeps CTR |
//! | 4.1.0 – 4.1.2 | not shown | read: nothing places the fix in them; they keep CTR |
//! | 4.1.3 and later 4.1.x | yes | read: the v4.1.3 tag's network-common sources were last changed by SPARK-56227 |
//! | 4.2.0 and later | yes | read: same for the v4.2.0 tag (the master PR, apache/spark#55028) |
//! | 4.3.0 | yes | read in the jar (`resetForNextMessage`, `releaseAccumulator`, `channelInactive`, as the PR's review describes) and run on the lab: `SELECT sum(id) FROM range(10000000)` with GCM on, 49999995000000 |
//!
//! A release this table does not know (a later 3.5.x, 4.0.x or 4.1.x) gets the fix only when it
//! is at or past the first fixed release of its line; unknown lines after 4.2 have it. Where the
//! table is wrong in the cautious direction the cluster still works, on CTR (set
//! `[spark] rpc_cipher` to opt in); the other direction would break the cluster, so it leans
//! cautious.

/// The Spark sparkboot installs when `[spark] version` is not set: the newest release the lab can
/// build and test (PyPI serves pyspark 4.3.0, seen 2026-12-04).
pub const DEFAULT_VERSION: &str = "4.3.0";
/// [`DEFAULT_VERSION`] as a number (a test holds the two equal).
pub const DEFAULT: Version = Version {
    major: 4,
    minor: 3,
    patch: 0,
};

pub const GCM: &str = "AES/GCM/NoPadding";
pub const CTR: &str = "AES/CTR/NoPadding";

/// A Spark release number. Missing parts count as 0 (`4.2` is 4.2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// From `3.5.7`, `spark-3.5.7-bin-hadoop3` or `4.3.0-preview1` (the suffix is ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t.strip_prefix("spark-").unwrap_or(t);
        let mut parts = t.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether this release's AES-GCM RPC cipher works (it carries SPARK-56227): see the table in
/// the module doc.
pub fn has_gcm_fix(v: Version) -> bool {
    match (v.major, v.minor) {
        (3, 5) => v.patch >= 9,
        (4, 0) => false,
        (4, 1) => v.patch >= 3,
        (major, minor) => (major, minor) >= (4, 2),
    }
}

/// The cipher `rpc_cipher = "auto"` picks: GCM where it works, else Spark's CTR.
pub fn default_cipher(v: Version) -> &'static str {
    if has_gcm_fix(v) {
        GCM
    } else {
        CTR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect(text)
    }

    #[test]
    fn versions_parse_from_numbers_and_directory_names() {
        assert_eq!(
            v("spark-3.5.7-bin-hadoop3"),
            Version {
                major: 3,
                minor: 5,
                patch: 7
            }
        );
        assert_eq!(v("4.2"), v("4.2.0"));
        assert_eq!(v("4.3.0-preview1"), v("4.3.0"));
        assert_eq!(Version::parse(""), None);
        assert_eq!(Version::parse("x.5"), None);
        assert_eq!(v("4.3.0").to_string(), "4.3.0");
        assert_eq!(v(DEFAULT_VERSION), DEFAULT);
    }

    #[test]
    fn gcm_only_on_releases_that_carry_spark_56227() {
        for (release, fixed) in [
            ("3.4.4", false),
            ("3.5.7", false),
            ("3.5.8", false),
            ("3.5.9", true),
            ("3.5.10", true),
            ("4.0.0", false),
            ("4.0.3", false),
            ("4.1.2", false),
            ("4.1.3", true),
            ("4.2.0", true),
            ("4.3.0", true),
            ("5.0.0", true),
        ] {
            assert_eq!(has_gcm_fix(v(release)), fixed, "{release}");
            let want = if fixed { GCM } else { CTR };
            assert_eq!(default_cipher(v(release)), want, "{release}");
        }
        assert_eq!(default_cipher(v(DEFAULT_VERSION)), GCM);
    }
}
