//! Bundling and uploading, end to end: reproducible bundles (the same bytes
//! on any number of threads, extracted by `unzip` and `tar`), the bundle
//! cache, `ferry check`, multipart with composite SHA-256, skip, resume,
//! abort, and bucket ownership. S3 traffic goes through a recording proxy in front of moto
//! (tests/common/proxy.rs) because moto neither checks ExpectedBucketOwner
//! nor reports what went over the wire.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use common::proxy::S3Proxy;
use common::{FERRY, Stack, Tripwire, app_tree, assert_no_secrets, assert_no_stack_secrets, run};
use ferry_test_stack::PRODUCTION_ACCOUNT;
use sha2::{Digest, Sha256};

/// Incompressible bytes, so a zip of them is as big as they are.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `ferry bundle app --out <out>`; returns the printed SHA-256.
fn bundle(cwd: &Path, app: &Path, out: &Path, extra: &[&str]) -> String {
    let wire = Tripwire::new();
    let r = run(wire.command(cwd).arg("bundle").arg(app).arg("--out").arg(out).args(extra));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!wire.tripped(), "bundling calls no AWS service");
    r.stdout.trim().to_string()
}

/// `ferry bundle` on `threads` worker threads (FERRY_BUNDLE_THREADS).
fn bundle_on(threads: usize, cwd: &Path, app: &Path, out: &Path, extra: &[&str]) -> String {
    let wire = Tripwire::new();
    let mut cmd = wire.command(cwd);
    cmd.arg("bundle").arg(app).arg("--out").arg(out).args(extra).env("FERRY_BUNDLE_THREADS", threads.to_string());
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    r.stdout.trim().to_string()
}

/// Log lines that deflate about 4:1, seeded.
fn log_text(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 100);
    let paths = ["/", "/index.html", "/api/v1/releases", "/static/app.js", "/healthz"];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let line = format!(
            "10.0.{}.{} - - [27/Nov/2026:10:{:02}:{:02}] \"GET {} HTTP/1.1\" {} {}\n",
            x % 256,
            (x >> 8) % 256,
            (x >> 16) % 60,
            (x >> 24) % 60,
            paths[(x >> 32) as usize % paths.len()],
            [200, 200, 304, 404][(x >> 40) as usize % 4],
            (x >> 44) % 100_000
        );
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// An app with what the parallel writer treats differently: small files,
/// multi-chunk text (deflated in chunks) and noise (stored), an empty file,
/// an executable and a link; `site/SHA256SUMS` lists every file's digest.
fn varied_tree(dir: &Path, validate: &str) -> PathBuf {
    let app = app_tree(dir, validate);
    std::fs::write(app.join("site/noise.bin"), noise((3 << 20) + 12345, 3)).unwrap();
    std::fs::write(app.join("site/access.log"), log_text((5 << 20) + 777, 5)).unwrap();
    std::fs::write(app.join("site/empty"), "").unwrap();
    std::os::unix::fs::symlink("index.html", app.join("site/current")).unwrap();
    let mut sums = String::new();
    for f in ["appspec.yml", "scripts/validate.sh", "site/index.html", "site/noise.bin", "site/access.log", "site/empty"] {
        sums.push_str(&format!("{}  {f}\n", sha256_hex(&app.join(f))));
    }
    std::fs::write(app.join("site/SHA256SUMS"), sums).unwrap();
    app
}

/// `extracted` holds exactly `app`'s files, bytes, executable bits and link.
fn assert_same_tree(app: &Path, extracted: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut names = Vec::new();
    for e in walk(extracted) {
        let rel = e.strip_prefix(extracted).unwrap().to_path_buf();
        let (src, meta) = (app.join(&rel), std::fs::symlink_metadata(&e).unwrap());
        if meta.file_type().is_symlink() {
            assert_eq!(std::fs::read_link(&e).unwrap(), std::fs::read_link(&src).unwrap(), "{rel:?}");
        } else {
            assert!(std::fs::read(&e).unwrap() == std::fs::read(&src).unwrap(), "{rel:?} differs");
            let exec = |m: &std::fs::Metadata| m.permissions().mode() & 0o111 != 0;
            assert_eq!(exec(&meta), exec(&std::fs::metadata(&src).unwrap()), "{rel:?}");
        }
        names.push(rel.display().to_string());
    }
    names.sort();
    let want = ["appspec.yml", "scripts/validate.sh", "site/SHA256SUMS", "site/access.log", "site/current", "site/empty"];
    assert_eq!(names[..6], want, "{names:?}");
    assert_eq!(names[6..], ["site/index.html", "site/noise.bin"], "{names:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A Debian tool the tests need: scripts/test installs it.
fn tool(name: &str) -> std::process::Command {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(name).is_file());
    assert!(found, "`{name}` is not installed (Debian package {name}; scripts/test installs it)");
    std::process::Command::new(name)
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A 50 MiB application bundled into a zip; returns (zip path, sha256).
fn big_bundle(dir: &Path) -> (PathBuf, String) {
    let app = app_tree(dir, "exit 0");
    std::fs::write(app.join("site/big.bin"), noise(50 << 20, 7)).unwrap();
    let zip = dir.join("big.zip");
    let sha = bundle(dir, &app, &zip, &[]);
    (zip, sha)
}

/// `ferry release <path>` with S3 through `proxy`.
fn release(stack: &Stack, proxy: &S3Proxy, dir: &Path, path: &Path) -> common::Run {
    let config = config_with_tags(stack, dir);
    run(stack
        .ferry_command(FERRY)
        .arg("release")
        .arg(path)
        .args(["--env", "production", "--wait", "--timeout", "2m", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint()))
}

/// The stack's ferry.toml plus object tags and metadata.
fn config_with_tags(stack: &Stack, dir: &Path) -> PathBuf {
    let config = stack.write_config(dir, "production");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[env.production.tags]\nteam = \"web ops\"\n\n[env.production.metadata]\nchange = \"CHG-1\"\n");
    std::fs::write(&config, text).unwrap();
    config
}

/// The object's tags and user metadata, as S3 holds them.
fn tags_and_metadata(stack: &Stack, key: &str) -> (Vec<(String, String)>, Option<String>) {
    stack.block_on(async {
        let s3 = stack.s3_as_prod();
        let tags = s3.get_object_tagging().bucket(stack.bucket()).key(key).send().await.unwrap();
        let tags = tags.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        let head = s3.head_object().bucket(stack.bucket()).key(key).send().await.unwrap();
        (tags, head.metadata().and_then(|m| m.get("change").cloned()))
    })
}

fn key_of(sha: &str) -> String {
    format!("{}/{}/{sha}.zip", ferry_test_stack::PREFIX, "web")
}

/// S3's full-object CRC-64/NVME of `path` (base64 of the big-endian value),
/// computed here from the file with a plain table-driven CRC written from
/// the algorithm's parameters (reflected polynomial 0x9a6c9329ac4bc9b5,
/// init and xorout all ones), independently of ferry's crc-fast.
fn crc64nvme_of(path: &Path) -> String {
    let table: Vec<u64> =
        (0..256u64).map(|i| (0..8).fold(i, |c, _| if c & 1 == 1 { (c >> 1) ^ 0x9a6c_9329_ac4b_c9b5 } else { c >> 1 })).collect();
    let crc = std::fs::read(path).unwrap().iter().fold(!0u64, |c, &b| table[((c ^ b as u64) & 0xff) as usize] ^ (c >> 8));
    base64::engine::general_purpose::STANDARD.encode((!crc).to_be_bytes())
}

/// A HeadObject's CRC-64/NVME, if S3 keeps it as a full-object checksum.
fn full_object_crc64(head: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Option<String> {
    let full = head.checksum_type().is_none_or(|t| *t == aws_sdk_s3::types::ChecksumType::FullObject);
    head.checksum_crc64_nvme().filter(|_| full).map(String::from)
}

#[test]
fn the_tests_crc64nvme_is_the_catalogued_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("check");
    std::fs::write(&f, "123456789").unwrap();
    // The CRC catalogue's check value for CRC-64/NVME.
    let want = base64::engine::general_purpose::STANDARD.encode(0xAE8B_1486_0A79_9888u64.to_be_bytes());
    assert_eq!(crc64nvme_of(&f), want);
}

fn assert_every_call_names_the_owner(proxy: &S3Proxy) {
    let seen = proxy.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(
            s.expected_owner.as_deref(),
            Some(PRODUCTION_ACCOUNT),
            "{} {} without ExpectedBucketOwner",
            s.method,
            s.target
        );
    }
}

#[test]
fn same_directory_bundled_twice_gives_identical_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    for kind in ["zip", "tgz"] {
        let a = dir.path().join(format!("a.{kind}"));
        let b = dir.path().join(format!("b.{kind}"));
        // Each file carries its own mtime, no later than SOURCE_DATE_EPOCH:
        // with it set (as a CI sets it from the commit), a fresh copy of a
        // file with a new mtime bundles to the same bytes.
        let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 86_400;
        let bundle_at_epoch = |out: &Path| {
            let wire = Tripwire::new();
            let mut cmd = wire.command(dir.path());
            let r = run(cmd
                .arg("bundle")
                .arg(&app)
                .arg("--out")
                .arg(out)
                .args(["--bundle-type", kind])
                .env("SOURCE_DATE_EPOCH", epoch.to_string()));
            assert_eq!(r.code, 0, "{}", r.all());
            r.stdout.trim().to_string()
        };
        let sha_a = bundle_at_epoch(&a);
        std::fs::write(app.join("site/index.html"), "<h1>hello from ferry</h1>\n").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(app.join("site/index.html")).unwrap().set_modified(later).unwrap();
        std::fs::File::open(&app).unwrap().set_modified(later).unwrap();
        let sha_b = bundle_at_epoch(&b);
        assert_eq!(sha_a, sha_b, "{kind}");
        assert_eq!(sha_a, sha256_hex(&a), "the printed SHA-256 is the file's ({kind})");
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }
}

#[test]
fn bundles_are_the_same_bytes_on_one_thread_or_many_and_unzip_and_tar_extract_them() {
    let dir = tempfile::tempdir().unwrap();
    let app = varied_tree(dir.path(), "exit 0");
    for kind in ["zip", "tgz"] {
        let out = |threads: usize| dir.path().join(format!("t{threads}.{kind}"));
        let sha = bundle_on(1, dir.path(), &app, &out(1), &["--bundle-type", kind]);
        for threads in [2, 7] {
            assert_eq!(bundle_on(threads, dir.path(), &app, &out(threads), &["--bundle-type", kind]), sha, "{kind}");
            assert!(std::fs::read(out(threads)).unwrap() == std::fs::read(out(1)).unwrap(), "{kind} on {threads} threads");
        }
        assert_eq!(sha256_hex(&out(1)), sha);

        let x = dir.path().join(format!("x-{kind}"));
        std::fs::create_dir_all(&x).unwrap();
        let status = if kind == "zip" {
            let t = tool("unzip").arg("-t").arg(out(1)).output().unwrap();
            assert!(t.status.success() && String::from_utf8_lossy(&t.stdout).contains("No errors detected"), "{t:?}");
            tool("unzip").arg("-q").arg(out(1)).arg("-d").arg(&x).status().unwrap()
        } else {
            tool("tar").arg("-xzf").arg(out(1)).arg("-C").arg(&x).status().unwrap()
        };
        assert!(status.success(), "{kind}: {status}");
        assert_same_tree(&app, &x);
    }
}

#[test]
fn a_bundle_of_chunked_stored_and_deflated_entries_deploys_byte_for_byte() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    // The agent runs hooks from `/`; the script finds the unpacked bundle
    // by its own path (`<archive>/scripts/validate.sh`).
    let check = "cd \"$(dirname \"$0\")/..\" && sha256sum --check --quiet site/SHA256SUMS && test \"$(readlink site/current)\" = index.html";
    let app = varied_tree(dir.path(), check);
    let out = release(&stack, &proxy, dir.path(), &app);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("Succeeded"), "{}", out.stderr);
    assert_no_stack_secrets(&stack, &[&out]);
}

#[test]
fn ferry_check_lists_each_problem_with_file_line_and_fix_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    std::fs::write(
        app.join("appspec.yml"),
        "version: 0.0\nos: linux\nfiles:\n  - source: missing\n    destination: /x\nhooks:\n  Install:\n    - location: scripts/validate.sh\n      timeout: 7200\n",
    )
    .unwrap();
    let wire = Tripwire::new();
    let out = run(wire.command(dir.path()).arg("check").arg(&app));
    assert_eq!(out.code, 1, "{}", out.all());
    let spec = app.join("appspec.yml").display().to_string();
    assert!(out.stderr.contains(&format!("{spec}:4: `source: missing` is not in the bundle")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{spec}:7: `Install` is a lifecycle event CodeDeploy runs itself")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{spec}:9: `timeout: 7200`")), "{}", out.stderr);
    assert!(out.stderr.contains("3 problem(s)"), "{}", out.stderr);
    assert!(!wire.tripped());

    let clean = app_tree(&dir.path().join("clean"), "exit 0");
    let out = run(wire.command(dir.path()).arg("check").arg(&clean));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("no problems found"), "{}", out.stderr);
}

#[test]
fn release_refuses_a_bundle_with_appspec_problems_before_any_aws_call() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    use std::os::unix::fs::PermissionsExt;
    // A script with CRLF line endings fails "bad interpreter" on every
    // instance. (One without its exec bit is fine: the agent runs chmod +x.)
    std::fs::set_permissions(app.join("scripts/validate.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(app.join("scripts/validate.sh"), "#!/bin/bash\r\nexit 0\r\n").unwrap();
    std::fs::write(dir.path().join("ferry.toml"), "[env.production]\nrole_arn = \"arn:aws:iam::222222222222:role/CA_ServiceDeployer\"\nregion = \"us-east-1\"\nbucket = \"ferry-prod-releases\"\napplication = \"web\"\ndeployment_group = \"web-prod\"\n").unwrap();
    let wire = Tripwire::new();
    let out = run(wire.command(dir.path()).args(["release", "app", "--env", "production"]));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("appspec.yml line 8: the ValidateService script `scripts/validate.sh` has CRLF (Windows) line endings"),
        "{}",
        out.stderr
    );
    assert!(!wire.tripped());
}

#[test]
fn fifty_mib_bundle_goes_multipart_and_its_full_object_crc64nvme_matches() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let (zip, sha) = big_bundle(dir.path());

    let out = release(&stack, &proxy, dir.path(), &zip);
    assert_eq!(out.code, 0, "{}", out.all());

    let parts = ferry::UploadPlan::for_size(std::fs::metadata(&zip).unwrap().len()).parts;
    assert_eq!(parts, 7, "50 MiB in 8 MiB parts");
    let sent: Vec<u32> = proxy.seen().iter().filter_map(|s| s.part_number()).collect();
    let mut sorted = sent.clone();
    sorted.sort();
    assert_eq!(sorted, (1..=parts).collect::<Vec<_>>(), "every part sent once");
    assert_every_call_names_the_owner(&proxy);

    // What moto computed from the parts it received, not what ferry claims.
    let (checksum, parts_count, len) = stack.block_on(async {
        let s3 = stack.s3_as_prod();
        let head = s3
            .head_object()
            .bucket(stack.bucket())
            .key(key_of(&sha))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let part1 = s3.head_object().bucket(stack.bucket()).key(key_of(&sha)).part_number(1).send().await.unwrap();
        (full_object_crc64(&head), part1.parts_count(), head.content_length())
    });
    let checksum = checksum.expect("the object keeps a full-object CRC-64/NVME");
    assert_eq!(checksum, crc64nvme_of(&zip), "the stored checksum is the file's CRC-64/NVME");
    assert_eq!(parts_count, Some(parts as i32));
    assert_eq!(len, Some(std::fs::metadata(&zip).unwrap().len() as i64));
    let (tags, change) = tags_and_metadata(&stack, &key_of(&sha));
    assert_eq!(tags, vec![("team".to_string(), "web ops".to_string())]);
    assert_eq!(change.as_deref(), Some("CHG-1"));
    assert_no_stack_secrets(&stack, &[&out]);
}

#[test]
fn second_release_of_the_same_directory_rebuilds_nothing_and_uploads_zero_bytes() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let first = release(&stack, &proxy, dir.path(), &app);
    assert_eq!(first.code, 0, "{}", first.all());
    let uploaded: u64 = proxy.seen().iter().filter(|s| s.method == "PUT").map(|s| s.body_len).sum();
    assert!(uploaded > 0);
    proxy.clear();

    let second = release(&stack, &proxy, dir.path(), &app);
    assert_eq!(second.code, 0, "{}", second.all());
    let seen = proxy.seen();
    assert!(seen.iter().all(|s| s.method == "HEAD" && s.body_len == 0), "only a HEAD, no upload: {seen:#?}");
    assert!(second.stderr.contains("already holds this bundle"), "{}", second.stderr);
    assert!(!second.stderr.contains("uploaded s3://"), "a skipped upload says only that it was skipped: {}", second.stderr);
    // Nothing was rebuilt: the unchanged directory's bundle came from the cache.
    assert!(!first.stderr.contains("reused the cached"), "{}", first.stderr);
    assert!(second.stderr.contains(&format!("reused the cached zip bundle of {}", app.display())), "{}", second.stderr);
    assert_every_call_names_the_owner(&proxy);
    assert_no_secrets(&stack, &first);
    assert_no_secrets(&stack, &second);
}

#[test]
fn second_release_of_a_multipart_bundle_uploads_zero_bytes() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let (zip, _) = big_bundle(dir.path());
    assert_eq!(release(&stack, &proxy, dir.path(), &zip).code, 0);
    proxy.clear();
    let again = release(&stack, &proxy, dir.path(), &zip);
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(proxy.seen().iter().all(|s| s.method == "HEAD"), "{:#?}", proxy.seen());
    assert_no_stack_secrets(&stack, &[&again]);
}

#[test]
fn interrupted_multipart_upload_resumes_reusing_the_parts_already_in_s3() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let (zip, sha) = big_bundle(dir.path());
    let data = std::fs::read(&zip).unwrap();
    let plan = ferry::UploadPlan::for_size(data.len() as u64);
    let part = |n: u32| {
        let (off, len) = plan.range(n);
        data[off as usize..(off + len) as usize].to_vec()
    };

    // A previous run died after parts 1-3; its part 2 holds other bytes (as
    // if the file had been rebuilt differently), so it must not be reused.
    let upload_id = stack.block_on(async {
        let s3 = stack.s3_as_prod();
        let created = s3
            .create_multipart_upload()
            .bucket(stack.bucket())
            .key(key_of(&sha))
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(aws_sdk_s3::types::ChecksumType::FullObject)
            .send()
            .await
            .unwrap();
        let id = created.upload_id().unwrap().to_string();
        for n in 1..=3u32 {
            let body = if n == 2 { noise(plan.part_size as usize, 99) } else { part(n) };
            s3.upload_part()
                .bucket(stack.bucket())
                .key(key_of(&sha))
                .upload_id(&id)
                .part_number(n as i32)
                .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
                .body(body.into())
                .send()
                .await
                .unwrap();
        }
        id
    });

    let out = release(&stack, &proxy, dir.path(), &zip);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains(&format!("resuming multipart upload {upload_id}: 3 part(s)")), "{}", out.stderr);
    let mut sent: Vec<u32> = proxy.seen().iter().filter_map(|s| s.part_number()).collect();
    sent.sort();
    assert_eq!(sent, vec![2, 4, 5, 6, 7], "parts 1 and 3 were reused, the wrong part 2 was sent again");
    assert!(
        proxy.seen().iter().any(|s| s.method == "GET" && s.target.contains(&format!("uploadId={upload_id}"))),
        "ListParts was asked"
    );

    let (checksum, pending) = stack.block_on(async {
        let s3 = stack.s3_as_prod();
        let head = s3
            .head_object()
            .bucket(stack.bucket())
            .key(key_of(&sha))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let body = s3
            .get_object()
            .bucket(stack.bucket())
            .key(key_of(&sha))
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(hex::encode(Sha256::digest(&body)), sha, "the object is exactly the bundle");
        let pending = s3.list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap().uploads().len();
        (full_object_crc64(&head), pending)
    });
    assert_eq!(checksum, Some(crc64nvme_of(&zip)));
    assert_eq!(pending, 0, "the resumed upload was completed, not left behind");
    assert_no_stack_secrets(&stack, &[&out]);
}

#[test]
fn bucket_owned_by_another_account_is_refused_and_nothing_is_deployed() {
    let stack = Stack::start();
    // The bucket answers as if owned by another account than the role's.
    let proxy = S3Proxy::start(stack.moto_endpoint(), "999999999999");
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let receipt = dir.path().join("receipt.json");
    let out = run(stack
        .ferry_command(FERRY)
        .arg("release")
        .arg(&app)
        .args(["--env", "production", "--receipt"])
        .arg(&receipt)
        .arg("--config")
        .arg(config_with_tags(&stack, dir.path()))
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint()));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains(&format!("owned by account {PRODUCTION_ACCOUNT}")), "{}", out.stderr);
    let receipt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
    assert_eq!(receipt["deployment_id"], serde_json::Value::Null, "no deployment, no id: {receipt}");
    assert!(receipt["error"].as_str().is_some_and(|e| e.contains("S3 refused")), "{receipt}");
    assert!(out.stderr.contains("403"), "{}", out.stderr);
    assert!(proxy.seen().iter().all(|s| s.method == "HEAD"), "nothing was written: {:#?}", proxy.seen());
    assert_eq!(common::deployment_ids(&stack).len(), 0, "nothing was deployed");
    assert_no_secrets(&stack, &out);
}

#[test]
fn failed_multipart_upload_is_aborted_leaving_no_parts_behind() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    proxy.fail_part(5);
    let dir = tempfile::tempdir().unwrap();
    let (zip, sha) = big_bundle(dir.path());

    let out = release(&stack, &proxy, dir.path(), &zip);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("S3 refused the upload of a part to"), "{}", out.stderr);
    assert!(proxy.seen().iter().any(|s| s.method == "DELETE" && s.target.contains("uploadId=")), "AbortMultipartUpload was sent");
    let (pending, object) = stack.block_on(async {
        let s3 = stack.s3_as_prod();
        let pending = s3.list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap().uploads().len();
        let object = s3.head_object().bucket(stack.bucket()).key(key_of(&sha)).send().await.is_ok();
        (pending, object)
    });
    assert_eq!(pending, 0, "no orphaned multipart upload");
    assert!(!object, "no object was completed");
    assert_no_stack_secrets(&stack, &[&out]);
}

#[test]
fn read_back_checksum_mismatch_is_an_error_and_nothing_is_deployed() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    proxy.tamper_checksums();
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");

    let out = release(&stack, &proxy, dir.path(), &app);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("does not hold the bundle ferry uploaded") && out.stderr.contains("Nothing was deployed"),
        "{}",
        out.stderr
    );
    assert_eq!(common::deployment_ids(&stack).len(), 0, "nothing was deployed");
    assert_no_secrets(&stack, &out);
}

#[test]
fn ferry_upload_stages_the_bundle_without_deploying_and_prints_its_uri() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let config = config_with_tags(&stack, dir.path());
    let upload = |extra: &[&str]| {
        run(stack
            .ferry_command(FERRY)
            .arg("upload")
            .arg(&app)
            .args(["--env", "production", "--config"])
            .arg(&config)
            .args(extra)
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint()))
    };

    let out = upload(&[]);
    assert_eq!(out.code, 0, "{}", out.all());
    let uri = out.stdout.trim();
    let key = uri.strip_prefix(&format!("s3://{}/", stack.bucket())).expect("stdout is the s3:// URI");
    stack.block_on(async { stack.s3_as_prod().head_object().bucket(stack.bucket()).key(key).send().await.unwrap() });
    assert_eq!(common::deployment_ids(&stack).len(), 0, "upload does not deploy");
    let (tags, change) = tags_and_metadata(&stack, key);
    assert_eq!(tags, vec![("team".to_string(), "web ops".to_string())], "tags from ferry.toml");
    assert_eq!(change.as_deref(), Some("CHG-1"), "metadata from ferry.toml");
    assert_no_secrets(&stack, &out);

    // --no-assume really uses the ambient identity: the Operations user's own
    // keys, which the Production bucket denies.
    let out = upload(&["--no-assume"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(!out.stderr.contains("assumed "), "{}", out.stderr);
    assert!(out.stderr.contains("S3 refused"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Against a server that verifies checksums: LocalStack's S3 refuses a body
// whose bytes do not match its x-amz-checksum-sha256 (BadDigest), as S3
// does and moto does not. ferry assumes the role through moto's STS and
// uploads (`ferry upload`, which does not deploy) through the fault proxy,
// which flips one byte in the middle of the bodies its rules pick.

/// The stack (for STS), LocalStack's S3 holding the release bucket, and the
/// fault proxy in front of it.
struct Verifying {
    stack: Stack,
    s3: ferry_test_stack::LocalStackS3,
    proxy: faultproxy::FaultProxy,
}

impl Verifying {
    fn start() -> Verifying {
        let stack = Stack::start();
        let s3 = ferry_test_stack::LocalStackS3::start().unwrap_or_else(|e| panic!("{e}"));
        let proxy = faultproxy::FaultProxy::start(&s3.endpoint(), 13);
        let v = Verifying { stack, s3, proxy };
        // LocalStack derives the account from a 12-digit access key: the
        // bucket belongs to Production, as in the stack.
        v.stack.block_on(async { v.client().create_bucket().bucket(v.stack.bucket()).send().await.expect("create the bucket") });
        v
    }

    /// S3 at LocalStack itself (not through the proxy), as Production.
    fn client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.s3.endpoint())
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(PRODUCTION_ACCOUNT, "x", None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Flips one byte of the first `n` bodies of these operations (`None`: all).
    fn flip(&self, ops: Vec<&'static str>, n: Option<u64>) {
        use faultproxy::{Chance, Fault, Match, Rule};
        let chance = n.map_or(Chance::Always, Chance::FirstN);
        self.proxy.set_rules(vec![Rule::new(Match::Ops(ops), chance, Fault::CorruptBody { drop_header: None })]);
    }

    /// `ferry upload PATH --output json` with S3 through the proxy.
    fn upload(&self, dir: &Path, path: &Path) -> common::Run {
        let config = self.stack.write_config(dir, "production");
        run(self
            .stack
            .ferry_command(FERRY)
            .arg("upload")
            .arg(path)
            .args(["--env", "production", "--output", "json", "--config"])
            .arg(&config)
            .env("AWS_ENDPOINT_URL_S3", self.proxy.endpoint()))
    }

    /// The object's bytes, hashed (None: no object), and the uploads still open.
    fn state(&self, key: &str) -> (Option<String>, usize) {
        self.stack.block_on(async {
            let s3 = self.client();
            let object = match s3.get_object().bucket(self.stack.bucket()).key(key).send().await {
                Ok(o) => Some(hex::encode(Sha256::digest(o.body.collect().await.unwrap().into_bytes()))),
                Err(_) => None,
            };
            let open = s3.list_multipart_uploads().bucket(self.stack.bucket()).send().await.unwrap().uploads().len();
            (object, open)
        })
    }
}

/// A ~20 MiB bundle: three 8 MiB parts.
fn multipart_bundle(dir: &Path) -> (PathBuf, String) {
    let app = app_tree(dir, "exit 0");
    std::fs::write(app.join("site/big.bin"), noise(20 << 20, 11)).unwrap();
    let zip = dir.join("big.zip");
    let sha = bundle(dir, &app, &zip, &[]);
    (zip, sha)
}

#[test]
fn against_a_verifying_s3_a_clean_upload_and_one_flipped_byte_in_the_single_put_both_succeed() {
    let v = Verifying::start();
    let dir = tempfile::tempdir().unwrap();

    let clean = dir.path().join("clean");
    let app = app_tree(&clean, "exit 0");
    let out = v.upload(&clean, &app);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.events_of("upload_resent").is_empty(), "{}", out.stdout);
    let sha = out.events_of("bundle_ready")[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(v.state(&key_of(&sha)), (Some(sha.clone()), 0), "LocalStack holds exactly the bundle");

    let flipped = dir.path().join("flipped");
    let app = app_tree(&flipped, "exit 0");
    std::fs::write(app.join("site/index.html"), "<h1>another release</h1>\n").unwrap();
    v.flip(vec!["PutObject"], Some(1));
    let out = v.upload(&flipped, &app);
    assert_eq!(out.code, 0, "one damaged PUT is re-sent:\n{}", out.all());
    let resent = out.events_of("upload_resent");
    assert_eq!(resent.len(), 1, "{}", out.stdout);
    assert_eq!(resent[0]["part"], serde_json::Value::Null);
    assert_eq!(resent[0]["attempt"], 2);
    assert!(resent[0]["detail"].as_str().unwrap().contains("BadDigest"), "{}", resent[0]);
    assert_eq!(v.proxy.stats().fault("corrupt"), 1, "{:?}", v.proxy.stats());
    assert_eq!(v.proxy.stats().op("PutObject"), 3, "the clean PUT, the damaged one and its re-send: {:?}", v.proxy.stats());
    let sha = out.events_of("bundle_ready")[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(v.state(&key_of(&sha)), (Some(sha), 0), "the object is exactly the bundle");
}

#[test]
fn against_a_verifying_s3_one_flipped_byte_in_one_part_is_resent_and_the_upload_succeeds() {
    let v = Verifying::start();
    let dir = tempfile::tempdir().unwrap();
    let (zip, sha) = multipart_bundle(dir.path());
    v.flip(vec!["UploadPart"], Some(1));

    let out = v.upload(dir.path(), &zip);
    assert_eq!(out.code, 0, "one damaged part is re-sent:\n{}", out.all());
    let resent = out.events_of("upload_resent");
    assert_eq!(resent.len(), 1, "{}", out.stdout);
    assert!(resent[0]["part"].as_u64().is_some_and(|n| (1..=3).contains(&n)), "{}", resent[0]);
    assert_eq!(v.proxy.stats().fault("corrupt"), 1, "{:?}", v.proxy.stats());
    assert_eq!(v.proxy.stats().op("UploadPart"), 4, "three parts and one re-send: {:?}", v.proxy.stats());
    assert_eq!(v.state(&key_of(&sha)), (Some(sha.clone()), 0), "the object is exactly the bundle, no upload left open");
    // LocalStack computed the full-object CRC-64/NVME from the bytes it received.
    let stored = v.stack.block_on(async {
        let head = v
            .client()
            .head_object()
            .bucket(v.stack.bucket())
            .key(key_of(&sha))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        full_object_crc64(&head)
    });
    assert_eq!(stored, Some(crc64nvme_of(&zip)));
}

#[test]
fn against_a_verifying_s3_every_body_flipped_is_named_as_corruption_on_the_way_and_leaves_nothing() {
    let v = Verifying::start();
    let dir = tempfile::tempdir().unwrap();
    v.flip(vec!["PutObject", "UploadPart"], None);

    let small = dir.path().join("small");
    let app = app_tree(&small, "exit 0");
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    let (big_zip, _) = multipart_bundle(&big);
    for (what, path) in [("the bundle", app.as_path()), ("part ", big_zip.as_path())] {
        let out = v.upload(dir.path(), path);
        let sha = out.events_of("bundle_ready")[0]["sha256"].as_str().unwrap().to_string();
        assert_eq!(out.code, 2, "{}", out.all());
        let error = out.events_of("error").pop().unwrap_or_else(|| panic!("no error event:\n{}", out.all()));
        assert_eq!(error["class"], "upload", "{error}");
        let message = error["message"].as_str().unwrap();
        for phrase in [&format!("S3 refused {what}"), "4 times", "BadDigest", "between this agent and S3", "proxy", "intact"] {
            assert!(message.contains(phrase), "missing {phrase:?} in: {message}");
        }
        for wrong in ["owned by account", "s3:PutObject", "policy"] {
            assert!(!message.contains(wrong), "corruption is not a permission problem: {message}");
        }
        // Each body is sent 4 times: the 3 re-sends are reported (for parts,
        // other parts in flight may report theirs before they are cancelled).
        let resent = out.events_of("upload_resent").len();
        assert!(if what == "the bundle" { resent == 3 } else { resent >= 3 }, "{resent} re-sends:\n{}", out.stdout);
        assert!(out.events_of("warning").is_empty(), "the abort succeeded: {}", out.stdout);
        assert_eq!(v.state(&key_of(&sha)), (None, 0), "no object and no multipart upload left open ({what})");
    }
    let stats = v.proxy.stats();
    assert_eq!(stats.op("PutObject"), 4, "a bounded number of sends: {stats:?}");
    assert!(stats.op("UploadPart") >= 4, "{stats:?}");
    assert!(stats.op("AbortMultipartUpload") >= 1, "{stats:?}");
}

/// `ferry upload` of a multipart bundle with S3 (moto) behind the fault proxy.
fn upload_through(stack: &Stack, proxy: &faultproxy::FaultProxy, dir: &Path, path: &Path) -> common::Run {
    let config = stack.write_config(dir, "production");
    run(stack
        .ferry_command(FERRY)
        .arg("upload")
        .arg(path)
        .args(["--env", "production", "--output", "json", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint()))
}

fn open_uploads(stack: &Stack) -> usize {
    stack.block_on(async {
        stack.s3_as_prod().list_multipart_uploads().bucket(stack.bucket()).send().await.unwrap().uploads().len()
    })
}

/// S3 acknowledges an abort while a part is still landing, so the upload
/// outlives it (AWS's advice: confirm with ListParts and abort again). The
/// proxy answers the first abort 204 without passing it on.
#[test]
fn an_abort_that_did_not_take_is_seen_in_the_listing_and_sent_again() {
    use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), 13);
    proxy.set_rules(vec![
        Rule::new(Match::Ops(vec!["UploadPart"]), Chance::FirstN(1), Fault::S3Error { status: 403, code: "AccessDenied" }),
        Rule::new(Match::Ops(vec!["AbortMultipartUpload"]), Chance::FirstN(1), Fault::Swallow(204)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (zip, _) = multipart_bundle(dir.path());

    let out = upload_through(&stack, &proxy, dir.path(), &zip);
    assert_eq!(out.code, 2, "{}", out.all());
    let error = out.events_of("error").pop().unwrap();
    assert!(error["message"].as_str().unwrap().contains("S3 refused the upload of a part to"), "{error}");
    let stats = proxy.stats();
    assert_eq!(stats.fault("swallow"), 1, "{stats:?}");
    assert_eq!(stats.op("AbortMultipartUpload"), 2, "the abort was confirmed, found undone and sent again: {stats:?}");
    assert!(stats.op("ListMultipartUploads") >= 2, "{stats:?}");
    assert!(out.events_of("warning").is_empty(), "{}", out.stdout);
    assert_eq!(open_uploads(&stack), 0, "no multipart upload left");
}

#[test]
fn a_refused_abort_is_reported_with_how_to_remove_the_upload_not_swallowed() {
    use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};
    let stack = Stack::start();
    let proxy = FaultProxy::start(stack.moto_endpoint(), 13);
    proxy.set_rules(vec![
        Rule::new(Match::Ops(vec!["UploadPart"]), Chance::FirstN(1), Fault::S3Error { status: 403, code: "AccessDenied" }),
        Rule::new(Match::Ops(vec!["AbortMultipartUpload"]), Chance::Always, Fault::S3Error { status: 403, code: "AccessDenied" }),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let (zip, _) = multipart_bundle(dir.path());

    let out = upload_through(&stack, &proxy, dir.path(), &zip);
    assert_eq!(out.code, 2, "{}", out.all());
    let warnings = out.events_of("warning");
    assert_eq!(warnings.len(), 1, "{}", out.stdout);
    let message = warnings[0]["message"].as_str().unwrap();
    for phrase in
        ["could not be removed", "AccessDenied", "s3:AbortMultipartUpload", "aws s3api abort-multipart-upload", "billed"]
    {
        assert!(message.contains(phrase), "missing {phrase:?}: {message}");
    }
    assert_eq!(open_uploads(&stack), 1, "the upload ferry could not abort is still there, as the warning says");
}

/// The Jenkinsfile's way: `ferry bundle --out app.zip`, then releases of
/// app.zip. ferry remembers the sums of the zip it wrote, so the release
/// takes its SHA-256 from that record (src/bundle/known.rs); once the file
/// is touched, the record no longer vouches for it and the zip is hashed.
#[test]
fn a_zip_ferry_bundled_is_released_without_hashing_it_again_until_it_changes() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    let zip = dir.path().join("app.zip");
    let bundled = run(stack.ferry_command(FERRY).arg("bundle").arg(&app).arg("--out").arg(&zip));
    assert_eq!(bundled.code, 0, "{}", bundled.all());
    let config = stack.write_config(dir.path(), "production");
    let release = || {
        run(stack
            .ferry_command(FERRY)
            .args(["--output", "json", "release"])
            .arg(&zip)
            .args(["--env", "production", "--no-wait", "--config"])
            .arg(&config)
            .env("AWS_ENDPOINT_URL_S3", proxy.endpoint()))
    };
    let out = release();
    assert_eq!(out.code, 0, "{}", out.all());
    let ready = &out.events_of("bundle_ready")[0];
    assert_eq!((ready["built"].as_bool(), ready["cached"].as_bool()), (Some(false), Some(true)), "{ready}");
    assert_eq!(ready["sha256"].as_str(), Some(bundled.stdout.trim()), "the record's SHA-256 is the zip's");

    // Other times, same bytes: the stat fields changed, so the zip is hashed.
    let f = std::fs::File::options().write(true).open(&zip).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600)).unwrap();
    let again = release();
    let ready = &again.events_of("bundle_ready")[0];
    assert_eq!(ready["cached"].as_bool(), Some(false), "{ready}");
    assert_eq!(ready["sha256"].as_str(), Some(bundled.stdout.trim()));
}

/// `ferry --output json release <path>` with S3 through `proxy` and extra
/// environment variables.
fn release_json(stack: &Stack, proxy: &S3Proxy, dir: &Path, path: &Path, envs: &[(&str, &Path)]) -> common::Run {
    let config = stack.write_config(dir, "production");
    let mut cmd = stack.ferry_command(FERRY);
    cmd.args(["--output", "json", "release"])
        .arg(path)
        .args(["--env", "production", "--no-wait", "--config"])
        .arg(&config)
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

/// The JSON warnings of a run, joined.
fn warnings(out: &common::Run) -> String {
    out.events_of("warning").iter().map(|w| w["message"].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>().join("\n")
}

fn delete_object(stack: &Stack, key: &str) {
    stack.block_on(stack.s3_as_prod().delete_object().bucket(stack.bucket()).key(key).send()).unwrap();
}

fn object_crc64(stack: &Stack, key: &str) -> Option<String> {
    let head = stack.block_on(
        stack
            .s3_as_prod()
            .head_object()
            .bucket(stack.bucket())
            .key(key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send(),
    );
    head.ok().and_then(|h| full_object_crc64(&h))
}

/// Issue 23 items 1, 2 and 5, end to end: a cached multipart bundle replaced
/// by forged bytes of the same size, with its record's CRC-64/NVME made to
/// match them, is caught by the SHA-256 the hit is proven by, dropped and
/// rebuilt: what reaches S3 and the deployment is the directory's bundle.
/// And a cache directory others may write is not used at all, with a
/// warning that says why and how to fix it.
#[cfg(unix)]
#[test]
fn a_planted_or_forged_cache_entry_is_never_deployed() {
    use std::os::unix::fs::PermissionsExt;
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    std::fs::write(app.join("site/big.bin"), noise(20 << 20, 23)).unwrap();
    let xdg = dir.path().join("shared-cache");
    let envs = [("XDG_CACHE_HOME", xdg.as_path())];
    let first = release_json(&stack, &proxy, dir.path(), &app, &envs);
    assert_eq!(first.code, 0, "{}", first.all());
    let sha = first.events_of("bundle_ready")[0]["sha256"].as_str().unwrap().to_string();
    let cache = xdg.join("ferry/bundles");
    let archive = cache.join(format!("{sha}.zip"));
    let real_crc = crc64nvme_of(&archive);
    assert_eq!(object_crc64(&stack, &key_of(&sha)).as_deref(), Some(real_crc.as_str()));

    // The forgery: same size, same CRC-64/NVME as its record says, other bytes.
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(&archive, &bytes).unwrap();
    let record = std::fs::read_dir(&cache).unwrap().flatten().map(|e| e.path()).find(|p| p.extension() == Some("json".as_ref()));
    let record = record.expect("the bundle's record");
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let forged_crc = base64::engine::general_purpose::STANDARD.decode(crc64nvme_of(&archive)).unwrap();
    r["crc64nvme"] = u64::from_be_bytes(forged_crc.try_into().unwrap()).into();
    std::fs::write(&record, r.to_string()).unwrap();
    // Not in S3 yet, so whatever the release has is sent.
    delete_object(&stack, &key_of(&sha));

    let forged = release_json(&stack, &proxy, dir.path(), &app, &envs);
    assert_eq!(forged.code, 0, "{}", forged.all());
    let ready = &forged.events_of("bundle_ready")[0];
    assert_eq!((ready["sha256"].as_str(), ready["cached"].as_bool()), (Some(sha.as_str()), Some(false)), "{ready}");
    let said = warnings(&forged);
    assert!(said.contains("did not hash to the SHA-256 its record names") && said.contains("removed"), "{said}");
    assert_eq!(object_crc64(&stack, &key_of(&sha)).as_deref(), Some(real_crc.as_str()), "S3 holds the real bundle");
    assert_eq!(crc64nvme_of(&archive), real_crc, "the cache holds the real bundle again");

    // A cache directory others may write: not used, whatever it holds.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shared = release_json(&stack, &proxy, dir.path(), &app, &envs);
    assert_eq!(shared.code, 0, "{}", shared.all());
    assert_eq!(shared.events_of("bundle_ready")[0]["cached"].as_bool(), Some(false));
    let said = warnings(&shared);
    for phrase in ["writable by group or others (mode 777)", "plant a bundle", "not used", "chmod -R go-w"] {
        assert!(said.contains(phrase), "missing {phrase:?}: {said}");
    }
    assert_eq!(common::deployment_ids(&stack).len(), 3);
    assert_no_stack_secrets(&stack, &[&first, &forged, &shared]);
}

/// Issue 23 item 2: a known-sums record edited to name another SHA-256
/// made ferry upload the zip under that name with metadata that lied. The
/// upload's own read computes the SHA-256 now: a multipart upload is
/// aborted before it completes, nothing is deployed, the record is removed,
/// and the next release hashes the file and ships it under its own name.
/// Likewise when the SHA-256 named is one S3 already holds (an older
/// release): the local bytes are hashed before the upload is skipped.
#[test]
fn a_known_sums_record_naming_another_sha256_creates_and_deploys_nothing() {
    let stack = Stack::start();
    let proxy = S3Proxy::start(stack.moto_endpoint(), PRODUCTION_ACCOUNT);
    let dir = tempfile::tempdir().unwrap();
    let app = app_tree(dir.path(), "exit 0");
    std::fs::write(app.join("site/big.bin"), noise(20 << 20, 29)).unwrap();
    let zip = dir.path().join("app.zip");
    let bundled = run(stack.ferry_command(FERRY).arg("bundle").arg(&app).arg("--out").arg(&zip));
    assert_eq!(bundled.code, 0, "{}", bundled.all());
    let real = bundled.stdout.trim().to_string();
    let files = stack_home(&stack).join(".cache/ferry/bundles/files");
    let forge = |claim: &str| {
        let record =
            std::fs::read_dir(&files).unwrap().flatten().map(|e| e.path()).find(|p| p.extension() == Some("json".as_ref()));
        let record = record.expect("the zip's known-sums record");
        let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
        r["sha256"] = claim.into();
        std::fs::write(&record, r.to_string()).unwrap();
        record
    };
    let claim = "ab".repeat(32);
    let record = forge(&claim);

    let out = release_json(&stack, &proxy, dir.path(), &zip, &[]);
    assert_eq!(out.code, 1, "{}", out.all());
    for phrase in ["does not have the SHA-256 ferry's record of it names", &claim, &real, "aborted", "record was removed"] {
        assert!(out.all().contains(phrase), "missing {phrase:?}: {}", out.all());
    }
    assert!(common::deployment_ids(&stack).is_empty(), "nothing deployed");
    assert_eq!(open_uploads(&stack), 0, "the multipart upload was aborted");
    assert_eq!(object_crc64(&stack, &key_of(&claim)), None, "nothing under the forged name");
    assert!(!record.exists(), "the lying record is gone");

    let again = release_json(&stack, &proxy, dir.path(), &zip, &[]);
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.events_of("bundle_ready")[0]["sha256"].as_str(), Some(real.as_str()));

    // The record now names an object S3 holds (this release), for other bytes.
    std::fs::write(app.join("site/index.html"), "<h1>changed</h1>\n").unwrap();
    let rebundled = run(stack.ferry_command(FERRY).arg("bundle").arg(&app).arg("--out").arg(&zip));
    assert_eq!(rebundled.code, 0, "{}", rebundled.all());
    forge(&real);
    let stale = release_json(&stack, &proxy, dir.path(), &zip, &[]);
    assert_eq!(stale.code, 1, "{}", stale.all());
    assert!(stale.all().contains(rebundled.stdout.trim()), "names the bytes' own SHA-256: {}", stale.all());
    assert_eq!(common::deployment_ids(&stack).len(), 1, "only the good release");
    assert_no_stack_secrets(&stack, &[&bundled, &out, &again, &stale]);
}

/// The stack's `$HOME` for ferry.
fn stack_home(stack: &Stack) -> PathBuf {
    let printed = run(stack.ferry_command("sh").args(["-c", "printf %s \"$HOME\""]));
    PathBuf::from(printed.stdout)
}
