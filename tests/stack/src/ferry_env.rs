//! What ferry is given: its environment and its `ferry.toml`.

/// One `[env.NAME]` table of ferry.toml.
pub struct EnvConfig<'a> {
    /// Role ferry assumes in Production.
    pub role_arn: &'a str,
    /// `sts:ExternalId`, if the trust policy wants one.
    pub external_id: Option<&'a str>,
    /// AWS region.
    pub region: &'a str,
    /// Release bucket.
    pub bucket: &'a str,
    /// Key prefix for bundles in the bucket.
    pub prefix: &'a str,
    /// CodeDeploy application.
    pub application: &'a str,
    /// CodeDeploy deployment group.
    pub deployment_group: &'a str,
}

/// Renders `[env.<env_name>]` for ferry.toml.
pub fn ferry_toml(env_name: &str, c: &EnvConfig<'_>) -> String {
    let mut out = format!("[env.{}]\n", toml_key(env_name));
    let mut field = |k: &str, v: &str| out.push_str(&format!("{k} = {}\n", toml_string(v)));
    field("role_arn", c.role_arn);
    if let Some(id) = c.external_id {
        field("external_id", id);
    }
    field("region", c.region);
    field("bucket", c.bucket);
    field("prefix", c.prefix);
    field("application", c.application);
    field("deployment_group", c.deployment_group);
    out
}

/// Renders `vars` as a POSIX shell file of `export NAME='value'` lines.
pub fn env_file(vars: &[(String, String)]) -> String {
    let mut out = String::from("# Written by ferry-test-stack: source it to point ferry and the AWS CLI at the local stack.\n");
    for (k, v) in vars {
        out.push_str(&format!("export {k}={}\n", shell_quote(v)));
    }
    out
}

/// Bare keys stay bare so the file reads like a hand-written one.
fn toml_key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        k.to_owned()
    } else {
        toml_string(k)
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_escapes_and_skips_missing_external_id() {
        let c = EnvConfig {
            role_arn: "arn:aws:iam::222222222222:role/CA_ServiceDeployer",
            external_id: None,
            region: "us-east-1",
            bucket: "b\"x",
            prefix: "releases",
            application: "web",
            deployment_group: "web-prod",
        };
        let t = ferry_toml("demo", &c);
        assert!(t.starts_with("[env.demo]\n"));
        assert!(t.contains("bucket = \"b\\\"x\"\n"));
        assert!(!t.contains("external_id"));
        assert_eq!(ferry_toml("a b", &c).lines().next(), Some("[env.\"a b\"]"));
    }

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let f = env_file(&[("A".into(), "x y".into())]);
        assert!(f.ends_with("export A='x y'\n"));
    }
}
