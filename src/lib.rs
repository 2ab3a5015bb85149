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
//!    ARNs, bundle types), [`duration`], [`exit`] (the exit-code table),
//!    [`aws_error`] (AWS errors as sentences), [`jenkins`] (the build's
//!    environment, read once), [`event`] (the typed events the core emits)
//!    and [`report`], the renderers: the only code that prints.
//! 2. **stages**: one AWS or local step each, with its own error enum:
//!    [`assume`], [`appspec`], [`bundle`], [`upload`], [`deploy`], [`watch`],
//!    [`deployments`] (what CodeDeploy records of a group), [`policy`],
//!    [`handoff`] (credentials to other programs).
//! 3. **orchestration**: stages put together: [`queue`], [`launch`],
//!    [`follow`], [`abort`], [`rollback`], [`receipt`], [`doctor`].
//! 4. **face**: [`cli`] (clap) and [`cmd`] (one file per subcommand, and the
//!    error every command ends with). Only the face names clap or `cli`.

// layer: data
pub mod aws_error;
pub mod config;
pub mod duration;
pub mod event;
pub mod exit;
pub mod jenkins;
pub mod report;

// layer: stages
pub mod appspec;
pub mod assume;
pub mod bundle;
pub mod deploy;
pub mod deployments;
pub mod handoff;
pub mod policy;
pub mod upload;
pub mod watch;

// layer: orchestration
pub mod abort;
pub mod doctor;
pub mod follow;
pub mod launch;
pub mod queue;
pub mod receipt;
pub mod rollback;

// layer: face
pub mod cli;
pub mod cmd;

pub use cmd::run;
