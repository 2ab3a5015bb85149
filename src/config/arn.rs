//! Role ARNs: checked when ferry.toml is read, so a typo is a usage error
//! before any AWS call.

use std::fmt;

/// An IAM role ARN, split into the parts ferry needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    /// The full ARN as given.
    pub arn: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The 12-digit account that owns the role (and the bucket).
    pub account: String,
    /// The role's name, without its path.
    pub name: String,
}

impl RoleArn {
    /// Parses `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`. The error is a
    /// sentence saying what is wrong and what a role ARN looks like.
    pub fn parse(s: &str) -> Result<RoleArn, String> {
        const SHAPE: &str = "a role ARN looks like arn:aws:iam::222222222222:role/CA_ServiceDeployer";
        let parts: Vec<&str> = s.splitn(6, ':').collect();
        if parts.len() != 6 || parts[0] != "arn" {
            return Err(format!("it is not an ARN; {SHAPE}."));
        }
        let (partition, service, region, account, resource) = (parts[1], parts[2], parts[3], parts[4], parts[5]);
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(format!("unknown partition `{partition}`; {SHAPE}."));
        }
        if service != "iam" {
            return Err(format!("it is an ARN for `{service}`, not an IAM role; {SHAPE}."));
        }
        if !region.is_empty() {
            return Err(format!("IAM ARNs have no region, but this one has `{region}`; {SHAPE}."));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("the account `{account}` is not 12 digits; {SHAPE}."));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(format!("`{resource}` is not a role (users and policies cannot be assumed); {SHAPE}."));
        };
        let name = path_and_name.rsplit('/').next().unwrap_or_default();
        let name_ok =
            !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
        if !name_ok {
            return Err(format!(
                "the role name `{name}` is empty, longer than 64 characters, or has characters IAM does not allow; {SHAPE}."
            ));
        }
        Ok(RoleArn { arn: s.to_string(), partition: partition.to_string(), account: account.to_string(), name: name.to_string() })
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_role_arn_with_a_path() {
        let arn = RoleArn::parse("arn:aws:iam::222222222222:role/deploy/CA_ServiceDeployer").unwrap();
        assert_eq!(arn.account, "222222222222");
        assert_eq!(arn.name, "CA_ServiceDeployer");
        assert_eq!(arn.partition, "aws");
    }

    #[test]
    fn refuses_malformed_role_arns_with_a_reason() {
        let cases = [
            ("CA_ServiceDeployer", "not an ARN"),
            ("arn:aws:iam::2222:role/x", "not 12 digits"),
            ("arn:aws:iam::222222222222:user/jenkins", "not a role"),
            ("arn:aws:s3:::bucket/key", "not an IAM role"),
            ("arn:aws:iam:eu-west-1:222222222222:role/x", "no region"),
            ("arn:foo:iam::222222222222:role/x", "partition"),
            ("arn:aws:iam::222222222222:role/has space", "role name"),
        ];
        for (input, expect) in cases {
            let err = RoleArn::parse(input).unwrap_err();
            assert!(err.contains(expect), "{input}: {err}");
            assert!(err.contains("arn:aws:iam::222222222222:role/CA_ServiceDeployer"), "{err}");
        }
    }
}
