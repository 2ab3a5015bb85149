//! Pseudo-terminals for the tests that run ferry as a person would see it:
//! the live board, the MFA prompt, the confirmation question. One way to put
//! ferry on a terminal, read what it drew, and type an answer.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, OutputModes, Winsize, tcgetattr, tcsetattr, tcsetwinsize};

/// The tests' terminal: 40 rows of 160 columns.
pub const ROWS: u16 = 40;
/// See [`ROWS`].
pub const COLS: u16 = 160;

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

/// Spawns `cmd` with stderr (and stdin too when `stdin`, else no stdin) on
/// the terminal side of `pty`, `TERM=xterm-256color`; stdout is as the caller
/// set it. Returns the child and the controller side to read and type on:
/// only ferry holds the terminal side afterwards, so its exit ends the reads.
pub fn spawn(mut cmd: Command, (controller, terminal): (OwnedFd, OwnedFd), stdin: bool) -> (Child, File) {
    let side = || Stdio::from(terminal.as_fd().try_clone_to_owned().unwrap());
    cmd.env("TERM", "xterm-256color").stdin(if stdin { side() } else { Stdio::null() }).stderr(side());
    let child = cmd.spawn().unwrap();
    // The Command keeps its copies of the terminal side until dropped.
    drop(cmd);
    drop(terminal);
    (child, File::from(controller))
}

/// What a command drew on a [`ROWS`]×[`COLS`] terminal.
pub struct Shown {
    /// Every distinct screen, in order, read after each chunk ferry wrote
    /// (so some are frames half drawn).
    pub screens: Vec<String>,
    /// Every byte written to the terminal.
    pub raw: Vec<u8>,
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
}

impl Shown {
    /// The screen left at the end.
    pub fn last(&self) -> String {
        self.screens.last().cloned().unwrap_or_default()
    }
}

/// Runs `cmd` with stderr on a [`ROWS`]×[`COLS`] terminal (no stdin, stdout
/// discarded) and replays what it drew into a VT100 screen until it exits.
pub fn on_a_terminal(mut cmd: Command) -> Shown {
    cmd.stdout(Stdio::null());
    let (mut child, mut controller) = spawn(cmd, screen(ROWS, COLS), false);
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    let (mut screens, mut raw) = (Vec::<String>::new(), Vec::new());
    let mut buf = [0u8; 8192];
    // EIO once the last terminal side closes: ferry has exited.
    while let Ok(n) = controller.read(&mut buf) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        parser.process(&buf[..n]);
        let screen = rows(parser.screen());
        if screens.last() != Some(&screen) {
            screens.push(screen);
        }
    }
    Shown { screens, raw, code: child.wait().unwrap().code().unwrap_or(-1) }
}

/// The screen row by row (`contents()` would join a row that fills the
/// width with the next, as if it had wrapped).
pub fn rows(screen: &vt100::Screen) -> String {
    screen.rows(0, COLS).map(|r| r.trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// Runs `cmd` with stdin and stderr on a terminal and stdout piped, types
/// `answer` and Enter once the terminal shows `prompt`, and reads on until
/// it exits: the exit code, all the terminal showed (the typed answer
/// echoed), and stdout.
pub fn answering(mut cmd: Command, prompt: &str, answer: &str) -> (i32, String, String) {
    cmd.stdout(Stdio::piped());
    let (mut child, mut controller) = spawn(cmd, pair(), true);
    let stdout = super::drain(child.stdout.take().unwrap());
    let (mut shown, mut buf) = (Vec::new(), [0u8; 8192]);
    while !String::from_utf8_lossy(&shown).contains(prompt) {
        let n = controller.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "ferry ended without showing {prompt:?}:\n{}", String::from_utf8_lossy(&shown));
        shown.extend_from_slice(&buf[..n]);
    }
    controller.write_all(format!("{answer}\n").as_bytes()).unwrap();
    while let Ok(n) = controller.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&shown).into_owned(), stdout.join().unwrap())
}
