//! The build ferry runs in, read from the process environment once.
//!
//! Data layer. Jenkins sets `JENKINS_URL`, `BUILD_TAG`, `BUILD_NUMBER`,
//! `JOB_NAME` and, with the Git plugin, `GIT_COMMIT`; the build-user plugin
//! adds `BUILD_USER_ID`. Other CI systems set `CI`. Everything that asks "are
//! we in Jenkins?" or "which build is this?" asks this one struct, so the
//! answers cannot drift apart.

use std::sync::OnceLock;

/// The build's variables; empty values count as unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildEnv {
    /// `CI` is set (any CI system, Jenkins' own agents included).
    pub ci: bool,
    /// `JENKINS_URL`.
    pub jenkins_url: Option<String>,
    /// `BUILD_TAG`: `jenkins-${JOB_NAME}-${BUILD_NUMBER}`, slashes as dashes.
    pub build_tag: Option<String>,
    /// `BUILD_NUMBER`.
    pub build_number: Option<String>,
    /// `JOB_NAME`, e.g. `web/deploy/main` for a multibranch job.
    pub job_name: Option<String>,
    /// `GIT_COMMIT`.
    pub git_commit: Option<String>,
    /// Who started the build: `BUILD_USER_ID`, else the OS user (`USER`).
    pub user: Option<String>,
    /// `NO_COLOR` is set and non-empty (<https://no-color.org>).
    pub no_color: bool,
}

/// The login name of `uid` in an /etc/passwd text (`name:x:uid:…`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

impl BuildEnv {
    /// The process environment, read on first use.
    pub fn current() -> &'static BuildEnv {
        static CURRENT: OnceLock<BuildEnv> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let mut build = BuildEnv::from_lookup(|k| std::env::var(k).ok());
            // Containers often set neither USER nor LOGNAME.
            if build.user.is_none() {
                let uid = rustix::process::getuid().as_raw();
                let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
                build.user = Some(passwd_name(&passwd, uid).unwrap_or_else(|| format!("uid{uid}")));
            }
            build
        })
    }

    /// From any variable source (tests pass a table).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> BuildEnv {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        BuildEnv {
            ci: lookup("CI").is_some(),
            jenkins_url: get("JENKINS_URL"),
            build_tag: get("BUILD_TAG"),
            build_number: get("BUILD_NUMBER"),
            job_name: get("JOB_NAME"),
            git_commit: get("GIT_COMMIT"),
            user: get("BUILD_USER_ID").or_else(|| get("USER")).or_else(|| get("LOGNAME")),
            no_color: get("NO_COLOR").is_some(),
        }
    }

    /// Running inside a Jenkins build (`JENKINS_URL` or `BUILD_TAG` set):
    /// receipts are written by default.
    pub fn in_jenkins(&self) -> bool {
        self.jenkins_url.is_some() || self.build_tag.is_some()
    }

    /// Running under any CI: output is plain lines, never ANSI or bars.
    pub fn in_ci(&self) -> bool {
        self.ci || self.in_jenkins()
    }

    /// The build as a receipt names it: the tag, else the number.
    pub fn build(&self) -> Option<&str> {
        self.build_tag.as_deref().or(self.build_number.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> BuildEnv {
        BuildEnv::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn jenkins_is_recognised_by_its_url_or_its_build_tag() {
        assert!(env(&[("JENKINS_URL", "https://ci/")]).in_jenkins());
        assert!(env(&[("BUILD_TAG", "jenkins-web-1")]).in_jenkins());
        assert!(!env(&[("CI", "true")]).in_jenkins());
        assert!(env(&[("CI", "true")]).in_ci());
        assert!(!env(&[]).in_ci());
    }

    #[test]
    fn without_user_the_login_name_comes_from_logname_then_the_passwd_entry() {
        assert_eq!(env(&[("LOGNAME", "carol")]).user.as_deref(), Some("carol"));
        assert_eq!(env(&[("USER", "bob"), ("LOGNAME", "carol")]).user.as_deref(), Some("bob"));
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\ndeploy:x:1000:1000::/home/deploy:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("deploy"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 4242), None);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let e = env(&[("BUILD_TAG", ""), ("BUILD_NUMBER", "7"), ("BUILD_USER_ID", " "), ("USER", "bob")]);
        assert!(!e.in_jenkins());
        assert_eq!(e.build(), Some("7"));
        assert_eq!(e.user.as_deref(), Some("bob"));
    }
}
