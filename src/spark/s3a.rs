//! The S3A connector: which Hadoop AWS jars match a Spark release, where a Maven repository
//! keeps them and their checksums, and the S3A settings spark-defaults.conf carries.
//!
//! S3A (`s3a://`) is Hadoop's S3 file system. Spark's `-bin-hadoop3` archives carry Hadoop's
//! client but not its AWS module, and the module only works with the exact Hadoop version it was
//! built for and the AWS SDK that Hadoop release pinned ("do not attempt to drop in a newer
//! version of the AWS SDK", hadoop-aws troubleshooting_s3a.md). So the mapping is two small
//! tables of versions that were read, not computed: Spark release -> its Hadoop, and Hadoop
//! release -> hadoop-aws + SDK bundle. An unknown version is an error that says how to go on,
//! never a guess. Everything here is pure; the download is `fetch::cached_verified_with`.

use serde::Serialize;

/// One Maven artifact: `group:artifact:version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coordinates {
    pub group: &'static str,
    pub artifact: &'static str,
    pub version: &'static str,
}

impl Coordinates {
    /// The jar's file name in the repository (and in Spark's `jars/`).
    pub fn file_name(&self) -> String {
        format!("{}-{}.jar", self.artifact, self.version)
    }

    /// The jar's URL under `repository` in the Maven 2 layout
    /// (`<repo>/<group as path>/<artifact>/<version>/<artifact>-<version>.jar`).
    pub fn url(&self, repository: &str) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            repository.trim_end_matches('/'),
            self.group.replace('.', "/"),
            self.artifact,
            self.version,
            self.file_name()
        )
    }
}

impl std::fmt::Display for Coordinates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.group, self.artifact, self.version)
    }
}

/// Which AWS SDK the connector is built on: the credential provider classes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdk {
    /// AWS SDK for Java 1.x (`com.amazonaws`), Hadoop up to 3.3.x.
    V1,
    /// AWS SDK for Java 2.x (`software.amazon.awssdk`), Hadoop 3.4.0 and later (HADOOP-18073).
    V2,
}

/// The jars S3A needs for one Hadoop release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connector {
    pub hadoop: &'static str,
    pub hadoop_aws: Coordinates,
    pub sdk_bundle: Coordinates,
    pub sdk: Sdk,
}

const fn hadoop_aws(version: &'static str) -> Coordinates {
    Coordinates {
        group: "org.apache.hadoop",
        artifact: "hadoop-aws",
        version,
    }
}

/// Hadoop release -> its AWS module and the SDK bundle its `hadoop-project/pom.xml` pins
/// (`aws-java-sdk.version` up to 3.3.x, `aws-java-sdk-v2.version` from 3.4.0). Where each was
/// read is in the README, "S3 data".
pub const CONNECTORS: &[Connector] = &[
    // Spark 3.5.x. Bundle 1.12.262: the `aws-java-sdk.version` of Hadoop 3.3.4.
    Connector {
        hadoop: "3.3.4",
        hadoop_aws: hadoop_aws("3.3.4"),
        sdk_bundle: Coordinates {
            group: "com.amazonaws",
            artifact: "aws-java-sdk-bundle",
            version: "1.12.262",
        },
        sdk: Sdk::V1,
    },
    // The 3.4.3 release announcement: "For this release, the version to download is 2.35.4".
    Connector {
        hadoop: "3.4.3",
        hadoop_aws: hadoop_aws("3.4.3"),
        sdk_bundle: Coordinates {
            group: "software.amazon.awssdk",
            artifact: "bundle",
            version: "2.35.4",
        },
        sdk: Sdk::V2,
    },
    // Spark 4.3.0 (pyspark 4.3.0's jars: hadoop-client-api-3.5.0.jar). HADOOP-19654 moved the
    // SDK to 2.35.4 for 3.5.0.
    Connector {
        hadoop: "3.5.0",
        hadoop_aws: hadoop_aws("3.5.0"),
        sdk_bundle: Coordinates {
            group: "software.amazon.awssdk",
            artifact: "bundle",
            version: "2.35.4",
        },
        sdk: Sdk::V2,
    },
];

/// Spark release -> the Hadoop version of its `-bin-hadoop3` archive
/// (`jars/hadoop-client-api-<version>.jar`), as found in the archives themselves.
pub const SPARK_HADOOP: &[(&str, &str)] = &[("3.5.7", "3.3.4"), ("4.3.0", "3.5.0")];

/// The connector for a Hadoop version, or a sentence saying which versions are known.
pub fn connector_for(hadoop: &str) -> Result<Connector, String> {
    CONNECTORS
        .iter()
        .find(|c| c.hadoop == hadoop)
        .copied()
        .ok_or_else(|| {
            let known: Vec<&str> = CONNECTORS.iter().map(|c| c.hadoop).collect();
            format!(
                "no S3A connector is known for Hadoop {hadoop} (known: {}); hadoop-aws must match Hadoop exactly and the AWS SDK must be the one that Hadoop release pins, so sparkboot does not guess: use a Spark whose Hadoop is listed, or set s3a = false",
                known.join(", ")
            )
        })
}

/// The Hadoop version a Spark release carries, when sparkboot knows it.
pub fn hadoop_of_spark(spark: &str) -> Option<&'static str> {
    SPARK_HADOOP
        .iter()
        .find(|(s, _)| *s == spark)
        .map(|(_, h)| *h)
}

/// The provider S3A authenticates with: the EC2 instance profile and nothing else, so no key is
/// ever configured. Hadoop's authentication.md ("Changing Authentication Providers" and "EC2 IAM
/// Metadata Authentication with InstanceProfileCredentialsProvider") lists, for SDK v2,
/// `org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider` ("EC2/k8s instance
/// credentials", the last link of S3A's own default chain; it reports a missing instance
/// profile as a non-retryable NoAwsCredentialsException); for SDK v1 (Hadoop 3.3.x's
/// index.md), the SDK's own `com.amazonaws.auth.InstanceProfileCredentialsProvider`.
pub fn instance_profile_provider(sdk: Sdk) -> &'static str {
    match sdk {
        Sdk::V1 => "com.amazonaws.auth.InstanceProfileCredentialsProvider",
        Sdk::V2 => "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider",
    }
}

/// Checksum algorithms a Maven repository publishes beside an artifact, strongest first. Maven
/// Central has `.sha1` for every artifact and `.sha256`/`.sha512` only for some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Sha512,
    Sha256,
    Sha1,
}

pub const STRONGEST_FIRST: [Algorithm; 3] = [Algorithm::Sha512, Algorithm::Sha256, Algorithm::Sha1];

impl Algorithm {
    /// The extension of the checksum file beside the artifact.
    pub fn extension(self) -> &'static str {
        match self {
            Algorithm::Sha512 => "sha512",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha1 => "sha1",
        }
    }

    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha512 => 128,
            Algorithm::Sha256 => 64,
            Algorithm::Sha1 => 40,
        }
    }
}

/// Reads a Maven checksum file: the hex digest alone, or followed by the file name
/// (`<hex>  <file>`); lower-cased. Anything else is an error quoting the start of the file.
pub fn parse_checksum(text: &str, algorithm: Algorithm, file_name: &str) -> Result<String, String> {
    let first = text.split_whitespace().next().unwrap_or_default();
    let rest: Vec<&str> = text.split_whitespace().skip(1).collect();
    let names_it = rest.is_empty()
        || (rest.len() == 1 && rest[0].trim_start_matches('*').ends_with(file_name));
    if first.len() == algorithm.hex_len()
        && first.bytes().all(|b| b.is_ascii_hexdigit())
        && names_it
    {
        return Ok(first.to_ascii_lowercase());
    }
    let shown: String = text.trim().chars().take(100).collect();
    Err(format!(
        "is not a {} checksum of {file_name} ({} hex digits, optionally followed by the file name): {shown:?}",
        algorithm.extension(),
        algorithm.hex_len()
    ))
}

/// A repository URL sparkboot accepts: https, a local directory (`file://`), or plain http on a
/// loopback host (a mirror on the controller itself). Over plain http from elsewhere, a checksum
/// file from the same origin proves nothing.
pub fn check_repository(url: &str) -> Result<(), String> {
    if url.starts_with("https://") || url.starts_with("file:///") {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split('/').next().unwrap_or_default();
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
        return Err(format!(
            "{url:?} is plain http to another machine, where a checksum from the same origin proves nothing: use https:// (Maven Central: https://repo1.maven.org/maven2), a file:/// mirror, or http:// only on a loopback address"
        ));
    }
    Err(format!(
        "{url:?} must be an https:// URL of a Maven repository (or file:///DIR, or http:// on a loopback address)"
    ))
}

/// One jar as the roles see it (`spark.s3a.connector`, `spark.s3a.sdk`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct JarContext {
    /// `group:artifact:version`.
    pub coordinates: String,
    /// File name in Spark's `jars/`.
    pub file: String,
    /// SHA-256 of the verified jar the controller streams (what the node's probe compares).
    pub sha256: String,
    /// The repository's published checksum it was verified against, as `algorithm:hex`.
    pub verified: String,
    /// That checksum file's extension (`sha512`, `sha256` or `sha1`), for the step's name.
    pub checksum: String,
}

/// What the roles and templates render S3A with (`spark.s3a.*`). Off: every string empty.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct S3aContext {
    pub enabled: bool,
    pub hadoop: String,
    pub connector: JarContext,
    pub sdk: JarContext,
    /// `spark.hadoop.fs.s3a.aws.credentials.provider`.
    pub credentials_provider: String,
    /// `spark.hadoop.fs.s3a.endpoint.region` when the region is known (`[aws] region`, or the
    /// cloud inventory's); empty to let S3A find it.
    pub region: String,
    /// `spark.sql.warehouse.dir` with `warehouse = "s3"`; empty for Spark's default.
    pub warehouse_dir: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_hadoop_lines_map_to_their_connector() {
        let spark35 = connector_for(hadoop_of_spark("3.5.7").expect("3.5.7")).expect("3.3.4");
        assert_eq!(
            spark35.hadoop_aws.to_string(),
            "org.apache.hadoop:hadoop-aws:3.3.4"
        );
        assert_eq!(
            spark35.sdk_bundle.to_string(),
            "com.amazonaws:aws-java-sdk-bundle:1.12.262"
        );
        assert_eq!(
            instance_profile_provider(spark35.sdk),
            "com.amazonaws.auth.InstanceProfileCredentialsProvider"
        );
        let spark43 = connector_for(hadoop_of_spark("4.3.0").expect("4.3.0")).expect("3.5.0");
        assert_eq!(spark43.hadoop_aws.file_name(), "hadoop-aws-3.5.0.jar");
        assert_eq!(
            spark43.sdk_bundle.to_string(),
            "software.amazon.awssdk:bundle:2.35.4"
        );
        assert_eq!(spark43.sdk, Sdk::V2);
        assert_eq!(
            spark43.sdk_bundle.url("https://repo1.maven.org/maven2/"),
            "https://repo1.maven.org/maven2/software/amazon/awssdk/bundle/2.35.4/bundle-2.35.4.jar"
        );
        assert_eq!(hadoop_of_spark("3.4.1"), None);
    }

    #[test]
    fn an_unknown_hadoop_is_an_error_naming_the_known_ones() {
        let err = connector_for("3.4.1").expect_err("unknown");
        assert!(
            err.contains("Hadoop 3.4.1") && err.contains("3.3.4, 3.4.3, 3.5.0"),
            "{err}"
        );
        assert!(err.contains("s3a = false"), "{err}");
    }

    #[test]
    fn maven_checksum_files_alone_or_with_the_name() {
        let sha1 = "a".repeat(40);
        assert_eq!(
            parse_checksum(&format!("{sha1}\n"), Algorithm::Sha1, "x.jar"),
            Ok(sha1.clone())
        );
        assert_eq!(
            parse_checksum(
                &format!("{}  x.jar\n", sha1.to_uppercase()),
                Algorithm::Sha1,
                "x.jar"
            ),
            Ok(sha1.clone())
        );
        for bad in [
            "<html>404</html>".to_string(),
            format!("{sha1}  other.jar"),
            "b".repeat(64),
            String::new(),
        ] {
            let err = parse_checksum(&bad, Algorithm::Sha1, "x.jar").expect_err(&bad);
            assert!(err.contains("sha1 checksum of x.jar"), "{err}");
        }
        let sha512 = "0123456789abcdef".repeat(8);
        assert_eq!(
            parse_checksum(&sha512, Algorithm::Sha512, "x.jar"),
            Ok(sha512.clone())
        );
    }

    #[test]
    fn repositories_must_be_https_a_local_dir_or_loopback_http() {
        for ok in [
            "https://repo1.maven.org/maven2",
            "file:///srv/maven",
            "http://127.64.0.1:8064/maven2",
            "http://localhost:8081/repo",
            "http://[::1]:8081/repo",
        ] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://10.0.0.5/maven2",
            "http://repo1.maven.org/maven2",
            "http://127.0.0.1.evil.example/x",
            "ftp://x",
            "repo1.maven.org",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
    }
}
