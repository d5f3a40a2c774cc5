//! The server's command table (Linux 6.1 `mconsole_user.c`, spec §4): which
//! command a request runs, found by prefix in table order, and the fixed
//! texts a server answers with. Pure, for the guest kernel to reuse.

/// A command the 6.1 server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `version`: the kernel's utsname.
    Version,
    /// `help`: [`HELP_TEXT`].
    Help,
    /// `halt`: reply, then halt.
    Halt,
    /// `reboot`: reply, then restart.
    Reboot,
    /// `config <dev>[=<spec>]`: add or query a device.
    Config,
    /// `remove <dev>`: remove a device.
    Remove,
    /// `sysrq <letter>`: run a SysRq action, streaming its output.
    Sysrq,
    /// `cad`: Ctrl-Alt-Del.
    Cad,
    /// `stop`: freeze the guest, answering only mconsole until `go`.
    Stop,
    /// `go`: resume after `stop`.
    Go,
    /// `log <text>`: printk the text.
    Log,
    /// `proc <file>`: the contents of `/proc/<file>`.
    Proc,
    /// `stack <pid>`: a task's stack.
    Stack,
}

/// Whether a command runs at once in the interrupt handler or is queued
/// to run in process context (spec §4, "Context").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Run directly when the request arrives.
    Interrupt,
    /// Queued to a work queue.
    Process,
}

/// The table in match order: name, command, context.
pub const TABLE: [(&str, Command, Context); 13] = [
    ("version", Command::Version, Context::Process),
    ("help", Command::Help, Context::Interrupt),
    ("halt", Command::Halt, Context::Process),
    ("reboot", Command::Reboot, Context::Process),
    ("config", Command::Config, Context::Process),
    ("remove", Command::Remove, Context::Process),
    ("sysrq", Command::Sysrq, Context::Interrupt),
    ("cad", Command::Cad, Context::Interrupt),
    ("stop", Command::Stop, Context::Process),
    ("go", Command::Go, Context::Interrupt),
    ("log", Command::Log, Context::Interrupt),
    ("proc", Command::Proc, Context::Process),
    ("stack", Command::Stack, Context::Interrupt),
];

/// The reply text to a command no entry matches (err = 1).
pub const UNKNOWN_COMMAND: &str = "Unknown command";
/// The reply to `len >= 512` (err = 1; the request is dropped).
pub const REQUEST_TOO_LARGE: &str = "Request too large";
/// The reply to a version other than 2 (err = 1; the command still runs).
pub const ONLY_VERSION_2: &str = "This driver only supports version 2 clients";

/// The 6.1 `help` reply, byte for byte (trailing spaces included).
pub const HELP_TEXT: &str = "Commands: \n\
    \x20   version - Get kernel version \n\
    \x20   help - Print this message \n\
    \x20   halt - Halt UML \n\
    \x20   reboot - Reboot UML \n\
    \x20   config <dev>=<config> - Add a new device to UML;  \n\
    \tsame syntax as command line \n\
    \x20   config <dev> - Query the configuration of a device \n\
    \x20   remove <dev> - Remove a device from UML \n\
    \x20   sysrq <letter> - Performs the SysRq action controlled by the letter \n\
    \x20   cad - invoke the Ctrl-Alt-Del handler \n\
    \x20   stop - pause the UML; it will do nothing until it receives a 'go' \n\
    \x20   go - continue the UML after a 'stop' \n\
    \x20   log <string> - make UML enter <string> into the kernel log\n\
    \x20   proc <file> - returns the contents of the UML's /proc/<file>\n\
    \x20   stack <pid> - returns the stack of the specified pid\n";

/// The entry a command text selects: the first whose name is a prefix of
/// it (`strncmp(data, name, strlen(name))`), so `haltnow` is `halt`.
pub fn lookup(command: &[u8]) -> Option<(Command, Context)> {
    TABLE
        .iter()
        .find(|(name, _, _)| command.starts_with(name.as_bytes()))
        .map(|&(_, cmd, ctx)| (cmd, ctx))
}

/// The argument of a command: the text after its name, leading spaces
/// and tabs skipped (what the kernel's handlers do before parsing).
pub fn argument(command: &[u8]) -> &[u8] {
    let name_len = TABLE
        .iter()
        .find(|(name, _, _)| command.starts_with(name.as_bytes()))
        .map_or(0, |(name, _, _)| name.len());
    let rest = &command[name_len..];
    let skip = rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    &rest[skip..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_matches_by_prefix_in_table_order() {
        assert_eq!(
            lookup(b"version"),
            Some((Command::Version, Context::Process))
        );
        assert_eq!(lookup(b"versionXYZ").map(|c| c.0), Some(Command::Version));
        assert_eq!(lookup(b"haltnow").map(|c| c.0), Some(Command::Halt));
        assert_eq!(lookup(b"go"), Some((Command::Go, Context::Interrupt)));
        assert_eq!(lookup(b"foo"), None);
        assert_eq!(lookup(b""), None);
        assert_eq!(lookup(b"ver"), None);
    }

    #[test]
    fn argument_skips_the_name_and_blanks() {
        assert_eq!(argument(b"proc  meminfo"), b"meminfo");
        assert_eq!(argument(b"sysrq\tm"), b"m");
        assert_eq!(argument(b"version"), b"");
        assert_eq!(argument(b"bogus x"), b"bogus x");
    }

    #[test]
    fn help_text_lists_every_command_of_the_table() {
        for (name, _, _) in TABLE {
            assert!(HELP_TEXT.contains(&format!("    {name} ")), "{name}");
        }
        assert!(HELP_TEXT.ends_with("pid\n"));
    }
}
