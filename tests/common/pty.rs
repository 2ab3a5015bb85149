//! Pseudo-terminals for the tests that run ferry as a person would see it:
//! the live board, the MFA prompt, the confirmation question.

use std::os::fd::OwnedFd;

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, OutputModes, Winsize, tcgetattr, tcsetattr, tcsetwinsize};

/// A pseudo-terminal pair: (controller, terminal). Give ferry clones of the
/// terminal side and drop the original, so that ferry's exit ends the
/// controller's reads (EIO).
pub fn pair() -> (OwnedFd, OwnedFd) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal: OwnedFd = std::fs::OpenOptions::new().read(true).write(true).open(name.to_str().unwrap()).unwrap().into();
    (controller, terminal)
}

/// [`pair`] of `rows`×`cols` whose output is post-processed as a terminal
/// emulator's is (\n as \r\n), for tests that replay the screen.
pub fn screen(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let (controller, terminal) = pair();
    tcsetwinsize(&terminal, Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }).unwrap();
    let mut attrs = tcgetattr(&terminal).unwrap();
    attrs.output_modes |= OutputModes::OPOST | OutputModes::ONLCR;
    tcsetattr(&terminal, OptionalActions::Now, &attrs).unwrap();
    (controller, terminal)
}
