//! `tunctl`'s front end: its command line, parsed the way POSIX `getopt` with the option
//! string `bd:f:t:u:g:` does (spec §1.1): options may be clustered (`-bt
//! tap0`), an argument may be glued on (`-ttap0`), `--` ends the options,
//! and glibc's argument permutation means non-options may come first. Only
//! `--help` is new.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

pub use crate::net::tunctl::{TunctlArgs, DEFAULT_CLONE};

/// The original's getopt option string (spec §1.1): one letter per option,
/// `:` after those that take a value. [`parse`] knows its options from it,
/// and `tests/manpages.rs` checks tunctl.1 documents each.
pub const OPTSTRING: &str = "bd:f:t:u:g:";

/// The long options: only `--help`, which is new.
pub const LONG_OPTIONS: &[&str] = &["--help"];

/// Whether `opt` is an option of [`OPTSTRING`] and, if so, whether it takes
/// a value.
fn takes_value(opt: u8) -> Option<bool> {
    let spec = OPTSTRING.as_bytes();
    let at = spec.iter().position(|&c| c == opt && c != b':')?;
    Some(spec.get(at + 1) == Some(&b':'))
}

/// Why the command line was refused. Every case ends with the usage text
/// and exit status 1, as in the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help`: print the help on stdout and exit 0.
    Help,
    /// A getopt complaint, printed as `<argv0>: <text>` before the usage.
    Getopt(String),
    /// A line printed as is before the usage.
    Message(String),
    /// Only the usage.
    Usage,
}

/// The usage text of the original (stderr, exit 1); `prog` is argv\[0\].
pub fn usage(prog: &str) -> String {
    format!(
        "Create: {prog} [-b] [-u owner] [-g group] [-t device-name] [-f tun-clone-device]\n\
         Delete: {prog} -d device-name [-f tun-clone-device]\n\n\
         The default tun clone device is /dev/net/tun - some systems use\n\
         /dev/misc/net/tun instead\n\n\
         -b will result in brief output (just the device name)\n"
    )
}

/// The `--help` text: the usage plus one line per option.
pub fn help(prog: &str) -> String {
    format!(
        "{}\nOptions:\n\
         \x20 -b             brief output: print only the interface name\n\
         \x20 -t NAME        interface name (may contain %d; default: the kernel picks tapN)\n\
         \x20 -u OWNER       owning user, by name or number (default: the effective uid)\n\
         \x20 -g GROUP       owning group, by name or number\n\
         \x20 -d NAME        make NAME non-persistent, which deletes it\n\
         \x20 -f PATH        the TUN/TAP clone device (default {DEFAULT_CLONE})\n\
         \x20 --help         print this help and exit\n",
        usage(prog)
    )
}

/// Parses a number the way `strtol(s, &end, 0)` does with a full match:
/// `0x` hex, leading `0` octal, else decimal.
pub fn parse_c_number(s: &str) -> Option<u32> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // `u32::MAX` is (uid_t)-1, "no owner" to the kernel: refuse it.
    u32::from_str_radix(digits, radix)
        .ok()
        .filter(|&v| v != u32::MAX)
}

fn lookup_user(s: &str) -> Option<u32> {
    match nix::unistd::User::from_name(s) {
        Ok(Some(u)) => Some(u.uid.as_raw()),
        _ => parse_c_number(s),
    }
}

fn lookup_group(s: &str) -> Option<u32> {
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Some(g.gid.as_raw()),
        _ => parse_c_number(s),
    }
}

/// Parses `args` (without argv\[0\]).
pub fn parse(args: &[OsString]) -> Result<TunctlArgs, ArgsError> {
    let mut out = TunctlArgs {
        brief: false,
        delete: false,
        name: Vec::new(),
        clone: PathBuf::from(DEFAULT_CLONE),
        owner: None,
        group: None,
    };
    let mut operands = 0usize;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            operands += args.len() - i;
            break;
        }
        if arg == LONG_OPTIONS[0].as_bytes() {
            return Err(ArgsError::Help);
        }
        if arg.len() < 2 || arg[0] != b'-' {
            operands += 1;
            continue;
        }
        let mut j = 1;
        while j < arg.len() {
            let opt = arg[j];
            j += 1;
            match takes_value(opt) {
                Some(false) => out.brief = true, // `b`, the only flag
                Some(true) => {
                    let value: Vec<u8> = if j < arg.len() {
                        let v = arg[j..].to_vec();
                        j = arg.len();
                        v
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].as_bytes().to_vec()
                    } else {
                        return Err(ArgsError::Getopt(format!(
                            "option requires an argument -- '{}'",
                            char::from(opt)
                        )));
                    };
                    let text = String::from_utf8_lossy(&value).into_owned();
                    match opt {
                        b'd' => {
                            out.delete = true;
                            out.name = value;
                        }
                        b't' => out.name = value,
                        b'f' => out.clone = PathBuf::from(std::ffi::OsStr::from_bytes(&value)),
                        b'u' => {
                            out.owner = Some(lookup_user(&text).ok_or_else(|| {
                                ArgsError::Message(format!(
                                    "'{text}' is neither a username nor a numeric uid."
                                ))
                            })?)
                        }
                        _ => {
                            out.group = Some(lookup_group(&text).ok_or_else(|| {
                                ArgsError::Message(format!(
                                    "'{text}' is neither a groupname nor a numeric group."
                                ))
                            })?)
                        }
                    }
                }
                None => {
                    return Err(ArgsError::Getopt(format!(
                        "invalid option -- '{}'",
                        String::from_utf8_lossy(&[opt])
                    )))
                }
            }
        }
    }
    if operands > 0 {
        return Err(ArgsError::Usage);
    }
    Ok(out)
}

/// Runs `tunctl` with the process's arguments (see man/tunctl.1).
pub fn main() -> ExitCode {
    let (prog, rest) = super::program_and_args("tunctl");
    let args = match parse(&rest) {
        Ok(a) => a,
        Err(ArgsError::Help) => {
            print!("{}", help(&prog));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            match e {
                ArgsError::Getopt(m) => eprintln!("{prog}: {m}"),
                ArgsError::Message(m) => eprintln!("{m}"),
                _ => {}
            }
            eprint!("{}", usage(&prog));
            return ExitCode::from(1);
        }
    };
    match crate::net::tunctl::run(&args, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::report("tunctl", &anyhow::Error::new(e), 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<TunctlArgs, ArgsError> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn clustered_options_and_glued_arguments_parse_like_getopt() {
        let a = p(&["-bttap7", "-u", "0x10", "-g010"]).unwrap();
        assert!(a.brief && !a.delete);
        assert_eq!(a.name, b"tap7");
        assert_eq!(a.owner, Some(16));
        assert_eq!(a.group, Some(8));
    }

    #[test]
    fn delete_wins_wherever_it_appears_but_the_last_name_is_used() {
        let a = p(&["-d", "one", "-t", "two"]).unwrap();
        assert!(a.delete);
        assert_eq!(a.name, b"two");
    }

    #[test]
    fn missing_argument_unknown_option_and_operands_are_refused() {
        assert_eq!(
            p(&["-t"]),
            Err(ArgsError::Getopt(
                "option requires an argument -- 't'".into()
            ))
        );
        assert_eq!(
            p(&["-h"]),
            Err(ArgsError::Getopt("invalid option -- 'h'".into()))
        );
        assert_eq!(p(&["extra"]), Err(ArgsError::Usage));
        assert_eq!(p(&["--", "-b"]), Err(ArgsError::Usage));
        assert_eq!(p(&["--help"]), Err(ArgsError::Help));
    }

    #[test]
    fn unknown_user_and_group_get_the_original_messages() {
        assert_eq!(
            p(&["-u", "nosuchuserxyz"]),
            Err(ArgsError::Message(
                "'nosuchuserxyz' is neither a username nor a numeric uid.".into()
            ))
        );
        assert_eq!(
            p(&["-g", "nosuchgrp"]),
            Err(ArgsError::Message(
                "'nosuchgrp' is neither a groupname nor a numeric group.".into()
            ))
        );
    }

    #[test]
    fn c_numbers_follow_strtol_base_detection() {
        assert_eq!(parse_c_number("0"), Some(0));
        assert_eq!(parse_c_number("010"), Some(8));
        assert_eq!(parse_c_number("0x1f"), Some(31));
        assert_eq!(parse_c_number("12"), Some(12));
        assert_eq!(parse_c_number("09"), None);
        assert_eq!(parse_c_number("12a"), None);
        assert_eq!(parse_c_number(""), None);
        assert_eq!(parse_c_number("4294967295"), None);
    }
}
