//! Helpers shared by the conformance tests: an emulator, an SDK client for
//! it, and (when the repo's virtualenv has it) a moto S3 to hold bundles.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::Client;
use aws_sdk_codedeploy::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codedeploy::types::builders::BlueGreenDeploymentConfigurationBuilder;
use aws_sdk_codedeploy::types::{
    BlueGreenDeploymentConfiguration, BlueInstanceTerminationOption, BundleType, DeploymentInfo, DeploymentOption,
    DeploymentReadyAction, DeploymentReadyOption, DeploymentStatus, DeploymentStyle, DeploymentType, InstanceAction,
    RevisionLocation, RevisionLocationType, S3Location, Tag,
};
use codedeploy_emulator::{Config, Emulator};

/// A loopback port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The repo's virtualenv (see scripts/setup-venv).
pub fn venv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv")
}

/// botocore's CodeDeploy model from the venv. Panics without it: every
/// answer of every emulator test is checked against it, and a run without
/// the model would silently check nothing.
pub fn service_model() -> PathBuf {
    codedeploy_emulator::service_model::botocore_model_in(&venv()).unwrap_or_else(|| {
        panic!(
            "botocore's CodeDeploy model is not in {}: run scripts/setup-venv (it installs the pinned botocore)",
            venv().display()
        )
    })
}

/// Test config: fast steps, an S3 endpoint that refuses connections, and
/// every answer held to the service model (an emulator that gave an answer
/// outside it panics when dropped).
pub fn config() -> Config {
    Config {
        step_delay: Duration::from_millis(5),
        s3_endpoint: Some(format!("http://127.0.0.1:{}", dead_port())),
        s3_credentials: Some(("testing".into(), "testing".into())),
        service_model: Some(service_model()),
        ..Config::default()
    }
}

/// An SDK client for `emulator`, without retries so errors surface at once.
pub fn client(emulator: &Emulator) -> Client {
    let conf = aws_sdk_codedeploy::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(emulator.endpoint())
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .retry_config(aws_sdk_codedeploy::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Creates an application and a group of `instances` instances with `tags`.
pub async fn app_and_group(client: &Client, app: &str, group: &str, instances: usize, tags: &[(&str, &str)]) {
    client.create_application().application_name(app).send().await.unwrap();
    let mut req = client
        .create_deployment_group()
        .application_name(app)
        .deployment_group_name(group)
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeployServiceRole")
        .tags(Tag::builder().key("emulator:instances").value(instances.to_string()).build());
    for (k, v) in tags {
        req = req.tags(Tag::builder().key(*k).value(*v).build());
    }
    req.send().await.unwrap();
}

/// An S3 revision.
/// CreateDeployment of `bucket/key` to `group` of application `shop`; its id.
pub async fn create_deployment(cd: &Client, group: &str, bucket: &str, key: &str, etag: Option<&str>) -> String {
    cd.create_deployment()
        .application_name("shop")
        .deployment_group_name(group)
        .revision(s3_revision(bucket, key, etag))
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap()
}

pub fn s3_revision(bucket: &str, key: &str, etag: Option<&str>) -> RevisionLocation {
    RevisionLocation::builder()
        .revision_type(RevisionLocationType::S3)
        .s3_location(
            S3Location::builder()
                .bucket(bucket)
                .key(key)
                .bundle_type(BundleType::Zip)
                .set_e_tag(etag.map(str::to_string))
                .build(),
        )
        .build()
}

/// Polls until the deployment is complete and returns it.
pub async fn wait_complete(client: &Client, id: &str) -> DeploymentInfo {
    let done = [DeploymentStatus::Succeeded, DeploymentStatus::Failed, DeploymentStatus::Stopped];
    poll_until(&format!("deployment {id} complete"), || info(client, id), |d| d.status.as_ref().is_some_and(|s| done.contains(s)))
        .await
}

/// The deployment as GetDeployment gives it.
pub async fn info(client: &Client, id: &str) -> DeploymentInfo {
    client.get_deployment().deployment_id(id).send().await.unwrap().deployment_info.unwrap()
}

/// Calls `fetch` every 10 ms until `done` holds for what it returns, and
/// returns that; fails naming `what` (and the last value) after 60 s.
pub async fn poll_until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    what: &str,
    mut fetch: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = fetch().await;
        if done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "never {what} within 60 s: {value:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Blue/green with traffic control: the deployment style of an EC2
/// blue/green group and of every ECS group.
pub fn blue_green_style() -> DeploymentStyle {
    DeploymentStyle::builder()
        .deployment_type(DeploymentType::BlueGreen)
        .deployment_option(DeploymentOption::WithTrafficControl)
        .build()
}

/// A blue/green group's waits: Ready for `ready` minutes then
/// STOP_DEPLOYMENT (`None`: reroute at once), and the originals TERMINATE'd
/// after `terminate` minutes (`None`: KEEP_ALIVE).
pub fn blue_green_waits(ready: Option<i32>, terminate: Option<i32>) -> BlueGreenDeploymentConfigurationBuilder {
    let ready = match ready {
        Some(minutes) => DeploymentReadyOption::builder()
            .action_on_timeout(DeploymentReadyAction::StopDeployment)
            .wait_time_in_minutes(minutes),
        None => DeploymentReadyOption::builder().action_on_timeout(DeploymentReadyAction::ContinueDeployment),
    };
    let terminate = match terminate {
        Some(minutes) => {
            BlueInstanceTerminationOption::builder().action(InstanceAction::Terminate).termination_wait_time_in_minutes(minutes)
        }
        None => BlueInstanceTerminationOption::builder().action(InstanceAction::KeepAlive),
    };
    BlueGreenDeploymentConfiguration::builder()
        .deployment_ready_option(ready.build())
        .terminate_blue_instances_on_deployment_success(terminate.build())
}

/// A zip holding `files` (path, content).
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        for (name, content) in files {
            let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
            zip.start_file(*name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    buf.into_inner()
}

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto from the repo's `.venv`. A missing moto fails the test (run
/// `scripts/setup-venv`, as `scripts/test` does): a skip would pass silently.
pub fn moto() -> Moto {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server");
    assert!(bin.exists(), "moto_server missing at {}: run scripts/setup-venv (scripts/test does)", bin.display());
    // The free port is free only when asked: another test may take it
    // before moto binds. werkzeug logs "Running on" once bound, and only
    // our moto writes our log, so an answer from someone else's server on
    // the same port is never mistaken for ours.
    for _ in 0..5 {
        let port = dead_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().unwrap().is_some() {
                break; // lost the port race; try another
            }
            let bound = std::fs::read_to_string(log.path()).is_ok_and(|l| l.contains("Running on"));
            if bound && TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
            }
            assert!(Instant::now() < deadline, "moto did not listen within 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("moto_server could not bind a free port in 5 attempts")
}

/// An S3 client for moto.
pub fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Puts `body` at bucket/key (creating the bucket) and returns the object's eTag.
pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let out = s3.put_object().bucket(bucket).key(key).body(body.into()).send().await.unwrap();
    out.e_tag().unwrap().trim_matches('"').to_string()
}

/// An emulator fetching bundles from moto.
pub fn emulator_with_s3(endpoint: &str, tweak: impl FnOnce(&mut Config)) -> Emulator {
    let mut config = config();
    config.s3_endpoint = Some(endpoint.to_string());
    tweak(&mut config);
    Emulator::start(config).unwrap()
}

/// Every target id of a deployment, following nextToken (the SDK has no
/// paginator for ListDeploymentTargets).
pub async fn all_target_ids(client: &Client, id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page = client.list_deployment_targets().deployment_id(id).set_next_token(token).send().await.unwrap();
        ids.extend(page.target_ids().iter().cloned());
        token = page.next_token;
        if token.is_none() {
            return ids;
        }
    }
}
