//! The start-up every command that may deploy (or follow a deployment)
//! shares: the receipt's path checked before any AWS call, SIGINT/SIGTERM
//! caught from the first line, the clock started; and its end: the receipt
//! written however the command ends.

use std::path::{Path, PathBuf};

use crate::abort::Guard;
use crate::event::{Receipt, Reporter};
use crate::exit::ExitCode;
use crate::receipt::{self, Clock, Keeper, ReceiptError};

/// A command begun: its signal guard, where its receipt goes, its clock.
pub struct Start {
    /// Catches SIGINT/SIGTERM from here on.
    pub guard: Guard,
    /// `--receipt`, or the default in Jenkins; none: no file.
    pub receipt_path: Option<PathBuf>,
    /// When the command began.
    pub clock: Clock,
}

impl Start {
    /// Checks that the receipt can be written (nothing may be deployed that
    /// cannot be recorded), then installs the signal guard.
    pub fn begin(receipt_flag: Option<&Path>, reporter: &dyn Reporter) -> Result<Start, ReceiptError> {
        let receipt_path = receipt::path(receipt_flag);
        if let Some(path) = &receipt_path {
            receipt::check_path(path)?;
        }
        Ok(Start { guard: Guard::install(reporter), receipt_path, clock: Clock::start() })
    }

    /// Runs a command that keeps one receipt (`seed`, with this build's
    /// name added) and ends it: the receipt is written whatever `body`
    /// returns, and announced when `announce` (see [`receipt::finish`]).
    pub async fn run<E>(
        receipt_flag: Option<&Path>,
        seed: Receipt,
        announce: bool,
        reporter: &dyn Reporter,
        body: impl AsyncFnOnce(&mut Guard, &mut Keeper) -> Result<ExitCode, E>,
    ) -> Result<ExitCode, E>
    where
        E: std::fmt::Display + From<ReceiptError>,
    {
        let Start { mut guard, receipt_path, clock } = Start::begin(receipt_flag, reporter)?;
        let receipt = Receipt { build: receipt::build_from_env(), ..seed };
        let mut keeper = Keeper::new(receipt, clock, receipt_path);
        let result = body(&mut guard, &mut keeper).await;
        keeper.finish(result, announce, reporter)
    }
}
