//! Consoles 1-15 and serial lines (`con<N>=`, `ssl<N>=`): each configured
//! one becomes a node `/dev/tty<N>` or `/dev/ttyS<N>` in the guest. A line
//! with a host channel (`fd:N`, or `pts`: a host pty whose path is printed,
//! as UML prints the device it assigned) is a pty of the guest's devpts
//! relayed to that channel. A line that is `null` both ways is the host's
//! `/dev/null` (writes vanish, reads end at once) and costs no pty and no
//! thread: every devpts instance counts against the host's `kernel.pty.max`
//! (issue 12). Other channel types are reported and left out.

use super::Log;
use crate::kernel::cmdline::chan::{Channel, ChannelPair};
use crate::kernel::guest::dev::bind;
use crate::sys::guest::{dup_inherited, open_pty};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

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

/// Copies from `from` to `to` (or discards) for the monitor's life. A
/// guest-side master reads EIO while no guest process has the line open;
/// the pump waits and tries again.
fn pump(name: String, mut from: File, mut to: Option<File>) -> io::Result<()> {
    let builder = std::thread::Builder::new()
        .name(name)
        .stack_size(PUMP_STACK);
    builder.spawn(move || {
        let mut buf = vec![0u8; 16384];
        loop {
            match from.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if let Some(t) = to.as_mut() {
                        if t.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
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
    pump(format!("{node}-out"), gmaster.try_clone()?, output)?;
    if let Some(i) = input {
        pump(format!("{node}-in"), i, Some(gmaster))?;
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
