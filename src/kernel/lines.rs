//! Consoles 1-15 and serial lines (`con<N>=`, `ssl<N>=`): each configured
//! one becomes a pty of the guest's devpts bound onto `/dev/tty<N>` or
//! `/dev/ttyS<N>`, relayed to its host channel: `fd:N`, `null`, or `pts`
//! (a host pty whose path is printed, as UML prints the device it
//! assigned). Other channel types are reported and left out.

use super::chan::{Channel, ChannelPair};
use super::console::Log;
use super::guestdev::bind;
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

/// Copies from `from` to `to` (or discards) for the monitor's life. A
/// guest-side master reads EIO while no guest process has the line open;
/// the pump waits and tries again.
fn pump(name: String, mut from: File, mut to: Option<File>) -> io::Result<()> {
    std::thread::Builder::new().name(name).spawn(move || {
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
    pump(format!("{node}-out"), gmaster.try_clone()?, output)?;
    if let Some(i) = input {
        pump(format!("{node}-in"), i, Some(gmaster))?;
    }
    Ok(())
}
