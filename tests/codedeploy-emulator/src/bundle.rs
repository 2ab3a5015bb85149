//! Bundles: download from S3 the way an instance's agent does, unpack
//! (zip/tar/tgz) and read `appspec.yml`.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde::Deserialize;

use crate::model::S3Location;
use crate::store::Shared;

/// The emulator's own AWS configuration: its region and credentials.
pub(crate) async fn sdk_config(shared: &Shared) -> aws_config::SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(shared.config.region.clone()));
    if let Some((id, secret)) = &shared.config.s3_credentials {
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "codedeploy-emulator",
        ));
    }
    loader.load().await
}

/// The S3 client the "instances" download with, built on first use.
async fn client(shared: &Shared) -> &aws_sdk_s3::Client {
    shared
        .s3
        .get_or_init(|| async {
            let base = sdk_config(shared).await;
            let mut builder = aws_sdk_s3::config::Builder::from(&base)
                .force_path_style(true)
                // A dead endpoint should fail the event quickly, not after minutes of retries.
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
                .timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_secs(3))
                        .operation_timeout(Duration::from_secs(60))
                        .build(),
                );
            if let Some(endpoint) = &shared.config.s3_endpoint {
                builder = builder.endpoint_url(endpoint);
            }
            aws_sdk_s3::Client::from_conf(builder.build())
        })
        .await
}

/// Downloads a bundle, conditional on its eTag when one was given. The error
/// is the message the DownloadBundle event reports.
pub async fn download(shared: &Shared, location: &S3Location) -> Result<Arc<Vec<u8>>, String> {
    let bucket = location.bucket.clone().unwrap_or_default();
    let key = location.key.clone().unwrap_or_default();
    let url = format!("s3://{bucket}/{key}");
    let expected_etag = location.e_tag.as_deref().map(|e| e.trim_matches('"').to_string());
    let request = client(shared)
        .await
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .set_version_id(location.version.clone())
        .set_if_match(expected_etag.as_ref().map(|e| format!("\"{e}\"")));
    let response = match request.send().await {
        Ok(r) => r,
        Err(err) => return Err(describe_s3_error(shared, &url, expected_etag.as_deref(), err)),
    };
    let actual_etag = response.e_tag().map(|e| e.trim_matches('"').to_string());
    // Checked again here because not every S3 stand-in honours If-Match.
    if let (Some(expected), Some(actual)) = (&expected_etag, &actual_etag)
        && expected != actual
    {
        return Err(format!(
            "The bundle {url} does not match the expected ETag: expected {expected}, but S3 has {actual}. The object was changed after the deployment was created."
        ));
    }
    let bytes = response.body.collect().await.map_err(|e| format!("Failed to read bundle {url} from S3: {e}"))?.into_bytes();
    Ok(Arc::new(bytes.to_vec()))
}

fn describe_s3_error<E, R>(shared: &Shared, url: &str, etag: Option<&str>, err: SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let endpoint = shared.config.s3_endpoint.as_deref().unwrap_or("the default S3 endpoint");
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("");
            let message = e.message().unwrap_or("");
            match code {
                "NoSuchKey" => format!("The bundle {url} does not exist: the specified key does not exist. (NoSuchKey)"),
                "NoSuchBucket" => {
                    format!("The bundle {url} could not be downloaded: the specified bucket does not exist. (NoSuchBucket)")
                }
                "PreconditionFailed" => format!(
                    "The bundle {url} does not match the expected ETag {}: the object was changed after the deployment was created. (PreconditionFailed)",
                    etag.unwrap_or("")
                ),
                "AccessDenied" | "Forbidden" => format!("Access denied downloading the bundle {url}: {message} (AccessDenied)"),
                "NoSuchVersion" => format!("The bundle {url} has no such version: {message} (NoSuchVersion)"),
                _ => format!("Failed to download the bundle {url}: {code} {message}").trim_end().to_string(),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            format!("Failed to download the bundle {url}: could not reach S3 at {endpoint}: {}", DisplayErrorContext(&err))
        }
        _ => format!("Failed to download the bundle {url}: {}", DisplayErrorContext(&err)),
    }
}

/// Unpacks `bytes` into `dest`. `bundle_type` is `zip`, `tar` or `tgz`; when
/// absent the format is sniffed from the content, as the agent does.
pub fn unpack(bytes: &[u8], bundle_type: Option<&str>, dest: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("Cannot create {}: {e}", dest.display()))?;
    let kind = match bundle_type {
        Some(t) => t.to_string(),
        None if bytes.starts_with(b"PK") => "zip".to_string(),
        None if bytes.starts_with(&[0x1f, 0x8b]) => "tgz".to_string(),
        None => "tar".to_string(),
    };
    let result = match kind.as_str() {
        "zip" => {
            zip::ZipArchive::new(Cursor::new(bytes)).and_then(|mut archive| archive.extract(dest)).map_err(|e| e.to_string())
        }
        "tar" => tar::Archive::new(Cursor::new(bytes)).unpack(dest).map_err(|e| e.to_string()),
        "tgz" => tar::Archive::new(flate2::read::GzDecoder::new(Cursor::new(bytes))).unpack(dest).map_err(|e| e.to_string()),
        other => Err(format!("unsupported bundle type {other}")),
    };
    result.map_err(|e| format!("The bundle could not be unpacked as a {kind} archive: {e}"))
}

/// One `files` entry of an appspec.
#[derive(Debug, Clone, Deserialize)]
pub struct FileMapping {
    /// Path in the bundle (`/` = everything).
    pub source: String,
    /// Absolute directory on the instance.
    pub destination: String,
}

/// One hook script of an appspec.
#[derive(Debug, Clone, Deserialize)]
pub struct HookScript {
    /// Script path relative to the bundle root.
    pub location: String,
    /// Seconds before the script is killed (default 3600, as the agent).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Ignored: scripts run as the emulator's user.
    #[serde(default)]
    pub runas: Option<String>,
}

/// A parsed `appspec.yml` (EC2/on-premises flavour).
#[derive(Debug, Clone, Default)]
pub struct AppSpec {
    /// Files to install.
    pub files: Vec<FileMapping>,
    /// Hook scripts by lifecycle event.
    pub hooks: BTreeMap<String, Vec<HookScript>>,
    /// Appspec-level `file_exists_behavior`, if set.
    pub file_exists_behavior: Option<String>,
}

#[derive(Deserialize)]
struct RawAppSpec {
    version: Option<serde_yaml_ng::Value>,
    os: Option<String>,
    #[serde(default)]
    files: Option<Vec<FileMapping>>,
    #[serde(default)]
    hooks: Option<BTreeMap<String, Option<Vec<HookScript>>>>,
    file_exists_behavior: Option<String>,
}

/// The appspec file of an unpacked revision, if any.
pub fn appspec_path(archive: &Path) -> Option<PathBuf> {
    ["appspec.yml", "appspec.yaml"].iter().map(|n| archive.join(n)).find(|p| p.is_file())
}

/// Reads and validates the appspec of an unpacked revision.
pub fn read_appspec(archive: &Path) -> Result<AppSpec, String> {
    let path = appspec_path(archive).ok_or_else(|| {
        format!(
            "The CodeDeploy agent did not find an AppSpec file within the unpacked revision directory at revision-relative path \"appspec.yml\". The revision was unpacked to directory \"{}\", and the AppSpec file was expected but not found at path \"{}\".",
            archive.display(),
            archive.join("appspec.yml").display()
        )
    })?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("Cannot read {}: {e}", path.display()))?;
    let raw: RawAppSpec = serde_yaml_ng::from_str(&text).map_err(|e| format!("The AppSpec file is not valid YAML: {e}"))?;
    let version_ok = match &raw.version {
        Some(serde_yaml_ng::Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(serde_yaml_ng::Value::String(s)) => s == "0.0",
        _ => false,
    };
    // The agent's words (application_specification.rb).
    if !version_ok {
        let shown = match &raw.version {
            Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
            Some(serde_yaml_ng::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        return Err(format!(
            "The deployment failed because an invalid version value ({shown}) was entered in the application specification file. Make sure your AppSpec file specifies \"0.0\" as the version, and then try again."
        ));
    }
    match raw.os.as_deref() {
        Some("linux") => {}
        other => {
            return Err(format!(
                "The deployment failed because the application specification file specifies an unsupported operating system ({}). Specify either \"linux\" or \"windows\" in the os section of the AppSpec file, and then try again.",
                other.unwrap_or("")
            ));
        }
    }
    if let Some(b) = raw.file_exists_behavior.as_deref().filter(|b| !["DISALLOW", "OVERWRITE", "RETAIN"].contains(b)) {
        return Err(format!(
            "The deployment failed because an invalid file_exists_behavior value ({b}) was entered in the application specification file. Make sure your AppSpec file specifies one of DISALLOW,OVERWRITE,RETAIN as the file_exists_behavior, and then try again."
        ));
    }
    let hooks: BTreeMap<String, Vec<HookScript>> =
        raw.hooks.unwrap_or_default().into_iter().map(|(event, scripts)| (event, scripts.unwrap_or_default())).collect();
    for (event, scripts) in &hooks {
        if matches!(event.as_str(), "DownloadBundle" | "Install") {
            return Err(format!("The AppSpec file has a hook for {event}, which is reserved for the CodeDeploy agent."));
        }
        if let Some(bad) = scripts.iter().find(|s| s.timeout.is_some_and(|t| t > 3600)) {
            return Err(format!("The hook script {} has a timeout above the maximum of 3600 seconds.", bad.location));
        }
    }
    Ok(AppSpec { files: raw.files.unwrap_or_default(), hooks, file_exists_behavior: raw.file_exists_behavior })
}

/// Maps a path in the bundle or an absolute instance path onto `base`,
/// refusing `..` so a bundle cannot write outside the instance.
pub fn confine(base: &Path, path: &str) -> Result<PathBuf, String> {
    let mut out = base.to_path_buf();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("The path {path} leaves the instance root."));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, content.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn tar_and_tgz_bundles_unpack_with_or_without_a_bundle_type() {
        let tar = tar_of(&[("appspec.yml", "version: 0.0\nos: linux\n"), ("app/a.txt", "a")]);
        let tgz = gzip(&tar);
        for (bytes, kind) in [(&tar, Some("tar")), (&tgz, Some("tgz")), (&tar, None), (&tgz, None)] {
            let dir = tempfile::tempdir().unwrap();
            unpack(bytes, kind, dir.path()).unwrap();
            assert_eq!(std::fs::read_to_string(dir.path().join("app/a.txt")).unwrap(), "a");
            assert!(read_appspec(dir.path()).is_ok());
        }
    }

    #[test]
    fn a_bundle_of_the_wrong_type_says_so() {
        let tar = tar_of(&[("appspec.yml", "version: 0.0\nos: linux\n")]);
        let dir = tempfile::tempdir().unwrap();
        let err = unpack(&tar, Some("zip"), dir.path()).unwrap_err();
        assert!(err.contains("could not be unpacked as a zip archive"), "{err}");
    }

    #[test]
    fn appspec_version_os_and_reserved_hooks_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join("appspec.yml"), text).unwrap();
        write("version: 1.0\nos: linux\n");
        assert!(read_appspec(dir.path()).unwrap_err().contains("version"));
        write("version: 0.0\nos: windows\n");
        assert!(read_appspec(dir.path()).unwrap_err().contains("windows"));
        write("version: 0.0\nos: linux\nhooks:\n  Install:\n    - location: x.sh\n");
        assert!(read_appspec(dir.path()).unwrap_err().contains("reserved"));
        write("version: 0.0\nos: linux\nhooks:\n  AfterInstall:\n    - location: x.sh\n      timeout: 30\n");
        let spec = read_appspec(dir.path()).unwrap();
        assert_eq!(spec.hooks["AfterInstall"][0].timeout, Some(30));
    }

    #[test]
    fn paths_cannot_escape_the_instance_root() {
        let base = Path::new("/work/i-1");
        assert_eq!(confine(base, "/var/www").unwrap(), Path::new("/work/i-1/var/www"));
        assert!(confine(base, "/var/../../etc").is_err());
    }
}
