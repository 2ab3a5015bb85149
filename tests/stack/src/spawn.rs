//! Spawns child processes that cannot outlive the test process.
//!
//! A test killed by a timeout (nextest sends SIGKILL) never runs `Drop`, so
//! the stack's own cleanup is not enough to promise "no leftover moto". Linux's
//! parent-death signal covers that case, with one catch: it fires when the
//! *thread* that forked the child exits, not the process. Stacks are built on
//! short-lived threads, so every child is forked from one thread that lives
//! as long as the process.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

type Request = (Command, Sender<io::Result<Child>>);

static SPAWNER: OnceLock<Sender<Request>> = OnceLock::new();

/// Spawns `cmd` so that the kernel SIGKILLs it if this process dies.
///
/// The command is also put in its own process group, so callers can kill
/// everything it starts with one `kill(-pid)`.
pub fn spawn_tied_to_process(cmd: Command) -> io::Result<Child> {
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Request>();
        std::thread::Builder::new()
            .name("ferry-test-stack-spawner".into())
            .spawn(move || {
                for (cmd, reply) in rx {
                    let _ = reply.send(spawn_here(cmd));
                }
            })
            .expect("ferry-test-stack: cannot start the spawner thread");
        tx
    });
    let (tx, rx) = channel();
    spawner.send((cmd, tx)).map_err(|_| io::Error::other("spawner thread is gone"))?;
    rx.recv().map_err(|_| io::Error::other("spawner thread is gone"))?
}

fn spawn_here(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0);
    // SAFETY: the closure only makes async-signal-safe syscalls.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then the
            // signal will never come, so stop here instead.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// SIGKILLs the process group led by `child` and reaps the child.
pub fn kill_group(child: &mut Child) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: plain syscall; a stale group id fails with ESRCH, which is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
}
