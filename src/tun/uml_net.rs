//! `uml_net`, the setuid-root helper the UML kernel runs to get a TAP
//! device (`eth0=tuntap,,,GATEWAY`) and to route guest addresses to it
//! (spec §2). It never runs another program and never reads the
//! environment; it keeps root only for the ioctls and `/proc/sys` writes
//! and returns to the caller's ids before answering.
//!
//! Answers go to fd 1 in the form the kernel reads: for `tuntap up` one
//! datagram carrying the 16-byte interface name, the message text and the
//! TAP descriptor (`SCM_RIGHTS`); for `add`/`del` a native-endian length
//! and the text with its NUL. Every failure also exits with status 1.

use super::hostnet;
use super::uml_net_args::{self, Refusal, Request};
use crate::sys::net::{self as sysnet, strerror, IFNAMSIZ};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};

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

/// Drops to the real user and group for good (a no-op when not setuid).
fn drop_privileges() -> io::Result<()> {
    use nix::unistd::{getgid, getuid, setresgid, setresuid};
    let (uid, gid) = (getuid(), getgid());
    setresgid(gid, gid, gid)?;
    setresuid(uid, uid, uid)?;
    Ok(())
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

fn refuse(r: &Refusal) -> i32 {
    let _ = drop_privileges();
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

fn tuntap_up(gate: Option<Ipv4Addr>) -> i32 {
    let caller = nix::unistd::getuid().as_raw();
    let setup = || -> Result<_, hostnet::HostError> {
        let (fd, name) = hostnet::create_tap(caller)?;
        if let Some(g) = gate {
            hostnet::configure_gateway(&name, g)?;
        }
        hostnet::enable_forwarding()?;
        Ok((fd, name))
    };
    let result = setup();
    if let Err(e) = drop_privileges() {
        return refuse(&Refusal::Datagram(format!(
            "uml_net : dropping privileges failed: {}\n",
            strerror(&e)
        )));
    }
    match result {
        Ok((fd, name)) => match send_reply(Some(&name), "", Some(fd.as_fd())) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("sendmsg: {}", strerror(&e));
                1
            }
        },
        Err(e) => {
            let hint = if nix::unistd::geteuid().is_root() {
                ""
            } else {
                " (uml_net must be installed setuid root)"
            };
            refuse(&Refusal::Datagram(format!(
                "uml_net : tuntap up failed: {e}{hint}\n"
            )))
        }
    }
}

fn change(c: &uml_net_args::AddrChange) -> i32 {
    let caller = nix::unistd::getuid().as_raw();
    let result = hostnet::check_owned_tap(&c.dev, caller).and_then(|()| hostnet::change_addr(c));
    if let Err(e) = drop_privileges() {
        return refuse(&Refusal::Framed(format!(
            "uml_net : dropping privileges failed: {}\n",
            strerror(&e)
        )));
    }
    match result {
        Ok(()) => match write_stdout(&framed("")) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("write_output : {}", strerror(&e));
                1
            }
        },
        Err(e) => refuse(&Refusal::Framed(format!("uml_net : {e}\n"))),
    }
}

/// Runs uml_net with `args` (without argv\[0\]); returns the exit status.
pub fn run(args: &[String]) -> i32 {
    match uml_net_args::parse(args) {
        Err(r) => refuse(&r),
        Ok(Request::TuntapUp { gate }) => tuntap_up(gate),
        Ok(Request::Change(c)) => change(&c),
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
