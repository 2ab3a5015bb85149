//! ferry: a release agent that ships a bundle into an AWS production account
//! through CodeDeploy, from Jenkins or by hand.
//!
//! # Layers
//!
//! Four layers; a module imports only from its own layer or the ones above it
//! in this list, never from one below, and no two modules import each other,
//! directly or round a circle. `tests/layering.rs` reads the `// layer:`
//! markers below and holds every file of `src/` to them.
//!
//! 1. **data**: what everything else speaks: [`config`] (ferry.toml, role
//!    ARNs, bundle types), [`duration`], [`deadline`] (`--timeout` for the
//!    whole command, SDK timeouts, stalls), [`exit`] (the exit-code table),
//!    [`aws_error`] (AWS errors as sentences), [`agent_log`] (the CodeDeploy
//!    agent's log tail, decoded), [`outfile`] (what may be at a path ferry
//!    writes to), [`small_file`] (the small files it reads whole: regular
//!    files only, never blocking), [`jenkins`] (the build's
//!    environment, read once), [`event`] (the typed events the core emits)
//!    and [`report`], the renderers: the only code that prints.
//! 2. **stages**: one AWS or local step each, with its own error enum:
//!    [`assume`], [`appspec`], [`bundle`], [`upload`], [`deploy`], [`watch`],
//!    [`deployments`] (what CodeDeploy records of a group), [`promote`]
//!    (`release s3://…`), [`lambda`] (a Lambda release's code published as a version), [`ecs`] (an
//!    ECS release's image registered as a task definition), [`policy`],
//!    [`handoff`] (credentials to other programs).
//! 3. **orchestration**: stages put together: [`queue`], [`launch`],
//!    [`follow`], [`abort`], [`rollback`], [`receipt`], [`doctor`],
//!    [`pipeline`] (one release after the bundle, and the command start-up),
//!    [`plan`] (what a release would change against what runs)
//!    and [`wave`] (that release through ordered stages of environments).
//! 4. **face**: [`cli`] (clap) and [`cmd`] (one file per subcommand, and the
//!    error every command ends with). Only the face names clap or `cli`.

// Only what tests/, fuzz/ and main.rs use is public; the rest is
// crate-private so rustc reports what nothing calls.

// layer: data
pub(crate) mod agent_log;
pub(crate) mod aws_error;
pub mod config;
pub(crate) mod deadline;
pub(crate) mod duration;
pub(crate) mod event;
pub(crate) mod exit;
pub(crate) mod jenkins;
pub(crate) mod outfile;
pub(crate) mod report;
pub(crate) mod small_file;

// layer: stages
pub mod appspec;
pub(crate) mod assume;
pub(crate) mod bundle;
pub(crate) mod deploy;
pub(crate) mod deployments;
pub(crate) mod ecs;
pub(crate) mod handoff;
pub(crate) mod lambda;
pub mod policy;
pub(crate) mod promote;
pub(crate) mod upload;
pub(crate) mod watch;

// layer: orchestration
pub(crate) mod abort;
pub(crate) mod doctor;
pub(crate) mod follow;
pub(crate) mod launch;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod queue;
pub(crate) mod receipt;
pub(crate) mod rollback;
pub(crate) mod wave;

// layer: face
pub mod cli;
pub(crate) mod cmd;

pub use cmd::run;
pub use exit::ExitCode;
/// How a bundle of a given size is split into parts (the upload tests check it against S3).
pub use upload::Plan as UploadPlan;
