//! `port-helper`'s front end. The UML kernel runs it for a `port:` console
//! as the login program of `in.telnetd -L` (with the kernel's end of a
//! socket pair as descriptor 3), and for an `xterm` console inside the
//! terminal emulator (`-uml-socket NAME`, the kernel's datagram socket). It
//! sends its standard input, the terminal, to the kernel over that socket
//! (`SCM_RIGHTS`, with its pid as the message, which the kernel's
//! `os_rcv_fd` reads), gives the terminal up as its controlling terminal,
//! and waits until the kernel kills it when the console closes, so that
//! telnetd or the emulator keeps the connection open meanwhile.

use std::ffi::OsString;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use nix::sys::signal::Signal;
use nix::sys::socket::{
    bind, connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
    UnixAddr,
};

use crate::sys::tty;

/// The descriptor the kernel's `port_pre_exec` leaves its socket on.
pub const KERNEL_SOCKET_FD: RawFd = 3;

/// Where the terminal goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The inherited stream socket on descriptor 3 (`port:` consoles).
    Inherited,
    /// A datagram socket the kernel bound at this path (`xterm` consoles).
    UmlSocket(PathBuf),
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Send the terminal to `Target` and wait.
    Run(Target),
    /// `--help`.
    Help,
}

/// The help text (`--help`, stdout).
pub const HELP: &str = "\
Usage: port-helper [-uml-socket SOCKET]
Hands this program's standard input (its terminal) to a User-Mode Linux
kernel, for the kernel's port: and xterm consoles; the kernel runs it.

  -uml-socket SOCKET  send to the kernel's datagram socket SOCKET (xterm
                      consoles) instead of the socket on descriptor 3
                      (port: consoles, through in.telnetd -L)
  --help              print this help and exit
";

/// Parses the arguments after argv\[0\].
pub fn parse(args: &[OsString]) -> Result<Invocation, String> {
    match args {
        [] => Ok(Invocation::Run(Target::Inherited)),
        [flag] if flag == "--help" => Ok(Invocation::Help),
        [flag, path] if flag == "-uml-socket" => {
            Ok(Invocation::Run(Target::UmlSocket(PathBuf::from(path))))
        }
        [flag] if flag == "-uml-socket" => Err("-uml-socket: needs the socket's path".into()),
        [first, ..] => Err(format!(
            "{}: unknown argument (usage: port-helper [-uml-socket SOCKET])",
            first.to_string_lossy()
        )),
    }
}

/// The body of `port-helper`.
pub fn main() -> ExitCode {
    let (_, args) = super::program_and_args("port-helper");
    let target = match parse(&args) {
        Ok(Invocation::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(target)) => target,
        Err(e) => {
            eprintln!("port-helper: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&target) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("port-helper: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends the terminal, then waits for the kernel's SIGKILL.
fn run(target: &Target) -> Result<std::convert::Infallible, String> {
    // telnetd hangs up the terminal's session when we give it up; the
    // terminal must outlive that.
    tty::ignore_signal(Signal::SIGHUP).map_err(|e| format!("ignore SIGHUP: {e}"))?;
    let stdin = std::io::stdin();
    if let Err(e) = tty::give_up_controlling_tty(stdin.as_fd()) {
        // As the original: worth a line, not fatal (the kernel can still
        // use the terminal).
        eprintln!(
            "port-helper: TIOCNOTTY on standard input: {e} (is it the terminal of in.telnetd or the xterm?)"
        );
    }
    let opened;
    let socket = match target {
        Target::Inherited => KERNEL_SOCKET_FD,
        Target::UmlSocket(path) => {
            opened = open_uml_socket(path)?;
            opened.as_raw_fd()
        }
    };
    let pid = std::process::id().to_ne_bytes();
    let fds = [stdin.as_fd().as_raw_fd()];
    sendmsg::<UnixAddr>(
        socket,
        &[IoSlice::new(&pid)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| match target {
        Target::Inherited => {
            format!("send the terminal on descriptor 3: {e} (run by the UML kernel only)")
        }
        Target::UmlSocket(path) => format!("send the terminal to {}: {e}", path.display()),
    })?;
    loop {
        nix::unistd::pause();
    }
}

/// A datagram socket bound to an abstract name made from our pid (the
/// kernel's xterm channel expects a bound sender) and connected to `path`.
fn open_uml_socket(path: &std::path::Path) -> Result<OwnedFd, String> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    let name = format!("{:5}", std::process::id());
    let local = UnixAddr::new_abstract(name.as_bytes()).map_err(|e| format!("bind: {e}"))?;
    bind(fd.as_raw_fd(), &local).map_err(|e| format!("bind: {e}"))?;
    let remote = UnixAddr::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
    connect(fd.as_raw_fd(), &remote).map_err(|e| format!("connect to {}: {e}", path.display()))?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn no_arguments_mean_the_socket_on_descriptor_3() {
        assert_eq!(p(&[]), Ok(Invocation::Run(Target::Inherited)));
    }

    #[test]
    fn uml_socket_names_the_kernels_socket() {
        assert_eq!(
            p(&["-uml-socket", "/tmp/xterm-pipeXXXX"]),
            Ok(Invocation::Run(Target::UmlSocket(
                "/tmp/xterm-pipeXXXX".into()
            )))
        );
    }

    #[test]
    fn a_missing_path_or_a_stray_argument_is_refused() {
        assert!(p(&["-uml-socket"])
            .unwrap_err()
            .contains("needs the socket's path"));
        assert!(p(&["-x"]).unwrap_err().contains("-x: unknown argument"));
        assert!(p(&["-uml-socket", "a", "b"]).is_err());
    }
}
