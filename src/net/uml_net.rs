//! `uml_net`, the setuid-root helper the UML kernel runs to get a TAP
//! device (`eth0=tuntap,,,GATEWAY`) and to route guest addresses to it
//! (spec §2). It never runs another program and never reads the
//! environment; it keeps root only for the ioctls and `/proc/sys` writes
//! and returns to the caller's ids before answering (keeping root as the
//! saved id only to undo a `tuntap up` whose answer could not be sent).
//!
//! What it changes on the host is recorded (`tapstate`) and undone when
//! the TAP goes away, by a watcher process `tuntap up` leaves behind
//! (`watcher`): published proxy ARP entries and `ip_forward`.
//!
//! Answers go to fd 1 in the form the kernel reads: for `tuntap up` one
//! datagram carrying the 16-byte interface name, the message text and the
//! TAP descriptor (`SCM_RIGHTS`); for `add`/`del` a native-endian length
//! and the text with its NUL. Every failure also exits with status 1.

use super::host;
use super::request::{self, Refusal, Request};
use super::statedir::STATE_DIR;
use super::tapstate;
use crate::sys::net::{self as sysnet, strerror, IFNAMSIZ};
use nix::unistd::{geteuid, getgid, getuid, setresgid, setresuid, Gid, Uid};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

/// The framed form: native-endian `int` length, then the text and a NUL
/// (nothing after the length when the text is empty).
pub fn framed(text: &str) -> Vec<u8> {
    let body: Vec<u8> = if text.is_empty() {
        Vec::new()
    } else {
        text.bytes().chain([0]).collect()
    };
    let len = i32::try_from(body.len()).unwrap_or(i32::MAX);
    len.to_ne_bytes().into_iter().chain(body).collect()
}

/// The user who ran uml_net, and whether uml_net has root to act for
/// them (installed setuid root, or run by root).
#[derive(Clone, Copy)]
struct Caller {
    uid: Uid,
    gid: Gid,
    root: bool,
}

impl Caller {
    fn now() -> Caller {
        Caller {
            uid: getuid(),
            gid: getgid(),
            root: geteuid().is_root(),
        }
    }

    /// All ids root, as the original's `setreuid(0, 0)`: the caller can
    /// no longer signal the process half-way through a change.
    fn become_root(&self) -> io::Result<()> {
        if self.root {
            // The user ids first: after act_as_caller only the saved uid
            // is root, and the group ids need an effective root.
            let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
            setresuid(u, u, u)?;
            setresgid(g, g, g)?;
        }
        Ok(())
    }

    /// The caller's ids, with root kept as the saved ids only, so that
    /// [`Caller::become_root`] can still undo a failed answer.
    fn act_as_caller(&self) -> io::Result<()> {
        if self.root {
            let (u, g) = (Uid::from_raw(0), Gid::from_raw(0));
            setresgid(self.gid, self.gid, g)?;
            setresuid(self.uid, self.uid, u)?;
        }
        Ok(())
    }

    /// Drops to the caller's ids for good (a no-op when not setuid).
    fn drop_privileges(&self) -> io::Result<()> {
        if self.root {
            let u = Uid::from_raw(0);
            // Back to root first, should only the effective ids be the
            // caller's, so that all three can be set.
            let _ = setresuid(u, u, u);
            setresgid(self.gid, self.gid, self.gid)?;
            setresuid(self.uid, self.uid, self.uid)?;
        }
        Ok(())
    }
}

/// Blocks the signals a terminal or a timer can send, for the whole run:
/// a half-done change must not be cut short (the watcher undoes one only
/// once the TAP is gone).
fn block_signals() {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGTSTP,
        Signal::SIGTTIN,
        Signal::SIGTTOU,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
    ] {
        set.add(s);
    }
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
}

fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Sends the `tuntap up` reply datagram on fd 1.
fn send_reply(name: Option<&str>, text: &str, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let mut ifname = [0u8; IFNAMSIZ];
    let head: &[u8] = match name {
        Some(n) => {
            let b = n.as_bytes();
            let len = b.len().min(IFNAMSIZ - 1);
            ifname[..len].copy_from_slice(&b[..len]);
            &ifname
        }
        None => &[],
    };
    let body: Vec<u8> = if text.is_empty() {
        Vec::new()
    } else {
        text.bytes().chain([0]).collect()
    };
    let stdout = io::stdout();
    sysnet::send_with_fd(stdout.as_fd(), &[head, &body], fd).map(|_| ())
}

fn refuse(caller: &Caller, r: &Refusal) -> i32 {
    let _ = caller.drop_privileges();
    let result = match r {
        Refusal::Stderr(t) => {
            eprint!("{t}");
            Ok(())
        }
        Refusal::Stdout(t) => write_stdout(t.as_bytes()),
        Refusal::Framed(t) => {
            if nix::unistd::isatty(1).unwrap_or(false) {
                eprint!("{t}");
                Ok(())
            } else {
                write_stdout(&framed(t))
            }
        }
        Refusal::StatusFramed(t) => {
            let mut bytes = vec![0u8];
            bytes.extend(framed(t));
            write_stdout(&bytes)
        }
        Refusal::Datagram(t) => send_reply(None, t, None).or_else(|_| {
            eprint!("{t}");
            Ok(())
        }),
    };
    if let Err(e) = result {
        eprintln!("uml_net: writing the answer: {}", strerror(&e));
    }
    1
}

fn tuntap_up(caller: &Caller, gate: Option<Ipv4Addr>) -> i32 {
    let dir = Path::new(STATE_DIR);
    let setup = || -> Result<_, host::HostError> {
        caller.become_root().map_err(|err| host::HostError::Sys {
            op: "setresuid to root failed".into(),
            err,
        })?;
        let (fd, name) = host::create_tap(caller.uid.as_raw())?;
        if let Some(g) = gate {
            host::configure_gateway(&name, g)?;
        }
        let key = tapstate::register_up(dir, &name, caller.uid.as_raw())?;
        Ok((fd, name, key))
    };
    match setup() {
        Ok((fd, name, key)) => {
            let sent = caller
                .act_as_caller()
                .and_then(|()| send_reply(Some(&name), "", Some(fd.as_fd())));
            let Err(e) = sent else {
                return match caller.drop_privileges() {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("uml_net : dropping privileges failed: {}", strerror(&e));
                        1
                    }
                };
            };
            // The TAP was never handed out: undo the record and ip_forward.
            drop(fd);
            let undone = caller.become_root().is_ok() && tapstate::unregister(dir, key).is_ok();
            let _ = caller.drop_privileges();
            eprintln!("sendmsg: {}", strerror(&e));
            if !undone {
                eprintln!("uml_net : the TAP's watcher will restore ip_forward");
            }
            1
        }
        Err(e) => {
            let hint = if caller.root {
                ""
            } else {
                " (uml_net must be installed setuid root)"
            };
            refuse(
                caller,
                &Refusal::Datagram(format!("uml_net : tuntap up failed: {e}{hint}\n")),
            )
        }
    }
}

fn change(caller: &Caller, c: &request::AddrChange) -> i32 {
    let result = caller
        .become_root()
        .map_err(|err| host::HostError::Sys {
            op: "setresuid to root failed".into(),
            err,
        })
        .and_then(|()| host::check_owned_tap(&c.dev, caller.uid.as_raw()))
        .and_then(|()| tapstate::change(Path::new(STATE_DIR), c));
    if let Err(e) = caller.drop_privileges() {
        return refuse(
            caller,
            &Refusal::Framed(format!(
                "uml_net : dropping privileges failed: {}\n",
                strerror(&e)
            )),
        );
    }
    match result {
        Ok(()) => match write_stdout(&framed("")) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("write_output : {}", strerror(&e));
                1
            }
        },
        Err(e) => refuse(caller, &Refusal::Framed(format!("uml_net : {e}\n"))),
    }
}

/// Runs uml_net with `args` (without argv\[0\]); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    let caller = Caller::now();
    block_signals();
    match Request::parse(args) {
        Err(e) => refuse(&caller, &e.refusal()),
        Ok(Request::TuntapUp { gate }) => tuntap_up(&caller, gate),
        Ok(Request::Change(c)) => change(&caller, &c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_output_is_length_text_and_nul() {
        assert_eq!(framed(""), 0i32.to_ne_bytes().to_vec());
        let f = framed("hi\n");
        assert_eq!(&f[..4], &4i32.to_ne_bytes());
        assert_eq!(&f[4..], b"hi\n\0");
    }
}
