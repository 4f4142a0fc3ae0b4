//! The `s3` distribution mode: the Spark archive crosses the internet once, into the cluster's
//! own bucket, and every node fetches it from there.
//!
//! The controller verifies the archive (the push-mode cache in `fetch.rs`), uploads it once under
//! a key made of its SHA-512 (a `HeadObject` first, so an archive already staged is never sent
//! again, nor even downloaded), and hands the nodes a presigned GET URL. Nodes therefore need no
//! AWS CLI, no credentials and no bucket permission of their own, and still verify the SHA-512
//! before unpacking. The URL is a bearer credential for that one object until it expires, so
//! `prepare` lists it as a secret: the Redactor keeps it out of reports, `--json` and errors.
//!
//! The upload is multipart (parts of [`PART_SIZE`], each with its SHA-256 checksum), so a large
//! archive on a slow uplink survives an interruption: the next run finds the unfinished upload
//! of the same key (`ListMultipartUploads`, `ListParts`), keeps every part whose size and
//! checksum (or, without one, ETag) match the local bytes, sends only the others and completes
//! that upload. Uploads of other keys are never touched, and nothing is aborted: the module's
//! lifecycle rule removes abandoned uploads after 7 days. A request refused with 403 names the
//! permissions it needs, including `kms:GenerateDataKey` and `kms:Decrypt` when the bucket's
//! default encryption (`GetBucketEncryption`) uses a KMS key of its own.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::RequestChecksumCalculation;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine as _;
use md5::Digest as _;
use sha2::Digest as _;

use super::SparkError;
use crate::config::Config;
use crate::inventory::aws::{self, api_error, Cloud};
use crate::report::{ControllerTransfer, Progress};

/// How long the presigned URL works. Every node downloads in the first phase, right after the
/// probe; an hour covers slow links and large clusters, and no more. (With temporary
/// credentials, such as SSO or an assumed role, the URL also stops working when they expire.)
pub const URL_LIFETIME: Duration = Duration::from_secs(3600);

/// Size of each uploaded part but the last: what an interruption can cost at most.
pub const PART_SIZE: u64 = 16 * 1024 * 1024;

/// S3 takes at most this many parts per upload; a larger archive gets larger parts.
const MAX_PARTS: u64 = 10_000;

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

/// One part of the local archive: its number (from 1), offset and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalPart {
    pub number: i32,
    pub offset: u64,
    pub len: u64,
}

/// How an archive of `size` bytes is cut into parts: [`PART_SIZE`] each (more when it would
/// take over 10,000 parts), the last one shorter. An empty file is one empty part.
pub fn layout(size: u64) -> Vec<LocalPart> {
    let part = PART_SIZE.max(size.div_ceil(MAX_PARTS));
    let count = size.div_ceil(part).max(1);
    (0..count)
        .map(|i| LocalPart {
            number: i as i32 + 1,
            offset: i * part,
            len: part.min(size - i * part),
        })
        .collect()
}

/// A part S3 already holds for an unfinished upload, as `ListParts` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub size: i64,
    pub etag: String,
    pub sha256: Option<String>,
}

/// Whether a listed part holds exactly `bytes`: the size must match, then the SHA-256 checksum
/// when S3 reports one, else the ETag, which is the part's MD5 (except under SSE-KMS, where it
/// is not, and the part is simply sent again).
pub fn part_matches(listed: &Listed, bytes: &[u8], sha256_b64: &str) -> bool {
    if listed.size != bytes.len() as i64 {
        return false;
    }
    match &listed.sha256 {
        Some(sum) => sum == sha256_b64,
        None => listed
            .etag
            .trim_matches('"')
            .eq_ignore_ascii_case(&hex::encode(md5::Md5::digest(bytes))),
    }
}

/// The bucket's default encryption, as far as a refused request needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketKey {
    /// SSE-KMS with a key of its own (an ARN, key ID or alias).
    Kms(String),
    /// SSE-KMS with the AWS-managed `aws/s3` key, which needs no KMS grant.
    AwsManaged,
    /// SSE-S3 or none.
    NotKms,
    /// `GetBucketEncryption` failed, with why.
    Unknown(String),
}

/// What a request refused with 403 needs, by the bucket's encryption.
pub fn denied_message(call: &str, location: &str, key: &BucketKey) -> String {
    let s3 = "s3:GetObject and s3:PutObject (PutObject covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload) on the bucket's sparkboot/* objects, s3:ListMultipartUploadParts on them to resume an upload, and s3:ListBucket and s3:ListBucketMultipartUploads on the bucket, over HTTPS (the module's bucket policy refuses plain HTTP)";
    let kms = match key {
        BucketKey::Kms(k) => format!("; the bucket encrypts with the KMS key {k}, so they also need kms:GenerateDataKey and kms:Decrypt on that key (granted in IAM and allowed by the key's policy)"),
        BucketKey::AwsManaged => "; the bucket's key is the AWS-managed aws/s3 key, which needs no KMS permission".into(),
        BucketKey::NotKms => String::new(),
        BucketKey::Unknown(why) => format!("; the bucket's default encryption could not be read ({why}): if it uses a customer-managed KMS key, they also need kms:GenerateDataKey and kms:Decrypt on that key"),
    };
    format!("{call} on {location} was denied (403): the controller's credentials need {s3}{kms}")
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn code<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> Option<String> {
    e.as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string)
}

/// One bucket, one key, one S3 client: the upload and its error messages.
struct Stage<'a> {
    s3: &'a aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    location: &'a str,
}

/// An unfinished upload of the key that can be resumed, with its parts by number.
struct Resumable {
    id: String,
    /// The upload was created with SHA-256 checksums (each part must carry one).
    sha256: bool,
    parts: BTreeMap<i32, Listed>,
}

impl Stage<'_> {
    async fn bucket_key(&self) -> BucketKey {
        match self
            .s3
            .get_bucket_encryption()
            .bucket(self.bucket)
            .send()
            .await
        {
            Ok(out) => {
                let rules = out
                    .server_side_encryption_configuration()
                    .map(|c| c.rules())
                    .unwrap_or_default();
                let default = rules
                    .iter()
                    .find_map(|r| r.apply_server_side_encryption_by_default());
                match default {
                    Some(d)
                        if matches!(
                            d.sse_algorithm(),
                            ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse
                        ) =>
                    {
                        match d.kms_master_key_id().filter(|k| !k.is_empty()) {
                            Some(k) if !k.ends_with("alias/aws/s3") => BucketKey::Kms(k.into()),
                            _ => BucketKey::AwsManaged,
                        }
                    }
                    _ => BucketKey::NotKms,
                }
            }
            Err(e)
                if code(&e).as_deref()
                    == Some("ServerSideEncryptionConfigurationNotFoundError") =>
            {
                BucketKey::NotKms
            }
            Err(e) => BucketKey::Unknown(match status(&e) {
                Some(403) => "s3:GetEncryptionConfiguration was denied".into(),
                _ => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
            }),
        }
    }

    /// The error for a failed call: the permissions needed when it was a 403.
    async fn failed<E>(&self, call: &str, e: SdkError<E, HttpResponse>) -> String
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if status(&e) == Some(403) {
            denied_message(call, self.location, &self.bucket_key().await)
        } else {
            api_error(&format!("{call} on {}", self.location), e)
        }
    }

    /// The unfinished upload of this key to resume, if any: among those created without a
    /// checksum or with SHA-256, the one holding the most parts. Failing to list is no error:
    /// the upload then starts afresh.
    async fn find_resumable(&self) -> Option<Resumable> {
        let mut ids: Vec<(String, bool)> = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .s3
                .list_multipart_uploads()
                .bucket(self.bucket)
                .prefix(self.key)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await;
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let why = match status(&e) {
                        Some(403) => "s3:ListBucketMultipartUploads was denied".to_string(),
                        _ => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
                    };
                    eprintln!("sparkboot: note: cannot look for an interrupted upload of {} to resume ({why}); starting a new one", self.location);
                    return None;
                }
            };
            for u in page.uploads() {
                let algorithm = u
                    .checksum_algorithm()
                    .map(|a| a.as_str())
                    .filter(|a| !a.is_empty());
                if u.key() != Some(self.key) {
                    continue;
                }
                match (u.upload_id(), algorithm) {
                    (Some(id), None) => ids.push((id.to_string(), false)),
                    (Some(id), Some(a)) if a == ChecksumAlgorithm::Sha256.as_str() => {
                        ids.push((id.to_string(), true))
                    }
                    _ => {}
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if key_marker.is_none() && id_marker.is_none() {
                break;
            }
        }
        let mut best: Option<Resumable> = None;
        for (id, sha256) in ids {
            let Some(parts) = self.list_parts(&id).await else {
                continue;
            };
            if best.as_ref().is_none_or(|b| parts.len() > b.parts.len()) {
                best = Some(Resumable { id, sha256, parts });
            }
        }
        best
    }

    /// The parts of an unfinished upload, or `None` when they cannot be listed.
    async fn list_parts(&self, id: &str) -> Option<BTreeMap<i32, Listed>> {
        let mut pages = self
            .s3
            .list_parts()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(id)
            .into_paginator()
            .send();
        let mut parts = BTreeMap::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    let why = match status(&e) {
                        Some(403) => "s3:ListMultipartUploadParts was denied".to_string(),
                        _ => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
                    };
                    eprintln!("sparkboot: note: cannot list the parts of the interrupted upload {id} of {} ({why}); not resuming it", self.location);
                    return None;
                }
            };
            for p in page.parts() {
                if let (Some(n), Some(etag)) = (p.part_number(), p.e_tag()) {
                    parts.insert(
                        n,
                        Listed {
                            size: p.size().unwrap_or(-1),
                            etag: etag.to_string(),
                            sha256: p.checksum_sha256().map(str::to_string),
                        },
                    );
                }
            }
        }
        Some(parts)
    }

    /// Uploads `local` in parts, resuming an unfinished upload of the same key.
    /// `line` shows the bytes in the bucket so far (kept parts count at once); the per-part
    /// notes are printed only when no line is drawn.
    async fn upload(&self, local: &Path, line: &mut ControllerTransfer<'_>) -> Result<(), String> {
        let read_err = |e: std::io::Error| format!("cannot read {}: {e}", local.display());
        let mut file = std::fs::File::open(local).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        let parts = layout(size);
        let mib = |b: u64| b.div_ceil(1024 * 1024);
        let resumed = self.find_resumable().await;
        let (id, sha256, listed) = match resumed {
            Some(r) => {
                eprintln!(
                    "sparkboot: note: resuming the interrupted upload {} of {}: {} part(s) of {} already there, each checked against the archive",
                    r.id, self.location, r.parts.len(), parts.len()
                );
                (r.id, r.sha256, r.parts)
            }
            None => {
                let created = self
                    .s3
                    .create_multipart_upload()
                    .bucket(self.bucket)
                    .key(self.key)
                    .content_type("application/gzip")
                    .checksum_algorithm(ChecksumAlgorithm::Sha256)
                    .send()
                    .await;
                let created = match created {
                    Ok(c) => c,
                    Err(e) => return Err(self.failed("s3:CreateMultipartUpload", e).await),
                };
                let id = created
                    .upload_id()
                    .ok_or("s3:CreateMultipartUpload returned no upload ID")?
                    .to_string();
                eprintln!(
                    "sparkboot: note: uploading the Spark archive ({} MiB) to {} in {} part(s) of up to {} MiB (upload {id})",
                    mib(size), self.location, parts.len(), mib(parts[0].len.max(1))
                );
                (id, true, BTreeMap::new())
            }
        };
        let mut completed = Vec::with_capacity(parts.len());
        let (mut kept, mut sent) = (0usize, 0usize);
        line.update(0, Some(size));
        for part in &parts {
            let mut bytes = vec![0u8; part.len as usize];
            file.seek(SeekFrom::Start(part.offset))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(read_err)?;
            let sum =
                base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
            let done = CompletedPart::builder().part_number(part.number);
            let done = if sha256 {
                done.checksum_sha256(&sum)
            } else {
                done
            };
            if let Some(l) = listed
                .get(&part.number)
                .filter(|l| part_matches(l, &bytes, &sum))
            {
                completed.push(done.e_tag(&l.etag).build());
                kept += 1;
                line.update(part.offset + part.len, Some(size));
                continue;
            }
            let request = self
                .s3
                .upload_part()
                .bucket(self.bucket)
                .key(self.key)
                .upload_id(&id)
                .part_number(part.number)
                .content_length(part.len as i64);
            let request = if sha256 {
                request.checksum_sha256(&sum)
            } else {
                request
            };
            let out = match request.body(ByteStream::from(bytes)).send().await {
                Ok(o) => o,
                Err(e) => {
                    let why = self
                        .failed(
                            &format!("s3:UploadPart (part {} of {})", part.number, parts.len()),
                            e,
                        )
                        .await;
                    return Err(format!("{why}; run the command again to resume: the parts already uploaded are kept (upload {id})"));
                }
            };
            let etag = out.e_tag().ok_or_else(|| {
                format!("s3:UploadPart returned no ETag for part {}", part.number)
            })?;
            completed.push(done.e_tag(etag).build());
            sent += 1;
            line.update(part.offset + part.len, Some(size));
            if parts.len() > 1 && !line.shown() {
                eprintln!(
                    "sparkboot: note: uploaded part {} of {} ({} of {} MiB)",
                    part.number,
                    parts.len(),
                    mib(part.offset + part.len),
                    mib(size)
                );
            }
        }
        let finish = self
            .s3
            .complete_multipart_upload()
            .bucket(self.bucket)
            .key(self.key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = finish {
            // Another run may have completed the same upload meanwhile.
            if code(&e).as_deref() == Some("NoSuchUpload") && self.staged().await == Ok(true) {
                return Ok(());
            }
            return Err(self.failed("s3:CompleteMultipartUpload", e).await);
        }
        if kept > 0 {
            line.note(&format!(
                "sparkboot: note: completed the upload {id}: {kept} part(s) kept from the interrupted upload, {sent} sent"
            ));
        }
        Ok(())
    }

    /// Whether the object is in the bucket already.
    async fn staged(&self) -> Result<bool, String> {
        match self
            .s3
            .head_object()
            .bucket(self.bucket)
            .key(self.key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.failed("s3:HeadObject", e).await),
        }
    }
}

/// The cluster bucket: `[aws] bucket`, else the one the cloud inventory names.
pub fn bucket(config: &Config, cloud: Option<&Cloud>) -> Option<String> {
    config
        .aws
        .bucket
        .clone()
        .or_else(|| cloud.and_then(|c| c.bucket.clone()))
}

/// Where event logs go with `[spark] event_log = "s3"`: a prefix of the cluster bucket, in the
/// S3A scheme Spark's Hadoop file system layer reads (`s3a://<bucket>/sparkboot/events`).
pub fn event_log_uri(config: &Config, cloud: Option<&Cloud>) -> Result<String, SparkError> {
    let bucket = bucket(config, cloud).ok_or_else(|| {
        SparkError::S3("event_log = \"s3\" needs the cluster bucket: use --inventory terraform:DIR (its sparkboot_inventory names the bucket) or set [aws] bucket".into())
    })?;
    Ok(format!("s3a://{bucket}/sparkboot/events"))
}

/// `spark.sql.warehouse.dir` with `[spark] warehouse = "s3"`: a prefix of the cluster bucket,
/// beside the event logs (`s3a://<bucket>/sparkboot/warehouse`).
pub fn warehouse_uri(config: &Config, cloud: Option<&Cloud>) -> Result<String, SparkError> {
    let bucket = bucket(config, cloud).ok_or_else(|| {
        SparkError::S3("warehouse = \"s3\" needs the cluster bucket: use --inventory terraform:DIR (its sparkboot_inventory names the bucket) or set [aws] bucket".into())
    })?;
    Ok(format!("s3a://{bucket}/sparkboot/warehouse"))
}

/// Stages the archive (unless `check`) and returns the presigned URL nodes download from.
pub fn stage(
    config: &Config,
    cloud: Option<&Cloud>,
    sha512: &str,
    cache: &Path,
    check: bool,
    progress: &Progress,
) -> Result<String, SparkError> {
    let err = SparkError::S3;
    let bucket = bucket(config, cloud).ok_or_else(|| {
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
        // Checksums only where sparkboot asks for them (SHA-256 on each part, which ListParts
        // reports back for verification), never a default the SDK picks on its own.
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .build();
        Ok::<_, String>(aws_sdk_s3::Client::from_conf(conf))
    });
    let s3 = s3.map_err(err)?;
    let stage = Stage {
        s3: &s3,
        bucket: &bucket,
        key: &key,
        location: &location,
    };
    if runtime.block_on(stage.staged()).map_err(err)? {
        eprintln!("sparkboot: note: the Spark archive is already staged at {location}");
    } else if check {
        eprintln!("sparkboot: note: would upload the Spark archive to {location} (--check uploads nothing)");
    } else {
        // Downloaded and verified once; the same cache as push mode.
        let local = super::cache_archive(url, sha512, cache, progress).map_err(err)?;
        let mut line = ControllerTransfer::new(
            progress,
            &format!("Stage the Spark archive at {location}"),
            ("uploading", "uploaded"),
        );
        runtime
            .block_on(stage.upload(&local, &mut line))
            .map_err(err)?;
        drop(line);
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

    #[test]
    fn archives_are_cut_into_16_mib_parts_and_at_most_10000() {
        let mib = 1024 * 1024;
        assert_eq!(
            layout(0),
            vec![LocalPart {
                number: 1,
                offset: 0,
                len: 0
            }]
        );
        assert_eq!(layout(5).len(), 1);
        let p = layout(33 * mib);
        assert_eq!(
            p.iter()
                .map(|p| (p.number, p.offset, p.len))
                .collect::<Vec<_>>(),
            vec![
                (1, 0, 16 * mib),
                (2, 16 * mib, 16 * mib),
                (3, 32 * mib, mib)
            ]
        );
        assert_eq!(layout(32 * mib).len(), 2);
        let huge = layout(200_000 * mib);
        assert!(huge.len() <= 10_000, "{}", huge.len());
        assert_eq!(huge.iter().map(|p| p.len).sum::<u64>(), 200_000 * mib);
    }

    #[test]
    fn a_listed_part_is_kept_only_when_it_holds_the_same_bytes() {
        let bytes = b"hello world";
        let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes));
        let md5 = "5eb63bbbe01eeed093cb22bb8f5acdc3";
        let listed = |size: i64, etag: &str, sha: Option<&str>| Listed {
            size,
            etag: etag.into(),
            sha256: sha.map(str::to_string),
        };
        assert!(part_matches(
            &listed(11, &format!("\"{md5}\""), None),
            bytes,
            &sum
        ));
        assert!(part_matches(
            &listed(11, "\"opaque-kms-etag\"", Some(&sum)),
            bytes,
            &sum
        ));
        assert!(!part_matches(
            &listed(11, "\"opaque-kms-etag\"", None),
            bytes,
            &sum
        ));
        assert!(!part_matches(&listed(12, md5, None), bytes, &sum));
        assert!(!part_matches(&listed(11, md5, Some("AAAA")), bytes, &sum));
    }

    #[test]
    fn a_refusal_names_the_kms_permissions_when_the_bucket_has_its_own_key() {
        let key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d";
        let m = denied_message(
            "s3:CreateMultipartUpload",
            "s3://b/k",
            &BucketKey::Kms(key.into()),
        );
        assert!(
            m.contains("s3:CreateMultipartUpload on s3://b/k was denied (403)")
                && m.contains("s3:PutObject")
                && m.contains("s3:ListBucketMultipartUploads")
                && m.contains("kms:GenerateDataKey and kms:Decrypt on that key")
                && m.contains(key),
            "{m}"
        );
        let m = denied_message("s3:UploadPart", "s3://b/k", &BucketKey::AwsManaged);
        assert!(m.contains("aws/s3") && !m.contains("kms:Decrypt"), "{m}");
        let m = denied_message("s3:UploadPart", "s3://b/k", &BucketKey::NotKms);
        assert!(!m.contains("kms:"), "{m}");
        let m = denied_message(
            "s3:UploadPart",
            "s3://b/k",
            &BucketKey::Unknown("denied".into()),
        );
        assert!(
            m.contains("kms:GenerateDataKey") && m.contains("could not be read"),
            "{m}"
        );
    }
}
