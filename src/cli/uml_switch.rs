//! `uml_switch`'s front end: its command line (spec §4.1): single-dash long words read left
//! to right, as the original's hand-written parser does. `-unix` takes a
//! second word (the data socket) only when `-compat-v0` came earlier.
//! `--help` is new.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::switch::daemon;
use crate::switch::vxlan;
pub use crate::switch::{PcapTarget, SwitchArgs, VdeArgs, VxlanArgs, DEFAULT_CTL, DEFAULT_DATA};

/// Every word [`parse`] takes as an option, in the original's spelling
/// (`--help` is new); its match arms are these constants, and
/// `tests/manpages.rs` checks uml_switch.1 documents each.
pub const OPTIONS: &[&str] = &[
    UNIX,
    HUB,
    TAP,
    COMPAT_V0,
    DAEMON,
    VDE,
    MODE,
    DIRMODE,
    PCAP,
    VXLAN,
    PEER,
    VXLAN_LOCAL,
    HELP,
];
const UNIX: &str = "-unix";
const HUB: &str = "-hub";
const TAP: &str = "-tap";
const COMPAT_V0: &str = "-compat-v0";
const DAEMON: &str = "-daemon";
const VDE: &str = "-vde";
const MODE: &str = "-mode";
const DIRMODE: &str = "-dirmode";
const PCAP: &str = "-pcap";
const VXLAN: &str = "-vxlan";
const PEER: &str = "-peer";
const VXLAN_LOCAL: &str = "-vxlan-local";
const HELP: &str = "--help";

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help`: print the help and exit 0.
    Help,
    /// Print the usage and exit 1.
    Usage,
    /// A bad value: print `uml_switch: <this>` and exit 1.
    Bad(String),
}

/// The original's usage text (stderr, exit 1).
pub fn usage(prog: &str) -> String {
    let tap = "[ -tap tap-device ]";
    format!(
        "Usage : {prog} [ -unix control-socket ] [ -hub ] {tap}\n\
         or : {prog} -compat-v0 [ -unix control-socket data-socket ] [ -hub ] {tap}\n"
    )
}

/// The `--help` text (the original's usage, which stays byte for byte,
/// then every option, the new ones included).
pub fn help(prog: &str) -> String {
    format!(
        "{}\nOptions:\n\
         \x20 -unix CONTROL [DATA]  control socket (default {DEFAULT_CTL}); DATA only after -compat-v0\n\
         \x20 -hub                  act as a hub: flood every frame to every port\n\
         \x20 -tap DEVICE           attach the TAP device DEVICE as a port (the host's uplink)\n\
         \x20 -compat-v0            protocol 0 clients: named data socket (default {DEFAULT_DATA})\n\
         \x20 -vde DIR              serve a VDE switch directory DIR (DIR/ctl) for VDE and classic clients\n\
         \x20 -mode MODE            with -vde: octal mode of DIR/ctl and the data sockets (default 600)\n\
         \x20 -dirmode MODE         with -vde: octal mode of DIR (default 2700, or derived from -mode)\n\
         \x20 -pcap FILE            write every frame to FILE as a pcap capture (- for stdout; the log then goes to stderr)\n\
         \x20 -vxlan VNI            join the LAN to VXLAN network VNI (RFC 7348) on the -peer hosts\n\
         \x20 -peer ADDR[:PORT]     a VXLAN peer (another switch, a Linux vxlan device); port 4789 by default; repeatable\n\
         \x20 -vxlan-local ADDR[:PORT]  local VXLAN address (default 0.0.0.0:4789, or [::]:4789 for IPv6 peers)\n\
         \x20 -daemon               detach into the background after set-up\n\
         \x20 --help                print this help and exit\n",
        usage(prog)
    )
}

/// Parses `args` (without argv\[0\]); `prog` is argv\[0\] for the notices.
pub fn parse(prog: &str, args: &[OsString]) -> Result<SwitchArgs, ArgsError> {
    let mut out = SwitchArgs {
        ctl: PathBuf::from(DEFAULT_CTL),
        data: None,
        hub: false,
        tap: None,
        daemon: false,
        notices: Vec::new(),
        vde: None,
        pcap: None,
        vxlan: None,
    };
    let (mut vni, mut peers, mut local) = (None, Vec::new(), None);
    let bad = |e: vxlan::AddrError| ArgsError::Bad(e.to_string());
    let mut unix = false;
    let (mut mode, mut dirmode) = (None, None);
    let octal = |opt: &str, v: Option<&OsString>| -> Result<Option<u32>, ArgsError> {
        let v = v.ok_or(ArgsError::Usage)?;
        match v.to_str().and_then(|s| u32::from_str_radix(s, 8).ok()) {
            Some(m) if m <= 0o7777 => Ok(Some(m)),
            _ => Err(ArgsError::Bad(format!(
                "{opt}: '{}' is not an octal mode",
                v.to_string_lossy()
            ))),
        }
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some(UNIX) => {
                unix = true;
                out.ctl = PathBuf::from(it.next().ok_or(ArgsError::Usage)?);
                if out.data.is_some() {
                    out.data = Some(PathBuf::from(it.next().ok_or(ArgsError::Usage)?));
                }
            }
            Some(TAP) => {
                out.tap = Some(
                    it.next()
                        .ok_or(ArgsError::Usage)?
                        .to_string_lossy()
                        .into_owned(),
                )
            }
            Some(HUB) => {
                out.notices
                    .push(format!("{prog} will be a hub instead of a switch"));
                out.hub = true;
            }
            Some(COMPAT_V0) => {
                out.notices
                    .push("Control protocol 0 compatibility".to_string());
                out.data = Some(PathBuf::from(DEFAULT_DATA));
            }
            Some(DAEMON) => out.daemon = true,
            Some(VDE) => {
                let dir = PathBuf::from(it.next().ok_or(ArgsError::Usage)?);
                out.ctl = dir.join("ctl");
                out.vde = Some(VdeArgs {
                    dir,
                    mode: None,
                    dirmode: None,
                });
            }
            Some(PCAP) => {
                let f = it.next().ok_or(ArgsError::Usage)?;
                out.pcap = Some(if f == "-" {
                    PcapTarget::Stdout
                } else {
                    PcapTarget::File(PathBuf::from(f))
                });
            }
            Some(VXLAN) => {
                let v = it.next().ok_or(ArgsError::Usage)?;
                vni = Some(vxlan::parse_vni(&v.to_string_lossy()).map_err(bad)?);
            }
            Some(PEER) => {
                let v = it.next().ok_or(ArgsError::Usage)?;
                peers.push(vxlan::parse_addr(&v.to_string_lossy()).map_err(bad)?);
            }
            Some(VXLAN_LOCAL) => {
                let v = it.next().ok_or(ArgsError::Usage)?;
                local = Some(vxlan::parse_addr(&v.to_string_lossy()).map_err(bad)?);
            }
            Some(MODE) => mode = octal("-mode", it.next())?,
            Some(DIRMODE) => dirmode = octal("-dirmode", it.next())?,
            Some(HELP) => return Err(ArgsError::Help),
            _ => return Err(ArgsError::Usage),
        }
    }
    match vni {
        Some(vni) if !peers.is_empty() => {
            let any: std::net::IpAddr = if peers.iter().all(|p| p.is_ipv6()) {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            };
            out.vxlan = Some(VxlanArgs {
                vni,
                peers,
                local: local.unwrap_or(std::net::SocketAddr::new(any, vxlan::DEFAULT_PORT)),
            });
        }
        Some(_) => return Err(ArgsError::Bad("-vxlan: needs at least one -peer".into())),
        None if !peers.is_empty() || local.is_some() => return Err(ArgsError::Usage),
        None => {}
    }
    match &mut out.vde {
        Some(_) if unix || out.data.is_some() => return Err(ArgsError::Usage),
        Some(v) => {
            v.mode = mode;
            v.dirmode = dirmode;
        }
        None if mode.is_some() || dirmode.is_some() => return Err(ArgsError::Usage),
        None => {}
    }
    Ok(out)
}

/// Runs `uml_switch` with the process's arguments (see man/uml_switch.1).
pub fn main() -> ExitCode {
    let (prog, rest) = super::program_and_args("uml_switch");
    let args = match parse(&prog, &rest) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            print!("{}", help(&prog));
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Usage) => {
            eprint!("{}", usage(&prog));
            return ExitCode::from(1);
        }
        Err(ArgsError::Bad(why)) => {
            eprintln!("uml_switch: {why}");
            return ExitCode::from(1);
        }
    };
    let result = daemon::Daemon::start(&args, &prog).and_then(|mut d| d.run());
    match result {
        Ok(daemon::Exit::Eof) => ExitCode::SUCCESS,
        Ok(daemon::Exit::Signal(sig)) => {
            daemon::die_by(sig);
            ExitCode::from(128 + sig as u8)
        }
        Err(e) => super::report("uml_switch", &anyhow::Error::new(e), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<SwitchArgs, ArgsError> {
        parse(
            "uml_switch",
            &args.iter().map(OsString::from).collect::<Vec<_>>(),
        )
    }

    #[test]
    fn defaults_are_the_originals() {
        let a = p(&[]).unwrap();
        assert_eq!(a.ctl, PathBuf::from("/tmp/uml.ctl"));
        assert_eq!(a.data, None);
        assert!(!a.hub && !a.daemon && a.tap.is_none());
    }

    #[test]
    fn unix_takes_a_data_socket_only_after_compat_v0() {
        let a = p(&["-unix", "/x/ctl", "-hub", "-tap", "tap0", "-daemon"]).unwrap();
        assert_eq!(a.ctl, PathBuf::from("/x/ctl"));
        assert!(a.hub && a.daemon);
        assert_eq!(a.tap.as_deref(), Some("tap0"));
        assert_eq!(
            a.notices,
            vec!["uml_switch will be a hub instead of a switch".to_string()]
        );
        let b = p(&["-compat-v0", "-unix", "/x/ctl", "/x/data"]).unwrap();
        assert_eq!(b.data, Some(PathBuf::from("/x/data")));
        assert_eq!(p(&["-compat-v0", "-unix", "/x/ctl"]), Err(ArgsError::Usage));
        assert_eq!(
            p(&["-unix", "/x/ctl", "-compat-v0"]).unwrap().data,
            Some(PathBuf::from("/tmp/uml.data"))
        );
    }

    #[test]
    fn vde_takes_a_directory_and_modes() {
        let a = p(&["-vde", "/x/sw", "-mode", "666", "-hub"]).unwrap();
        assert_eq!(a.ctl, PathBuf::from("/x/sw/ctl"));
        assert_eq!(
            a.vde,
            Some(VdeArgs {
                dir: PathBuf::from("/x/sw"),
                mode: Some(0o666),
                dirmode: None
            })
        );
        assert_eq!(p(&["-mode", "600"]), Err(ArgsError::Usage));
        assert_eq!(p(&["-pcap", "-"]).unwrap().pcap, Some(PcapTarget::Stdout));
        assert_eq!(
            p(&["-pcap", "x.pcap"]).unwrap().pcap,
            Some(PcapTarget::File("x.pcap".into()))
        );
        assert_eq!(p(&["-pcap"]), Err(ArgsError::Usage));
        assert_eq!(p(&["-vde", "/x", "-unix", "/y"]), Err(ArgsError::Usage));
        assert_eq!(p(&["-compat-v0", "-vde", "/x"]), Err(ArgsError::Usage));
        assert_eq!(
            p(&["-vde", "/x", "-dirmode", "9"]),
            Err(ArgsError::Bad("-dirmode: '9' is not an octal mode".into()))
        );
    }

    #[test]
    fn vxlan_takes_a_vni_peers_and_a_local_address() {
        let a = p(&[
            "-vxlan",
            "42",
            "-peer",
            "10.0.0.2",
            "-peer",
            "10.0.0.3:5000",
        ])
        .unwrap();
        let v = a.vxlan.unwrap();
        assert_eq!(v.vni, 42);
        assert_eq!(
            v.peers,
            vec![
                "10.0.0.2:4789".parse().unwrap(),
                "10.0.0.3:5000".parse().unwrap()
            ]
        );
        assert_eq!(v.local, "0.0.0.0:4789".parse().unwrap());
        let b = p(&[
            "-vxlan",
            "1",
            "-peer",
            "[::1]",
            "-vxlan-local",
            "[::1]:4790",
        ])
        .unwrap();
        assert_eq!(b.vxlan.unwrap().local, "[::1]:4790".parse().unwrap());
        assert!(matches!(p(&["-vxlan", "42"]), Err(ArgsError::Bad(_))));
        assert_eq!(p(&["-peer", "10.0.0.2"]), Err(ArgsError::Usage));
        assert_eq!(
            p(&["-vxlan", "16777216", "-peer", "10.0.0.2"]),
            Err(ArgsError::Bad(
                "'16777216' is not a VNI (0 to 16777215)".into()
            ))
        );
        assert!(matches!(
            p(&["-vxlan", "1", "-peer", "nohost"]),
            Err(ArgsError::Bad(_))
        ));
    }

    #[test]
    fn anything_else_is_usage() {
        assert_eq!(p(&["-h"]), Err(ArgsError::Usage));
        assert_eq!(p(&["-unix"]), Err(ArgsError::Usage));
        assert_eq!(p(&["-tap"]), Err(ArgsError::Usage));
        assert_eq!(p(&["--unix", "x"]), Err(ArgsError::Usage));
        assert_eq!(p(&["--help"]), Err(ArgsError::Help));
    }
}
