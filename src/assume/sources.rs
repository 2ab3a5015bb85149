//! What the standard AWS credential chain looks at, and what this agent
//! offers it: said when the chain found nothing, so a first run on a bare
//! Jenkins agent learns where credentials come from instead of being sent
//! after proxies.

use std::path::PathBuf;

/// One place the chain looks, and what ferry sees there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Where the chain looked.
    pub name: &'static str,
    /// What is there on this agent.
    pub found: String,
}

/// The chain's sources in its order, each with what the environment and the
/// files say about it. `var` reads the environment; `home` is `$HOME`.
pub fn survey(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Vec<Source> {
    let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    let mut out = Vec::new();

    let keys = match (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY")) {
        (Some(_), Some(_)) => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set".to_string(),
        (Some(_), None) => "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".to_string(),
        (None, Some(_)) => "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".to_string(),
        (None, None) => "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set".to_string(),
    };
    out.push(Source { name: "environment variables", found: keys });

    // `--profile` when given (it wins over AWS_PROFILE).
    let profile = crate::config::aws_defaults().profile.or_else(|| set("AWS_PROFILE")).unwrap_or_else(|| "default".into());
    let config = set("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let creds =
        set("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let files: Vec<String> = [config, creds]
        .into_iter()
        .flatten()
        .map(|p| format!("{} {}", p.display(), if p.is_file() { "exists" } else { "does not exist" }))
        .collect();
    out.push(Source {
        name: "shared config and credentials files",
        found: format!("profile `{profile}`; {}", if files.is_empty() { "no $HOME".into() } else { files.join(", ") }),
    });

    let web = match (set("AWS_WEB_IDENTITY_TOKEN_FILE"), set("AWS_ROLE_ARN")) {
        (Some(f), Some(_)) => format!("AWS_WEB_IDENTITY_TOKEN_FILE={f} and AWS_ROLE_ARN are set"),
        (Some(_), None) => "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into(),
        _ => "AWS_WEB_IDENTITY_TOKEN_FILE is not set (EKS IRSA / OIDC)".into(),
    };
    out.push(Source { name: "web identity token", found: web });

    let container = if set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some() {
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set (ECS task role)".to_string()
    } else if set("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some() {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI is set".to_string()
    } else {
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI are not set (ECS task role, EKS Pod Identity)".to_string()
    };
    out.push(Source { name: "container credentials", found: container });

    let imds = if set("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "disabled by AWS_EC2_METADATA_DISABLED=true".to_string()
    } else {
        "no role credentials from the instance metadata service: not on EC2, no instance profile attached, or \
         (in a container on EC2) IMDSv2's response hop limit of 1 stops the answer one hop short: raise it to 2 \
         with `aws ec2 modify-instance-metadata-options --instance-id ID --http-put-response-hop-limit 2`"
            .to_string()
    };
    out.push(Source { name: "EC2 instance role (IMDS)", found: imds });
    out
}

/// The paragraph that follows "no AWS credentials found": what the chain
/// tried, then the ways Jenkins can provide credentials.
pub fn explain(sources: &[Source]) -> String {
    let mut s = String::from("The standard AWS credential chain tried, in order:");
    for (i, src) in sources.iter().enumerate() {
        s.push_str(&format!("\n  {}. {}: {}", i + 1, src.name, src.found));
    }
    s.push_str(
        "\nOn a Jenkins agent, give it credentials one of these ways:\
         \n  - attach an instance profile (e.g. JenkinsRole) to the agent's EC2 instance (or a task role to its ECS task);\
         \n  - bind an AWS credential: withCredentials([aws(credentialsId: 'ID')]) { sh 'ferry release …' } (AWS Credentials plugin);\
         \n  - wrap the step in withAWS(credentials: 'ID') { … } (Pipeline: AWS Steps plugin), without role: — ferry assumes role_arn itself.\
         \nElsewhere, set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn survey_of(vars: &[(&str, &str)]) -> Vec<Source> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        survey(|k| map.get(k).cloned(), Some(PathBuf::from("/nonexistent-home")))
    }

    #[test]
    fn a_bare_agent_is_told_each_source_is_empty_in_the_chains_order() {
        let s = survey_of(&[]);
        let names: Vec<&str> = s.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "environment variables",
                "shared config and credentials files",
                "web identity token",
                "container credentials",
                "EC2 instance role (IMDS)"
            ]
        );
        assert!(s[0].found.contains("are not set"), "{s:?}");
        assert!(s[1].found.contains("profile `default`"), "{s:?}");
        assert!(s[1].found.contains("/nonexistent-home/.aws/credentials does not exist"), "{s:?}");
        assert!(s[4].found.contains("--http-put-response-hop-limit 2"), "the IMDS hop-limit hint: {s:?}");
    }

    #[test]
    fn what_is_set_is_said() {
        let s = survey_of(&[("AWS_ACCESS_KEY_ID", "AKIA"), ("AWS_PROFILE", "ops"), ("AWS_EC2_METADATA_DISABLED", "true")]);
        assert_eq!(s[0].found, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        assert!(s[1].found.starts_with("profile `ops`"), "{s:?}");
        assert_eq!(s[4].found, "disabled by AWS_EC2_METADATA_DISABLED=true");
    }

    #[test]
    fn the_explanation_lists_the_jenkins_ways() {
        let text = explain(&survey_of(&[]));
        for needle in
            ["instance profile", "withCredentials([aws(credentialsId:", "withAWS(credentials:", "1. environment variables"]
        {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(!text.contains("proxy"), "{text}");
    }
}
