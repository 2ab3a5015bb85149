//! near_miss: when a bundle has no `appspec.yml`, the file at its root that
//! was probably meant as one, so the error names it and its fix instead of
//! only saying that the appspec is missing.

use std::path::Path;

use crate::appspec::{self, Contents};

/// Names a bundle's root may hold in place of `appspec.yml`: the ECS and
/// Lambda spelling, case slips, a JSON appspec, an editor's extra suffix.
const CANDIDATES: [&str; 8] = [
    "appspec.yaml",
    "AppSpec.yml",
    "AppSpec.yaml",
    "Appspec.yml",
    "APPSPEC.YML",
    "appspec.json",
    "appspec.yml.txt",
    "appspec.yml.bak",
];

/// A root file that was probably meant as the appspec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    /// Its name, as found.
    pub name: String,
    /// Whether it describes an ECS or Lambda deployment (`Resources:` with
    /// a `TargetService` or a function), which no rename makes deployable
    /// to EC2/on-premises instances.
    pub ecs_or_lambda: bool,
}

/// The first of [`CANDIDATES`] that `contents` holds as a file, if any.
pub fn find(contents: &dyn Contents) -> Option<NearMiss> {
    let name = CANDIDATES.iter().find(|n| matches!(contents.lookup(n), Some(appspec::Kind::File { .. })))?;
    let text = contents.read(name).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let ecs_or_lambda = text.lines().any(|l| l.trim_end() == "Resources:")
        && ["TargetService", "AWS::Lambda::Function", "AWS::ECS::Service"].iter().any(|w| text.contains(w));
    Some(NearMiss { name: name.to_string(), ecs_or_lambda })
}

/// The whole `NoAppSpec` sentence: cause and fix, naming the near miss.
pub fn message(path: &Path, instead: Option<&NearMiss>) -> String {
    let at = path.display();
    match instead {
        None => format!(
            "{at} has no appspec.yml at its root. CodeDeploy needs one to know where files go and which hooks to \
             run; add it at the top of the bundle (not in a subdirectory)."
        ),
        Some(m) if m.ecs_or_lambda => format!(
            "{at} has no appspec.yml but holds `{}`, an ECS/Lambda appspec (its `Resources:` name a \
             TargetService or function). This environment releases to an EC2/on-premises group, whose CodeDeploy \
             agent reads only `appspec.yml` with `files:` and `hooks:`. For a Lambda function, set \
             `compute_platform = \"Lambda\"` and `function_name` and give ferry the function's code: it writes the \
             appspec itself (docs/lambda.md); ferry does not release ECS services yet. Otherwise write an EC2 \
             appspec.yml (docs/appspec.md).",
            m.name
        ),
        Some(m) => format!(
            "{at} has no appspec.yml but holds `{}`. The CodeDeploy agent on EC2/on-premises instances reads only \
             `appspec.yml`, spelt exactly so (`appspec.yaml` is the name ECS and Lambda deployments use) and would \
             fail the deployment. Rename it: `mv {} appspec.yml`.",
            m.name, m.name
        ),
    }
}
