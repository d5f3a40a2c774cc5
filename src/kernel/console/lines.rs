//! Consoles 1-15 and serial lines (`con<N>=`, `ssl<N>=`): each configured
//! one becomes a node `/dev/tty<N>` or `/dev/ttyS<N>` in the guest. A line
//! with a host channel (`fd:N`, or `pts`: a host pty whose path is printed,
//! as UML prints the device it assigned) is a pty of the guest's devpts
//! relayed to that channel. A line that is `null` both ways is the host's
//! `/dev/null` (writes vanish, reads end at once) and costs no pty and no
//! thread: every devpts instance counts against the host's `kernel.pty.max`
//! (issue 12). Other channel types are reported and left out.

use super::{Log, QUIET};
use crate::kernel::cmdline::chan::{Channel, ChannelPair};
use crate::kernel::guest::dev::bind;
use crate::sys::guest::{dup_inherited, open_pty, pty_peer};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Which family of lines.
#[derive(Debug, Clone, Copy)]
pub enum Family {
    /// `/dev/tty<N>`, "Virtual console".
    Console,
    /// `/dev/ttyS<N>`, "Serial line".
    Serial,
}

impl Family {
    fn node(self, n: usize) -> String {
        match self {
            Family::Console => format!("tty{n}"),
            Family::Serial => format!("ttyS{n}"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Family::Console => "Virtual console",
            Family::Serial => "Serial line",
        }
    }
}

/// Stack of a pump thread: it only holds its buffer (on the heap).
const PUMP_STACK: usize = 64 * 1024;

/// The lines' guest-to-host pumps, so that a halt waits until what the
/// guest wrote to a line has reached its channel, as [`super::Relay`] does
/// for con0: each pump counts the times it has found its line quiet for
/// [`QUIET`].
#[derive(Clone, Default)]
pub struct Drain(Arc<DrainState>);

#[derive(Default)]
struct DrainState {
    quiet_seen: Mutex<Vec<u64>>,
    changed: Condvar,
    /// Slave descriptors held for the monitor's life, so that a line's
    /// master never reads EIO while no guest process has the line open.
    holds: Mutex<Vec<OwnedFd>>,
}

impl Drain {
    fn register(&self) -> usize {
        let mut seen = self.0.quiet_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(0);
        seen.len() - 1
    }

    fn hold(&self, slave: OwnedFd) {
        self.0
            .holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(slave);
    }

    fn quiet(&self, pump: usize) {
        let mut seen = self.0.quiet_seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = seen.get_mut(pump) {
            *n += 1;
        }
        self.0.changed.notify_all();
    }

    /// Waits (up to `limit`) until every line has been quiet for
    /// [`QUIET`] after this call began.
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut seen = self.0.quiet_seen.lock().unwrap_or_else(|e| e.into_inner());
        let start = seen.clone();
        while seen.iter().zip(&start).any(|(now, then)| now == then) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            seen = match self.0.changed.wait_timeout(seen, left) {
                Ok((s, _)) => s,
                Err(_) => return,
            };
        }
    }
}

/// Copies from `from` to `to` (or discards) for the monitor's life. With
/// `drain`, `from` is a line's master, whose quiet spells are reported.
fn pump(
    name: String,
    mut from: File,
    mut to: Option<File>,
    drain: Option<(Drain, usize)>,
) -> io::Result<()> {
    let builder = std::thread::Builder::new()
        .name(name)
        .stack_size(PUMP_STACK);
    builder.spawn(move || {
        let mut buf = vec![0u8; 16384];
        loop {
            if let Some((drain, id)) = &drain {
                let ready = nix::poll::poll(
                    &mut [nix::poll::PollFd::new(
                        from.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )],
                    nix::poll::PollTimeout::try_from(QUIET).unwrap_or(nix::poll::PollTimeout::NONE),
                );
                match ready {
                    Ok(0) => {
                        drain.quiet(*id);
                        continue;
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                    Ok(_) => {}
                }
            }
            match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Some(t) = to.as_mut() {
                        if t.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
                // Only a host channel that went away (the slave is held).
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })?;
    Ok(())
}

fn unsupported(c: &Channel) -> bool {
    !matches!(c, Channel::Fd(_) | Channel::Null | Channel::Pts)
}

/// What backs a line's guest node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// The host's `/dev/null`: no channel is attached.
    Null,
    /// A pty of the guest's devpts, relayed to the attached channels.
    Pty,
}

/// A line is a pty only when a channel is attached in some direction.
pub fn backing(pair: &ChannelPair) -> Backing {
    if pair.input == Channel::Null && pair.output == Channel::Null {
        Backing::Null
    } else {
        Backing::Pty
    }
}

/// Attaches line `n` of `family` with `pair` under the guest's `dev`.
pub fn attach(
    family: Family,
    n: usize,
    pair: &ChannelPair,
    dev: &Path,
    log: &Log,
    drain: &Drain,
) -> io::Result<()> {
    let node = family.node(n);
    if let Some(c) = [&pair.input, &pair.output]
        .into_iter()
        .find(|c| unsupported(c))
    {
        log.info(&format!(
            "{node}: channel type '{}' is not supported by this linux; no /dev/{node}",
            c.kind()
        ));
        return Ok(());
    }
    if !dev.is_dir() {
        return Ok(());
    }
    if backing(pair) == Backing::Null {
        // `<dev>/null` is already the host's /dev/null, bound by guestdev.
        return bind(&dev.join("null"), &dev.join(&node));
    }
    let (gmaster, k) = open_pty(&dev.join("pts/ptmx"))?;
    bind(&dev.join("pts").join(k.to_string()), &dev.join(&node))?;
    drain.hold(pty_peer(gmaster.as_fd())?);
    let gmaster = File::from(gmaster);
    let host_pty = if matches!(pair.input, Channel::Pts) || matches!(pair.output, Channel::Pts) {
        let (m, hn) = open_pty(Path::new("/dev/ptmx"))?;
        log.info(&format!(
            "{} {n} assigned device '/dev/pts/{hn}'",
            family.label()
        ));
        Some(File::from(m))
    } else {
        None
    };
    let source = |c: &Channel| -> io::Result<Option<File>> {
        Ok(match c {
            Channel::Fd(fd) => Some(File::from(dup_inherited(*fd)?)),
            Channel::Pts => host_pty.as_ref().map(File::try_clone).transpose()?,
            _ => None,
        })
    };
    let input = source(&pair.input)?;
    let output = source(&pair.output)?;
    // Output to `null` is still drained, so guest writes never block.
    let id = drain.register();
    pump(
        format!("{node}-out"),
        gmaster.try_clone()?,
        output,
        Some((drain.clone(), id)),
    )?;
    if let Some(i) = input {
        pump(format!("{node}-in"), i, Some(gmaster), None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(input: Channel, output: Channel) -> ChannelPair {
        ChannelPair { input, output }
    }

    #[test]
    fn only_a_line_null_both_ways_is_backed_by_dev_null() {
        assert_eq!(backing(&pair(Channel::Null, Channel::Null)), Backing::Null);
        assert_eq!(backing(&pair(Channel::Fd(0), Channel::Null)), Backing::Pty);
        assert_eq!(backing(&pair(Channel::Null, Channel::Fd(1))), Backing::Pty);
        assert_eq!(backing(&pair(Channel::Pts, Channel::Pts)), Backing::Pty);
    }
}
