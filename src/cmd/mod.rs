//! One file per subcommand, each a thin script over the pipeline modules.

pub mod release;
