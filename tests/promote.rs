//! `ferry release s3://BUCKET/KEY`: promote a bundle that is already in S3
//! to a deployment without rebuilding it, the same bytes proven by S3's
//! SHA-256 against the `ferry-sha256` ferry recorded.

mod common;

use std::path::{Path, PathBuf};

use common::{FERRY, Run, Stack, StackOptions, assert_no_secrets, run};

fn app(dir: &Path) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("appspec.yml"), "version: 0.0\nos: linux\n").unwrap();
    std::fs::write(app.join("index.html"), "promoted\n").unwrap();
    app
}

fn ferry(stack: &Stack, config: &Path, args: &[&str]) -> Run {
    run(stack.ferry_command(FERRY).args(args).arg("--config").arg(config))
}

fn revision_of(stack: &Stack, id: &str) -> (String, String, String) {
    let info = stack.block_on(async {
        stack.codedeploy().get_deployment().deployment_id(id).send().await.unwrap().deployment_info().unwrap().clone()
    });
    let s3 = info.revision().unwrap().s3_location().unwrap().clone();
    (s3.bucket().unwrap().into(), s3.key().unwrap().into(), s3.e_tag().unwrap_or_default().into())
}

/// A staging bucket `ferry-staging` the deployer may read and write (moto's
/// admin switch lets the two set-up calls through).
fn staging_bucket(stack: &Stack) {
    common::allow_unauthenticated_calls(stack, 2);
    stack.block_on(async {
        stack.s3_as_prod().create_bucket().bucket("ferry-staging").send().await.unwrap();
        let grant = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::ferry-staging", "arn:aws:s3:::ferry-staging/*"]}]});
        stack
            .iam_as_prod()
            .put_role_policy()
            .role_name("CA_ServiceDeployer")
            .policy_name("staging")
            .policy_document(grant.to_string())
            .send()
            .await
            .unwrap();
    });
}

#[test]
fn a_staged_bundle_is_deployed_where_it_is_without_uploading_again() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let staged = ferry(&stack, &config, &["upload", app(dir.path()).to_str().unwrap(), "--env", "production"]);
    assert_eq!(staged.code, 0, "{}", staged.all());
    let uri = staged.stdout.trim().to_string();
    assert!(uri.starts_with("s3://"), "{uri}");

    let out = ferry(&stack, &config, &["release", &uri, "--env", "production", "--wait", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.events_of("upload_started").is_empty() && out.events_of("bundle_ready").is_empty(), "nothing built or sent");
    assert_eq!(out.events_of("upload_skipped").len(), 1, "{}", out.stdout);
    let receipt = &out.events_of("receipt")[0];
    let (bucket, key, _) = revision_of(&stack, receipt["deployment_id"].as_str().unwrap());
    assert_eq!(format!("s3://{bucket}/{key}"), uri, "the deployment is pinned to the staged object");
    assert!(key.contains(receipt["sha256"].as_str().unwrap()), "the receipt names the proven SHA-256");
    assert_no_secrets(&stack, &out);
}

#[test]
fn a_bundle_from_another_bucket_is_copied_under_its_content_address_and_verified() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    staging_bucket(&stack);
    let staged = ferry(
        &stack,
        &config,
        &["upload", app(dir.path()).to_str().unwrap(), "--env", "production", "--bucket", "ferry-staging"],
    );
    assert_eq!(staged.code, 0, "{}", staged.all());
    let uri = staged.stdout.trim().to_string();
    assert!(uri.starts_with("s3://ferry-staging/"), "{uri}");

    let out = ferry(&stack, &config, &["release", &uri, "--env", "production", "--wait", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let receipt = &out.events_of("receipt")[0];
    let (bucket, key, _) = revision_of(&stack, receipt["deployment_id"].as_str().unwrap());
    assert_eq!(bucket, stack.bucket(), "deployed from the production bucket");
    assert_eq!(key, uri.trim_start_matches("s3://ferry-staging/"), "under the same content address");
    assert_eq!(out.events_of("uploaded").len(), 1, "the copy is reported: {}", out.stdout);
}

#[test]
fn an_object_ferry_did_not_upload_is_refused_with_nothing_deployed() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let zip = dir.path().join("handmade.zip");
    std::fs::write(&zip, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    stack.block_on(async {
        stack
            .s3_as_prod()
            .put_object()
            .bucket(stack.bucket())
            .key("releases/web/handmade.zip")
            .body(std::fs::read(&zip).unwrap().into())
            .send()
            .await
            .unwrap();
    });
    let uri = format!("s3://{}/releases/web/handmade.zip", stack.bucket());
    let out = ferry(&stack, &config, &["release", &uri, "--env", "production"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("no ferry-sha256 metadata"), "{}", out.stderr);
    assert!(common::deployment_ids(&stack).is_empty());

    let not_bundle = ferry(&stack, &config, &["release", &format!("s3://{}/notes.txt", stack.bucket()), "--env", "production"]);
    assert_eq!(not_bundle.code, 1, "{}", not_bundle.all());
    assert!(not_bundle.stderr.contains("is not a .zip, .tar or .tgz bundle"), "{}", not_bundle.stderr);
}

/// A bundle over 16 MiB goes up in parts, and S3 keeps only its full-object
/// CRC-64/NVME: it is proven by that against the `ferry-crc64nvme` ferry
/// recorded with its SHA-256, where it is and as copied from another bucket.
#[test]
fn a_bundle_uploaded_in_parts_is_proven_by_its_crc64nvme_where_it_is_and_when_copied() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let app = app(dir.path());
    // 20 MiB that deflate cannot shrink: three parts.
    std::fs::write(app.join("blob.bin"), common::noise(20 << 20)).unwrap();
    let staged = ferry(&stack, &config, &["upload", app.to_str().unwrap(), "--env", "production"]);
    assert_eq!(staged.code, 0, "{}", staged.all());
    let uri = staged.stdout.trim().to_string();
    let key = uri.trim_start_matches(&format!("s3://{}/", stack.bucket())).to_string();
    let head = stack.block_on(
        stack
            .s3_as_prod()
            .head_object()
            .bucket(stack.bucket())
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send(),
    );
    let head = head.unwrap();
    assert!(head.checksum_sha256().is_none() && head.checksum_crc64_nvme().is_some(), "a multipart object: {head:?}");

    let out = ferry(&stack, &config, &["release", &uri, "--env", "production", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.events_of("upload_skipped").len(), 1, "deployed where it is: {}", out.stdout);

    // Copied from a second bucket, the copy gets S3's own SHA-256.
    staging_bucket(&stack);
    let staged = ferry(&stack, &config, &["upload", app.to_str().unwrap(), "--env", "production", "--bucket", "ferry-staging"]);
    assert_eq!(staged.code, 0, "{}", staged.all());
    // Remove the production copy so the promotion has to copy.
    stack.block_on(stack.s3_as_prod().delete_object().bucket(stack.bucket()).key(&key).send()).unwrap();
    let out = ferry(&stack, &config, &["release", staged.stdout.trim(), "--env", "production", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(out.events_of("uploaded").len(), 1, "copied: {}", out.stdout);
}

/// Puts `body` at `key` in `bucket` as someone with write access to the
/// bucket could: a single PUT whose full-object checksum S3 keeps is a
/// CRC-64/NVME (no SHA-256, as for a multipart bundle), and whatever
/// `ferry-*` metadata they like.
fn plant(stack: &Stack, bucket: &str, key: &str, body: Vec<u8>, metadata: &[(&str, String)]) {
    if bucket != stack.bucket() {
        // Only the deployer's role may write the staging bucket.
        common::allow_unauthenticated_calls(stack, 1);
    }
    stack.block_on(async {
        let mut put = stack
            .s3_as_prod()
            .put_object()
            .bucket(bucket)
            .key(key)
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
            .body(body.into());
        for (k, v) in metadata {
            put = put.metadata(*k, v);
        }
        put.send().await.unwrap();
    });
}

fn crc64nvme_hex(bytes: &[u8]) -> String {
    let table: Vec<u64> =
        (0..256u64).map(|i| (0..8).fold(i, |c, _| if c & 1 == 1 { (c >> 1) ^ 0x9a6c_9329_ac4b_c9b5 } else { c >> 1 })).collect();
    let crc = bytes.iter().fold(!0u64, |c, &b| table[((c ^ b as u64) & 0xff) as usize] ^ (c >> 8));
    format!("{:016x}", !crc)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A zip with a good appspec and `extra` entries: (name, contents, unix
/// mode; 0o120777 for a symlink whose target is the contents).
fn zip_of(extra: &[(&str, &[u8], u32)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("appspec.yml", opts).unwrap();
    zip.write_all(b"version: 0.0\nos: linux\n").unwrap();
    for (name, body, mode) in extra {
        if *mode == 0o120777 {
            zip.add_symlink(*name, std::str::from_utf8(body).unwrap(), opts).unwrap();
        } else {
            zip.start_file(*name, opts.unix_permissions(*mode)).unwrap();
            zip.write_all(body).unwrap();
        }
    }
    zip.finish().unwrap().into_inner()
}

fn exists(stack: &Stack, bucket: &str, key: &str) -> bool {
    stack.block_on(stack.s3_as_prod().head_object().bucket(bucket).key(key).send()).is_ok()
}

/// Issue 23 item 3: an object whose `ferry-sha256` names another bundle,
/// with a `ferry-crc64nvme` that matches its bytes (all the old check
/// compared), was deployed with a receipt naming a SHA-256 it does not
/// have. Promotion hashes the bytes now: refused, from the environment's own
/// bucket and from another one, with nothing deployed and nothing copied.
#[test]
fn an_object_whose_bytes_are_not_its_recorded_sha256_is_refused_and_not_copied() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    staging_bucket(&stack);
    let genuine = zip_of(&[("index.html", b"genuine\n", 0o644)]);
    let forged = zip_of(&[("index.html", b"FORGED!\n", 0o644)]);
    assert_eq!(genuine.len(), forged.len());
    let claim = sha256_hex(&genuine);
    let metadata = [("ferry-sha256", claim.clone()), ("ferry-crc64nvme", crc64nvme_hex(&forged))];
    // The content address a promotion from another bucket copies to.
    let content_key = format!("releases/web/{claim}.zip");
    let own = (stack.bucket().to_string(), format!("releases/web/staged-{claim}.zip"));
    let staging = ("ferry-staging".to_string(), content_key.clone());
    for (bucket, key) in [&own, &staging] {
        plant(&stack, bucket, key, forged.clone(), &metadata);
    }

    for (bucket, key) in [own, staging] {
        let uri = format!("s3://{bucket}/{key}");
        let out = ferry(&stack, &config, &["release", &uri, "--env", "production"]);
        assert_eq!(out.code, 1, "{}", out.all());
        for phrase in [uri.as_str(), "its bytes hash to SHA-256", claim.as_str(), "ferry-sha256 metadata claims"] {
            assert!(out.stderr.contains(phrase), "{bucket}: missing {phrase:?}: {}", out.stderr);
        }
        assert_no_secrets(&stack, &out);
    }
    assert!(common::deployment_ids(&stack).is_empty(), "nothing deployed");
    assert!(!exists(&stack, stack.bucket(), &content_key), "nothing copied into the production bucket");
}

/// Issue 23 item 3: promotion ran none of ferry's archive checks, so a zip
/// with a `../` entry and a link to /etc/passwd (refused locally) was
/// deployed. The downloaded object gets the same checks as a local archive,
/// and the message names the object.
#[test]
fn a_promoted_object_gets_the_archive_checks_a_local_archive_gets() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    let cases: [(&str, Vec<u8>, &str); 2] = [
        ("traversal", zip_of(&[("../../etc/cron.d/evil", b"* * * * * root id\n", 0o644)]), "../../etc/cron.d/evil"),
        ("link", zip_of(&[("site/passwd", b"/etc/passwd", 0o120777)]), "leads outside the bundle"),
    ];
    for (name, body, says) in cases {
        let sha = sha256_hex(&body);
        // Honest metadata: S3's own SHA-256 and ferry-sha256 agree.
        let key = format!("releases/web/{name}-{sha}.zip");
        stack.block_on(async {
            stack
                .s3_as_prod()
                .put_object()
                .bucket(stack.bucket())
                .key(&key)
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
                .metadata("ferry-sha256", &sha)
                .body(body.into())
                .send()
                .await
                .unwrap()
        });
        let uri = format!("s3://{}/{key}", stack.bucket());
        let out = ferry(&stack, &config, &["release", &uri, "--env", "production"]);
        assert_eq!(out.code, 1, "{name}: {}", out.all());
        assert!(out.stderr.contains(says) && out.stderr.contains(&uri), "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("ferry-promote-"), "names the object, not a temporary file: {}", out.stderr);
        assert_no_secrets(&stack, &out);
    }
    assert!(common::deployment_ids(&stack).is_empty(), "nothing deployed");
}

/// Issue 23 item 11: a source bucket S3 would never accept is named as
/// such, not as "unhandled error … permissions".
#[test]
fn an_invalid_source_bucket_is_named_before_any_s3_call() {
    let stack = Stack::start_with(StackOptions { instances: 1, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = stack.write_config(dir.path(), "production");
    // STS and S3 unreachable: the name must be refused before either is asked.
    let out = run(stack
        .ferry_command(FERRY)
        .args(["release", "s3://Not_A_Bucket/releases/web/x.zip", "--env", "production", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("the bucket name `Not_A_Bucket` is not valid"), "{}", out.stderr);
    assert!(!out.stderr.contains("assum"), "no role was assumed first: {}", out.stderr);
    assert_no_secrets(&stack, &out);
}
