//! LocalStack's S3 is a server that verifies checksums: a PutObject or an
//! UploadPart whose body does not match its `x-amz-checksum-sha256` is
//! refused, whether the header was wrong or a byte flipped on the way (the
//! fault proxy), and nothing is stored. moto, by contrast, keeps whatever it
//! is sent, so only this server can prove ferry's answer to `BadDigest`.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use faultproxy::{Chance, Fault, FaultProxy, Match, Rule};
use ferry_test_stack::LocalStackS3;
use sha2::{Digest, Sha256};

const BUCKET: &str = "ferry-integrity";

fn client(endpoint: &str) -> Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("AKIAFERRYLOCALSTACK0", "ferry", None, None, "test"))
        // One attempt: the refusals are what this test looks at.
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn sha256_b64(body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body))
}

/// The error code of a failed call, and the whole error for the message.
fn code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<impl std::fmt::Debug, aws_sdk_s3::error::SdkError<E, R>>,
) -> String {
    match result {
        Ok(out) => panic!("expected a refusal, got {out:?}"),
        Err(e) => e.as_service_error().and_then(|s| s.code()).map(str::to_owned).unwrap_or_else(|| format!("{e:?}")),
    }
}

fn refused_as_corrupt(code: &str) {
    assert!(code == "BadDigest" || code == "InvalidRequest", "expected BadDigest/InvalidRequest, got {code}");
}

/// A 5 MiB part (S3's minimum for all but the last) of varied bytes.
fn part_body(seed: u8) -> Vec<u8> {
    (0..5 * 1024 * 1024).map(|i: usize| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Runs `f` on a runtime of its own: the server and the proxy are started
/// (and dropped) outside any runtime, since both block.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

#[test]
fn localstack_refuses_put_object_and_upload_part_that_do_not_match_their_checksum() {
    let server = LocalStackS3::start().unwrap_or_else(|e| panic!("{e}"));
    let s3 = client(&server.endpoint());
    block_on(async {
        s3.create_bucket().bucket(BUCKET).send().await.expect("create bucket");

        // A checksum header that does not match the body.
        let body = b"bundle bytes".to_vec();
        let wrong = sha256_b64(b"other bytes");
        let put = s3
            .put_object()
            .bucket(BUCKET)
            .key("releases/wrong.zip")
            .body(ByteStream::from(body.clone()))
            .checksum_sha256(&wrong)
            .send()
            .await;
        refused_as_corrupt(&code(put));
        let head = s3.head_object().bucket(BUCKET).key("releases/wrong.zip").send().await;
        assert!(head.is_err(), "a refused PutObject stores nothing: {head:?}");

        // The same body with its own checksum is stored, and S3 reports that checksum.
        s3.put_object()
            .bucket(BUCKET)
            .key("releases/right.zip")
            .body(ByteStream::from(body.clone()))
            .checksum_sha256(sha256_b64(&body))
            .send()
            .await
            .expect("a matching PutObject");

        // UploadPart likewise: refused, no part recorded; the right body is taken.
        let key = "releases/big.zip";
        let upload = s3
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .expect("create multipart upload");
        let id = upload.upload_id().expect("upload id");
        let part = part_body(1);
        let bad = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(part.clone()))
            .checksum_sha256(&wrong)
            .send()
            .await;
        refused_as_corrupt(&code(bad));
        let parts = s3.list_parts().bucket(BUCKET).key(key).upload_id(id).send().await.expect("list parts");
        assert!(parts.parts().is_empty(), "a refused UploadPart leaves no part: {:?}", parts.parts());
        let good = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(part.clone()))
            .checksum_sha256(sha256_b64(&part))
            .send()
            .await
            .expect("a matching UploadPart");
        let done = CompletedPart::builder()
            .part_number(1)
            .set_e_tag(good.e_tag().map(str::to_owned))
            .checksum_sha256(sha256_b64(&part))
            .build();
        s3.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .multipart_upload(CompletedMultipartUpload::builder().parts(done).build())
            .send()
            .await
            .expect("complete multipart upload");
    });
}

/// The real failure: the client computed the right checksum, and one byte
/// of the body flipped between it and S3.
#[test]
fn localstack_refuses_a_body_with_one_byte_flipped_on_the_way() {
    let server = LocalStackS3::start().unwrap_or_else(|e| panic!("{e}"));
    let proxy = FaultProxy::start(&server.endpoint(), 13);
    let s3 = client(&proxy.endpoint());
    block_on(async {
        s3.create_bucket().bucket(BUCKET).send().await.expect("create bucket");
        proxy.set_rules(vec![Rule::new(
            Match::Ops(vec!["PutObject", "UploadPart"]),
            Chance::Always,
            Fault::CorruptBody { drop_header: None },
        )]);

        let body = b"bundle bytes, every one of them intact on this side".to_vec();
        let put = s3
            .put_object()
            .bucket(BUCKET)
            .key("releases/flipped.zip")
            .body(ByteStream::from(body.clone()))
            .checksum_sha256(sha256_b64(&body))
            .send()
            .await;
        refused_as_corrupt(&code(put));

        let key = "releases/flipped-big.zip";
        let upload = s3
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .send()
            .await
            .expect("create multipart upload");
        let id = upload.upload_id().expect("upload id");
        let part = part_body(2);
        let bad = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(part.clone()))
            .checksum_sha256(sha256_b64(&part))
            .send()
            .await;
        refused_as_corrupt(&code(bad));
        assert_eq!(proxy.stats().fault("corrupt"), 2, "both bodies were flipped: {:?}", proxy.stats());

        // Nothing was stored, and the refused part is not in the upload.
        proxy.set_rules(Vec::new());
        let head = s3.head_object().bucket(BUCKET).key("releases/flipped.zip").send().await;
        assert!(head.is_err(), "a refused PutObject stores nothing: {head:?}");
        let parts = s3.list_parts().bucket(BUCKET).key(key).upload_id(id).send().await.expect("list parts");
        assert!(parts.parts().is_empty(), "a refused UploadPart leaves no part: {:?}", parts.parts());
        s3.abort_multipart_upload().bucket(BUCKET).key(key).upload_id(id).send().await.expect("abort");
        let left = s3.list_multipart_uploads().bucket(BUCKET).send().await.expect("list uploads");
        assert!(left.uploads().is_empty(), "the upload is gone after the abort: {:?}", left.uploads());
    });
}
