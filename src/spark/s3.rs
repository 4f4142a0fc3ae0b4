//! The `s3` distribution mode: the Spark archive crosses the internet once, into the cluster's
//! own bucket, and every node fetches it from there.
//!
//! The controller verifies the archive (the push-mode cache in `fetch.rs`), uploads it once under
//! a key made of its SHA-512 (a `HeadObject` first, so an archive already staged is never sent
//! again, nor even downloaded), and hands the nodes a presigned GET URL. Nodes therefore need no
//! AWS CLI, no credentials and no bucket permission of their own, and still verify the SHA-512
//! before unpacking. The URL is a bearer credential for that one object until it expires, so
//! `prepare` lists it as a secret: the Redactor keeps it out of reports, `--json` and errors.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use super::{fetch, SparkError};
use crate::config::Config;
use crate::inventory::aws::{self, api_error, Cloud};

/// How long the presigned URL works. Every node downloads in the first phase, right after the
/// probe; an hour covers slow links and large clusters, and no more. (With temporary
/// credentials, such as SSO or an assumed role, the URL also stops working when they expire.)
pub const URL_LIFETIME: Duration = Duration::from_secs(3600);

/// Where the archive lives in the bucket: by checksum, with the upstream file name for people.
pub fn object_key(url: &str, sha512: &str) -> String {
    let name: String = url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let name = if name.is_empty() {
        "spark.tgz".to_string()
    } else {
        name
    };
    format!("sparkboot/spark/{sha512}/{name}")
}

/// Stages the archive (unless `check`) and returns the presigned URL nodes download from.
pub fn stage(
    config: &Config,
    cloud: Option<&Cloud>,
    sha512: &str,
    cache: &Path,
    check: bool,
) -> Result<String, SparkError> {
    let err = SparkError::S3;
    let bucket = config.aws.bucket.clone().or_else(|| cloud.and_then(|c| c.bucket.clone())).ok_or_else(|| {
        err("distribution = \"s3\" needs the cluster bucket: use --inventory terraform:DIR (its sparkboot_inventory names the bucket) or set [aws] bucket".into())
    })?;
    let region = config
        .aws
        .region
        .clone()
        .or_else(|| cloud.map(|c| c.region.clone()));
    let profile = config
        .aws
        .profile
        .clone()
        .or_else(|| cloud.and_then(|c| c.profile.clone()));
    let url = &config.spark.url;
    let key = object_key(url, sha512);
    let location = format!("s3://{bucket}/{key}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| err(format!("cannot start the async runtime: {e}")))?;
    let s3 = runtime.block_on(async {
        let sdk = aws::sdk_config(region.as_deref(), profile.as_deref()).await?;
        Ok::<_, String>(aws_sdk_s3::Client::new(&sdk))
    });
    let s3 = s3.map_err(err)?;
    let staged = runtime.block_on(async {
        match s3.head_object().bucket(&bucket).key(&key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 403) => Err(format!(
                "s3:HeadObject on {location} was denied (403): the controller's credentials need s3:GetObject, s3:PutObject and s3:ListBucket on the bucket, over HTTPS (the module's bucket policy refuses plain HTTP)"
            )),
            Err(e) => Err(api_error(&format!("s3:HeadObject on {location}"), e)),
        }
    });
    if staged.map_err(err)? {
        eprintln!("sparkboot: note: the Spark archive is already staged at {location}");
    } else if check {
        eprintln!("sparkboot: note: would upload the Spark archive to {location} (--check uploads nothing)");
    } else {
        // Downloaded and verified once; the same cache as push mode.
        let local = fetch::cached_archive(url, sha512, cache).map_err(err)?;
        runtime
            .block_on(async {
                let body = ByteStream::from_path(&local)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", local.display()))?;
                s3.put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .content_type("application/gzip")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| api_error(&format!("s3:PutObject to {location}"), e))
            })
            .map_err(err)?;
        eprintln!("sparkboot: note: uploaded the verified Spark archive to {location}");
    }
    let presigning = PresigningConfig::expires_in(URL_LIFETIME).map_err(|e| err(e.to_string()))?;
    let request = runtime
        .block_on(
            s3.get_object()
                .bucket(&bucket)
                .key(&key)
                .presigned(presigning),
        )
        .map_err(|e| err(api_error(&format!("presigning a GET of {location}"), e)))?;
    Ok(request.uri().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_by_checksum_and_keep_a_safe_file_name() {
        let sha = "ab".repeat(64);
        assert_eq!(
            object_key(
                "https://archive.apache.org/dist/spark/spark-3.5.7/spark-3.5.7-bin-hadoop3.tgz",
                &sha
            ),
            format!("sparkboot/spark/{sha}/spark-3.5.7-bin-hadoop3.tgz")
        );
        assert_eq!(
            object_key("file:///x/we ird?.tgz", &sha),
            format!("sparkboot/spark/{sha}/weird.tgz")
        );
        assert_eq!(
            object_key("file:///x/", &sha),
            format!("sparkboot/spark/{sha}/spark.tgz")
        );
    }
}
