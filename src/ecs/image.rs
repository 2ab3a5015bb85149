//! `--image`: a container image pinned to its digest. An ECR image given by
//! tag is resolved through `DescribeImages`; one given by digest is looked
//! up the same way (it must exist). An image outside ECR cannot be looked
//! up with the role's credentials, so ferry takes it only by digest and
//! says it was not verified.

use aws_sdk_ecr::types::ImageIdentifier;

use super::{EcsError, refused};

/// An image reference as given to `--image`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/repository` (or just `repository` on Docker Hub).
    pub name: String,
    /// The repository inside the registry.
    pub repository: String,
    /// ECR's account and region, when the registry is ECR's.
    pub ecr: Option<(String, String)>,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if one was given.
    pub digest: Option<String>,
}

/// The image as it deploys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// `name@sha256:…`: what the task definition names.
    pub image: String,
    /// `sha256:…`.
    pub digest: String,
    /// The tag it was resolved from, if any.
    pub tag: Option<String>,
    /// Whether ECR confirmed it exists.
    pub verified: bool,
}

impl ImageRef {
    /// Parses `name[:tag][@sha256:hex]`; refuses anything ferry cannot pin.
    pub fn parse(image: &str) -> Result<ImageRef, EcsError> {
        let bad = |reason: &str| EcsError::BadImage { image: image.to_string(), reason: reason.to_string() };
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("an image reference has no spaces, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4"));
        }
        let (rest, digest) = match image.split_once('@') {
            Some((rest, d)) => {
                let hex = d.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad("a digest is sha256: followed by 64 hex digits"));
                }
                (rest, Some(d.to_ascii_lowercase()))
            }
            None => (image, None),
        };
        // A colon after the last slash is a tag; one before it is a port.
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last..].split_once(':') {
            Some((repo, tag)) if !tag.is_empty() => (format!("{}{repo}", &rest[..last]), Some(tag.to_string())),
            Some(_) => return Err(bad("the tag after `:` is empty")),
            None => (rest.to_string(), None),
        };
        if name.is_empty() || name.ends_with('/') {
            return Err(bad("the repository name is missing"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((host, repo)) if host.contains('.') || host.contains(':') || host == "localhost" => (Some(host), repo),
            _ => (None, name.as_str()),
        };
        let ecr = registry.and_then(ecr_registry);
        Ok(ImageRef { repository: repository.to_string(), name: name.clone(), ecr, tag, digest })
    }

    /// The reference as given, for messages.
    pub fn display(&self) -> String {
        let mut s = self.name.clone();
        if let Some(t) = &self.tag {
            s.push_str(&format!(":{t}"));
        }
        if let Some(d) = &self.digest {
            s.push_str(&format!("@{d}"));
        }
        s
    }
}

/// `(account, region)` of an ECR registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, `.com.cn` too).
fn ecr_registry(host: &str) -> Option<(String, String)> {
    let mut parts = host.split('.');
    let account = parts.next()?;
    let (dkr, ecr, region, rest) = (parts.next()?, parts.next()?, parts.next()?, parts.collect::<Vec<_>>().join("."));
    let ok = account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && dkr == "dkr"
        && (ecr == "ecr" || ecr == "ecr-fips")
        && rest.starts_with("amazonaws.com");
    ok.then(|| (account.to_string(), region.to_string()))
}

/// Pins `image` to its digest: through ECR when it is ECR's (it must
/// exist), else only when a digest was given.
pub async fn resolve(sdk: &aws_config::SdkConfig, image: &ImageRef) -> Result<Resolved, EcsError> {
    let Some((account, region)) = &image.ecr else {
        return match &image.digest {
            Some(d) => Ok(Resolved { image: format!("{}@{d}", image.name), digest: d.clone(), tag: None, verified: false }),
            None => Err(EcsError::BadImage {
                image: image.display(),
                reason: "ferry resolves tags to digests through ECR only, and this image is not in ECR: give it by digest \
                         (name@sha256:…, as `docker inspect --format '{{index .RepoDigests 0}}'` prints it) so what \
                         deploys cannot change under the tag"
                    .into(),
            }),
        };
    };
    // The registry's own region, whatever the environment's.
    let conf = aws_sdk_ecr::config::Builder::from(sdk).region(aws_sdk_ecr::config::Region::new(region.clone())).build();
    let ecr = aws_sdk_ecr::Client::from_conf(conf);
    let id = ImageIdentifier::builder().set_image_tag(image.tag.clone()).set_image_digest(image.digest.clone()).build();
    let out = ecr.describe_images().registry_id(account).repository_name(&image.repository).image_ids(id).send().await.map_err(
        |e| {
            use aws_sdk_ecr::error::ProvideErrorMetadata;
            match e.code() {
                Some("ImageNotFoundException" | "RepositoryNotFoundException") => {
                    EcsError::NoImage { image: image.display(), detail: crate::aws_error::describe_sdk_error(&e) }
                }
                _ => refused("ECR", format!("describe image {}", image.display()), &e, |_| {
                    format!("Give the role ecr:DescribeImages on repository {} (see `ferry policy deploy`)", image.repository)
                }),
            }
        },
    )?;
    let Some(found) = out.image_details().first() else {
        return Err(EcsError::NoImage { image: image.display(), detail: "DescribeImages found no such image".into() });
    };
    let digest = found.image_digest().unwrap_or_default().to_string();
    if let Some(given) = &image.digest
        && *given != digest
    {
        return Err(EcsError::NoImage { image: image.display(), detail: format!("the tag is on {digest}, not {given}") });
    }
    Ok(Resolved { image: format!("{}@{digest}", image.name), digest, tag: image.tag.clone(), verified: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_ecr_image_is_known_by_its_account_region_repository_and_tag() {
        let i = ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:1.4").unwrap();
        assert_eq!(i.ecr, Some(("123456789012".into(), "eu-west-1".into())));
        assert_eq!((i.repository.as_str(), i.tag.as_deref(), i.digest.as_deref()), ("shop/web", Some("1.4"), None));
        assert_eq!(i.name, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web");
    }

    #[test]
    fn a_registry_port_is_not_a_tag_and_a_digest_is_kept() {
        let i = ImageRef::parse(&format!("registry.example:5000/web@{DIGEST}")).unwrap();
        assert_eq!((i.name.as_str(), i.tag.as_deref(), i.ecr.as_ref()), ("registry.example:5000/web", None, None));
        assert_eq!(i.digest.as_deref(), Some(DIGEST));
        assert_eq!(i.display(), format!("registry.example:5000/web@{DIGEST}"));
    }

    #[test]
    fn bad_references_are_refused_with_the_reason() {
        for (image, why) in [("web@sha256:abc", "64 hex"), ("web:", "tag"), ("a b", "spaces"), ("reg.io/", "missing")] {
            let e = ImageRef::parse(image).unwrap_err().to_string();
            assert!(e.contains(why), "{image}: {e}");
        }
    }

    #[tokio::test]
    async fn an_image_outside_ecr_deploys_only_by_digest_and_unverified() {
        let sdk = aws_config::SdkConfig::builder().build();
        let tagged = ImageRef::parse("nginx:1.27").unwrap();
        assert!(resolve(&sdk, &tagged).await.unwrap_err().to_string().contains("give it by digest"));
        let pinned = ImageRef::parse(&format!("nginx@{DIGEST}")).unwrap();
        let r = resolve(&sdk, &pinned).await.unwrap();
        assert_eq!((r.image, r.verified), (format!("nginx@{DIGEST}"), false));
    }
}
