//! `port-helper` speaks the UML kernel's side of `port:` and `xterm`
//! consoles: it sends its standard input with its pid as the message
//! (what the kernel's `os_rcv_fd` reads) over the socket on descriptor 3 or
//! over `-uml-socket SOCKET`, then waits to be killed. Checked against a
//! stand-in for the kernel, and against Debian's `linux.uml` through its
//! `xterm` channel (the `port:` channel would need in.telnetd, which pulls
//! an inetd and a syslog daemon onto the machine).

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};

use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// Receives one message as the kernel does: an int (the helper's pid) and
/// one descriptor. Returns the pid and the (device, inode) of what the
/// descriptor refers to.
fn receive_like_the_kernel(socket: RawFd) -> (i32, (u64, u64)) {
    let mut pid = [0u8; 4];
    let mut iov = [IoSliceMut::new(&mut pid)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(socket, &mut iov, Some(&mut space), MsgFlags::empty())
        .expect("recvmsg from port-helper");
    assert_eq!(msg.bytes, 4, "the message is the helper's pid as an int");
    let fds: Vec<RawFd> = msg
        .cmsgs()
        .expect("control messages")
        .flat_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds,
            other => panic!("unexpected control message {other:?}"),
        })
        .collect();
    assert_eq!(fds.len(), 1, "one descriptor");
    let st = nix::sys::stat::fstat(fds[0]).expect("fstat the received descriptor");
    nix::unistd::close(fds[0]).unwrap();
    (i32::from_ne_bytes(pid), (st.st_dev, st.st_ino))
}

fn terminal_stand_in(dir: &std::path::Path) -> (std::fs::File, (u64, u64)) {
    let path = dir.join("tty");
    std::fs::write(&path, b"").unwrap();
    let st = nix::sys::stat::stat(&path).unwrap();
    (std::fs::File::open(&path).unwrap(), (st.st_dev, st.st_ino))
}

fn still_waiting(child: &mut Child) -> bool {
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.try_wait().unwrap().is_none()
}

#[test]
fn port_console_helper_sends_its_stdin_and_pid_over_descriptor_3_and_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (tty, id) = terminal_stand_in(dir.path());
    let (kernel, helper) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .unwrap();
    // An inheritable copy (no CLOEXEC) above 3, as the kernel's end of its
    // socket pair is; the shell moves it to descriptor 3 as port_pre_exec
    // does.
    let inheritable = nix::fcntl::fcntl(helper.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD(10))
        .expect("dup the helper's end");
    // bash: dash takes only one-digit descriptors in redirections.
    let mut child = Command::new("/bin/bash")
        .args([
            "-c",
            &format!("exec \"$0\" 3<&{inheritable} {inheritable}<&-"),
        ])
        .arg(common::bin("port-helper"))
        .stdin(tty)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    nix::unistd::close(inheritable).unwrap();
    drop(helper);
    let (pid, got) = receive_like_the_kernel(kernel.as_raw_fd());
    assert_eq!(
        u32::try_from(pid).unwrap(),
        child.id(),
        "pid in the message"
    );
    assert_eq!(
        got, id,
        "the descriptor sent is the helper's standard input"
    );
    assert!(
        still_waiting(&mut child),
        "port-helper exited instead of waiting"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn xterm_console_helper_sends_its_stdin_to_the_uml_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (tty, id) = terminal_stand_in(dir.path());
    let path = dir.path().join("xterm-pipe");
    let kernel = UnixDatagram::bind(&path).unwrap();
    let mut child = Command::new(common::bin("port-helper"))
        .arg("-uml-socket")
        .arg(&path)
        .stdin(tty)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (pid, got) = receive_like_the_kernel(kernel.as_raw_fd());
    assert_eq!(u32::try_from(pid).unwrap(), child.id());
    assert_eq!(got, id);
    assert!(
        still_waiting(&mut child),
        "port-helper exited instead of waiting"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn port_helper_outside_uml_says_why_in_one_line() {
    let helper = common::bin("port-helper");
    let out = common::run(
        "/bin/sh",
        [
            "-c",
            "exec \"$0\" 3<&- </dev/null",
            helper.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("port-helper: send the terminal on descriptor 3: ")
            && last.contains("run by the UML kernel only"),
        "{err}"
    );

    let out = common::umlkit("port-helper", ["-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        common::stderr(&out),
        "port-helper: -x: unknown argument (usage: port-helper [-uml-socket SOCKET])\n"
    );

    let out = common::umlkit(
        "port-helper",
        ["-uml-socket", dir_that_does_not_exist().as_str()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("connect to /nonexistent/umlkit/xterm-pipe: "));
}

fn dir_that_does_not_exist() -> String {
    "/nonexistent/umlkit/xterm-pipe".to_string()
}

/// The real kernel's `xterm` console: Debian's `linux.uml` runs the
/// terminal emulator (`xterm=` names a stand-in that gives our port-helper
/// a pty through script(1) instead of a window) with `port-helper
/// -uml-socket SOCKET`, receives the pty from it, and the guest's
/// `/dev/tty1` writes arrive on that pty.
#[test]
fn linux_uml_xterm_console_reaches_the_guest_through_our_port_helper() {
    let test = "linux_uml_xterm_console_reaches_the_guest_through_our_port_helper";
    if !common::have_peers(test, &["linux.uml", "busybox", "mke2fs", "script"]) {
        return;
    }
    let guest = common::uml::Guest::new(
        &common::uml::init_script("echo PORT-HELPER-REACHED-TTY > /dev/ttyS0\nsleep 1"),
        16,
    );
    let log = guest.path("terminal.log");
    let term = guest.path("fake-term");
    // Called as: fake-term -T TITLE -e /usr/lib/uml/port-helper -uml-socket SOCKET
    std::fs::write(
        &term,
        format!(
            "#!/bin/sh\nshift 4\nexec script -q -f -c \"exec {} $*\" {} >/dev/null\n",
            common::bin("port-helper").display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&term, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let mut cmd = Command::new(common::which("linux.uml").unwrap());
    cmd.current_dir(guest.dir.path())
        .args([
            "ubd0=root_fs",
            "root=/dev/ubda",
            "rw",
            "init=/init",
            "con=null",
            "con0=fd:0,fd:1",
            "ssl0=xterm",
            "mem=64M",
            common::uml::GLIBC_TUNABLES,
        ])
        .arg(format!("xterm={},-T,-e", term.display()))
        .arg(format!("uml_dir={}", guest.dir.path().display()))
        .env("DISPLAY", ":umlkit-test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    common::uml::apply_shim(&mut cmd);
    let boot = common::uml::run_with_limit(cmd, std::time::Duration::from_secs(60));
    assert!(
        boot.output.contains("GUEST-DONE"),
        "guest did not finish:\n{}",
        boot.output
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("-uml-socket ")
            && text
                .lines()
                .any(|l| l.trim_end() == "PORT-HELPER-REACHED-TTY"),
        "the guest's ttyS0 output did not reach the terminal; its log:\n{text}\nboot:\n{}",
        boot.output
    );
    assert!(
        !boot.output.contains("PORT-HELPER-REACHED-TTY"),
        "the ttyS0 output went to the kernel's console instead"
    );
}
