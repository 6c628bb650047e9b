//! A build's processes in one process group with no helper process: the first script spawned
//! leads the group, and its exit is read from a pidfd without reaping it. An unreaped leader
//! keeps the group's number from being reused, so later scripts can join the group and the
//! whole group can be signalled safely until the build ends, when the leader is reaped last.
//! Every exit is awaited on the pidfd, so no thread blocks and no signal handler is involved.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus};

use rustix::process::{
    Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, WaitIdStatus, kill_process_group, pidfd_open,
    waitid,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The processes of one build.
#[derive(Default)]
pub(crate) struct ProcessGroup {
    /// The group's id: the leader's pid.
    id: Option<Pid>,
    /// Spawned and not reaped yet: the leader, and whichever script runs now.
    unreaped: Vec<Child>,
}

/// One spawned process, to wait for.
pub(crate) struct Process {
    pid: Pid,
    pidfd: AsyncFd<OwnedFd>,
    leader: bool,
    /// Its output pipes, when it was spawned with piped output.
    pub(crate) stdout: Option<ChildStdout>,
    pub(crate) stderr: Option<ChildStderr>,
}

impl ProcessGroup {
    /// Spawns `cmd` in the group (the first one spawned founds it).
    pub(crate) fn spawn(&mut self, cmd: &mut Command) -> io::Result<Process> {
        cmd.process_group(Pid::as_raw(self.id));
        let mut child = cmd.spawn()?;
        let pid = Pid::from_raw(child.id() as i32)
            .ok_or_else(|| io::Error::other("the process has no pid"))?;
        let pidfd = match pidfd_open(pid, PidfdFlags::NONBLOCK).map_err(io::Error::from) {
            Ok(fd) => watch(fd)?,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let leader = self.id.is_none();
        if leader {
            self.id = Some(pid);
        }
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        self.unreaped.push(child);
        Ok(Process { pid, pidfd, leader, stdout, stderr })
    }

    /// Waits for `process` to exit. The leader stays unreaped (a zombie) so the group's id
    /// stays ours; any other process is reaped.
    pub(crate) async fn wait(&mut self, process: &Process) -> io::Result<ExitStatus> {
        let mut options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        if process.leader {
            options |= WaitIdOptions::NOWAIT;
        }
        loop {
            let mut ready = process.pidfd.readable().await?;
            let fd = process.pidfd.get_ref().as_fd();
            match waitid(WaitId::PidFd(fd), options).map_err(io::Error::from)? {
                Some(status) => {
                    if !process.leader {
                        self.unreaped.retain(|c| c.id() as i32 != process.pid.as_raw_pid());
                    }
                    return Ok(exit_status(&status));
                }
                None => ready.clear_ready(),
            }
        }
    }

    /// Sends `signal` to every process in the group. A group with no process left is not an
    /// error: there is nothing left to signal.
    pub(crate) fn signal(&self, signal: Signal) {
        if let Some(id) = self.id {
            let _ = kill_process_group(id, signal);
        }
    }
}

impl Drop for ProcessGroup {
    /// Kills whatever is left in the group, then reaps the leader (and a script still
    /// running), which frees the group's id.
    fn drop(&mut self) {
        self.signal(Signal::KILL);
        for mut child in self.unreaped.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Registers a pidfd with the runtime, to learn when its process exits.
// The replacement tokio offers is `unsafe` (forbidden here) to let any `AsRawFd` type in; an
// `OwnedFd` keeps one descriptor for its whole life, the condition it asks the caller to uphold.
#[allow(deprecated)]
fn watch(pidfd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::with_interest(pidfd, Interest::READABLE)
}

/// The status `waitid` read, as the standard library's.
fn exit_status(status: &WaitIdStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        return ExitStatus::from_raw((code & 0xff) << 8);
    }
    match status.terminating_signal() {
        Some(signal) => ExitStatus::from_raw(signal & 0x7f),
        None => ExitStatus::from_raw(0xff << 8),
    }
}
