//! The UML kernel command line (spec kernel-cmdline.md §1-§5, §8), parsed
//! in the kernel's two passes:
//!
//! ```text
//!   host argv ── UML pass (prefix keys: mem=, umid=, root=, quiet, --help ...)
//!                  │  joined with spaces, umid= dropped, root=98:0 and
//!                  │  console=tty0 appended when missing
//!                  ▼
//!             kernel line ── generic pass (words: ubd*, con*, ssl*, eth*,
//!                  │         root=, rw, init= ... consumed)
//!                  ▼
//!             init's argv (words without '=') and environment (NAME=VALUE)
//! ```
//!
//! Pure: no file is opened and nothing is printed. Malformed options are
//! errors carrying the kernel's message, so the monitor refuses them before
//! anything starts.

pub mod chan;
pub mod num;
pub mod ubd;
pub mod words;

use self::chan::{ChanError, ChannelPair, LineSetting, MAX_CONSOLES, MAX_SERIALS};
use self::num::{memparse, parse_ulong};
use self::ubd::{UbdConfig, UbdError, UbdOption, MAX_DEV};
use self::words::Word;

/// `COMMAND_LINE_SIZE` of UML.
pub const COMMAND_LINE_SIZE: usize = 4096;
/// The most init arguments and environment entries (Debian's
/// `CONFIG_INIT_ENV_ARG_LIMIT`).
pub const MAX_INIT_ARGS: usize = 128;
/// Default guest memory.
pub const DEFAULT_MEM: u64 = 64 << 20;
/// The least `mem=` accepted. linux.uml refuses less than its own image
/// (about 16.5 MiB) with the same message.
pub const MIN_MEM: u64 = 17 << 20;

/// Every option name this parser gives a meaning of its own, spelled as
/// `man/linux.1` spells it (`=` ends a name that takes a value; `ubd`,
/// `con`, `ssl` and `eth` take a unit and flags after the name). A word
/// not claimed here goes to init (spec §1.3). `tests/manpages.rs` checks
/// each is in the page, and the unit tests that each is claimed.
pub const OPTIONS: &[&str] = &[
    // The UML pass (spec §1.2): the host argv before the kernel line.
    "--help",
    "--version",
    "--showconfig",
    "mem=",
    "umid=",
    "uml_dir=",
    "hostfs=",
    "quiet",
    "noreboot",
    // The generic pass: the `__setup` handlers of UML's drivers.
    "ubd",
    "udb",
    "fake_ide",
    "vec",
    "stderr=",
    "con",
    "ssl",
    "ssl-non-raw",
    "eth",
    "mconsole=",
    "umlkit.nested_userns",
    // Kernel parameters (spec §1.3): CONSUMED_FLAGS and CONSUMED_VALUES.
    "rw",
    "ro",
    "rootwait",
    "debug",
    "root=",
    "rootfstype=",
    "rootdelay=",
    "init=",
    "rdinit=",
    "console=",
    "loglevel=",
    "initrd=",
    "panic=",
];

/// What the host argv asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `--help`: print [`crate::cli::linux::help_text`], exit 0.
    Help,
    /// `--version`: print the version, exit 0.
    Version,
    /// `--showconfig`: print [`crate::cli::linux::SHOWCONFIG`], exit 0.
    ShowConfig,
    /// Boot a guest.
    Boot(Box<CmdLine>),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLine {
    /// `ubdN=` devices by unit.
    pub disks: [Option<UbdConfig>; MAX_DEV],
    /// `ubd=sync`.
    pub ubd_sync_all: bool,
    /// `root=` as given (default `98:0`).
    pub root: String,
    /// `rw` (the last of `rw`/`ro` wins; read-only by default).
    pub read_write: bool,
    /// `init=`.
    pub init: Option<String>,
    /// `mem=` in bytes.
    pub mem: u64,
    /// `umid=` (the first valid one).
    pub umid: Option<String>,
    /// `uml_dir=`.
    pub uml_dir: Option<String>,
    /// Consoles `tty0`..`tty15`: `None` = no device.
    pub consoles: Vec<Option<ChannelPair>>,
    /// Serial lines set with `ssl=`/`sslN=` (unset ones keep the default
    /// `pty`, which cannot work on modern hosts, so they are left out).
    pub serials: Vec<Option<ChannelPair>>,
    /// `ssl-non-raw`.
    pub ssl_non_raw: bool,
    /// `ethN=` settings: unit and the text after `=`.
    pub eths: Vec<(usize, String)>,
    /// `vecN:` settings: unit and the text after `:` (the options, parsed
    /// when the device is opened, as the kernel does in `vector_init`).
    pub vecs: Vec<(usize, String)>,
    /// `mconsole=notify:SOCKET`.
    pub notify: Option<String>,
    /// `hostfs=`.
    pub hostfs: Option<String>,
    /// `quiet` (UML pass: no host-side info lines).
    pub quiet: bool,
    /// `noreboot`: a guest reboot exits.
    pub noreboot: bool,
    /// `umlkit.nested_userns`: the guest may make user namespaces.
    pub nested_userns: bool,
    /// Init's arguments after `argv[0]`.
    pub init_args: Vec<String>,
    /// Init's environment (`HOME=/`, `TERM=linux`, then the unclaimed ones).
    pub init_env: Vec<String>,
    /// The kernel command line (`/proc/cmdline`).
    pub line: String,
    /// Boot-log lines the parse itself produces, in kernel order
    /// (`ubd: Synchronous mode`, `umid already set`, ...).
    pub notices: Vec<String>,
    /// The "Unknown kernel command line parameters" list, if any.
    pub unknown: Option<String>,
}

/// Why a command line was refused. Each text is the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// Longer than [`COMMAND_LINE_SIZE`].
    #[error("add_arg: Too many command line arguments!")]
    TooLong,
    /// A host argument that is not UTF-8.
    #[error("argument {0} is not valid UTF-8")]
    NotUtf8(usize),
    /// A bad `ubd` option.
    #[error(transparent)]
    Ubd(#[from] UbdError),
    /// A bad `con`/`ssl` option or channel.
    #[error(transparent)]
    Chan(#[from] ChanError),
    /// A bad `eth` option.
    #[error("eth_setup - Couldn't parse '{text}' : {reason}")]
    Eth {
        /// The text after `eth`.
        text: String,
        /// The kernel's reason.
        reason: &'static str,
    },
    /// A bad `vec` option (`vector_setup`). As in the kernel, the text
    /// for a bad number is the part before the `:`.
    #[error("vector_setup - Couldn't parse '{text}' : {reason}")]
    Vec {
        /// The text the kernel prints.
        text: String,
        /// The kernel's reason.
        reason: &'static str,
    },
    /// `mem=` too small.
    #[error("Too few physical memory! Needed={needed}, given={given}")]
    TooFewMemory {
        /// The least accepted.
        needed: u64,
        /// What was asked for.
        given: u64,
    },
    /// More than [`MAX_INIT_ARGS`] init arguments or environment entries.
    #[error("Kernel panic - not syncing: Too many boot {kind} vars at `{name}'")]
    TooManyInitVars {
        /// `init` or `env`.
        kind: &'static str,
        /// The word that did not fit.
        name: String,
    },
}

/// Parses the host argv (without `argv[0]`).
pub fn parse(args: &[String]) -> Result<Invocation, CmdlineError> {
    let mut st = UmlPass {
        mem: DEFAULT_MEM,
        ..UmlPass::default()
    };
    for (i, arg) in args.iter().enumerate() {
        // argv[1] starting with a space is skipped (spec §1.1).
        if i == 0 && arg.starts_with(' ') {
            continue;
        }
        if let Some(exit) = st.setup(arg)? {
            return Ok(exit);
        }
    }
    if !st.have_root {
        st.add_arg("root=98:0")?;
    }
    if !st.have_console {
        st.add_arg("console=tty0")?;
    }
    if st.mem < MIN_MEM {
        return Err(CmdlineError::TooFewMemory {
            needed: MIN_MEM,
            given: st.mem,
        });
    }
    generic_pass(st).map(|c| Invocation::Boot(Box::new(c)))
}

/// Converts host arguments, refusing non-UTF-8 ones.
pub fn parse_os(args: &[std::ffi::OsString]) -> Result<Invocation, CmdlineError> {
    let strings = args
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.to_str()
                .map(str::to_string)
                .ok_or(CmdlineError::NotUtf8(i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    parse(&strings)
}

#[derive(Default)]
struct UmlPass {
    line: String,
    have_root: bool,
    have_console: bool,
    mem: u64,
    umid: Option<String>,
    uml_dir: Option<String>,
    quiet: bool,
    noreboot: bool,
    hostfs: Option<String>,
    notices: Vec<String>,
}

impl UmlPass {
    fn add_arg(&mut self, arg: &str) -> Result<(), CmdlineError> {
        if self.line.len() + arg.len() + 1 > COMMAND_LINE_SIZE {
            return Err(CmdlineError::TooLong);
        }
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        self.line.push_str(arg);
        Ok(())
    }

    /// Runs every matching `__uml_setup` handler, then adds the element.
    fn setup(&mut self, arg: &str) -> Result<Option<Invocation>, CmdlineError> {
        if arg.starts_with("--help") {
            return Ok(Some(Invocation::Help));
        }
        if arg.starts_with("--version") {
            return Ok(Some(Invocation::Version));
        }
        if arg.starts_with("--showconfig") {
            return Ok(Some(Invocation::ShowConfig));
        }
        let mut add = true;
        if let Some(v) = arg.strip_prefix("mem=") {
            self.mem = memparse(v);
        } else if arg.starts_with("root=") {
            self.have_root = true;
        } else if arg.starts_with("console=") {
            self.have_console = true;
        } else if let Some(v) = arg.strip_prefix("umid=") {
            // spec §4: the first wins; an overlong one is ignored.
            if self.umid.is_some() {
                self.notices.push("umid already set".into());
            } else {
                add = false;
                if !v.is_empty() && v.len() < 64 {
                    self.umid = Some(v.to_string());
                }
            }
        } else if let Some(v) = arg.strip_prefix("uml_dir=") {
            self.uml_dir = Some(v.to_string());
        } else if let Some(v) = arg.strip_prefix("hostfs=") {
            self.hostfs = Some(v.to_string());
        }
        if arg.starts_with("quiet") {
            self.quiet = true;
        }
        if arg.starts_with("noreboot") {
            self.noreboot = true;
        }
        if add {
            self.add_arg(arg)?;
        }
        Ok(None)
    }
}

/// Generic parameters the kernel consumes (spec §1.3): exact names for
/// flags, `name=` prefixes for values.
const CONSUMED_FLAGS: [&str; 5] = ["rw", "ro", "rootwait", "quiet", "debug"];
const CONSUMED_VALUES: [&str; 9] = [
    "root",
    "rootfstype",
    "rootdelay",
    "init",
    "rdinit",
    "console",
    "loglevel",
    "initrd",
    "panic",
];

struct Generic {
    c: CmdLine,
    con_default: Option<String>,
    con_one: Vec<Option<String>>,
    ssl_default: Option<String>,
    ssl_one: Vec<Option<String>>,
    configured: [bool; MAX_DEV],
}

fn generic_pass(st: UmlPass) -> Result<CmdLine, CmdlineError> {
    let mut g = Generic {
        c: CmdLine {
            disks: Default::default(),
            ubd_sync_all: false,
            root: "98:0".into(),
            read_write: false,
            init: None,
            mem: st.mem,
            umid: st.umid,
            uml_dir: st.uml_dir,
            consoles: Vec::new(),
            serials: Vec::new(),
            ssl_non_raw: false,
            eths: Vec::new(),
            vecs: Vec::new(),
            notify: None,
            hostfs: st.hostfs,
            quiet: st.quiet,
            noreboot: st.noreboot,
            nested_userns: false,
            init_args: Vec::new(),
            init_env: vec!["HOME=/".into(), "TERM=linux".into()],
            line: st.line.clone(),
            notices: st.notices,
            unknown: None,
        },
        con_default: None,
        con_one: vec![None; MAX_CONSOLES],
        ssl_default: None,
        ssl_one: vec![None; MAX_SERIALS],
        configured: [false; MAX_DEV],
    };
    let all = words::split(&st.line);
    let mut after_dashes = None;
    for (i, w) in all.iter().enumerate() {
        if w.value.is_none() && w.name == "--" {
            after_dashes = Some(i + 1);
            break;
        }
        if !g.claim(w)? {
            g.unknown(w)?;
        }
    }
    let listed: Vec<&str> =
        g.c.init_args
            .iter()
            .chain(g.c.init_env.iter().skip(2))
            .map(String::as_str)
            .collect();
    if !listed.is_empty() {
        g.c.unknown = Some(listed.join(" "));
    }
    if let Some(start) = after_dashes {
        for w in &all[start..] {
            push_limited(&mut g.c.init_args, w.joined(), "init")?;
        }
    }
    g.resolve_lines()?;
    Ok(g.c)
}

fn push_limited(v: &mut Vec<String>, s: String, kind: &'static str) -> Result<(), CmdlineError> {
    if v.len() >= MAX_INIT_ARGS {
        return Err(CmdlineError::TooManyInitVars { kind, name: s });
    }
    v.push(s);
    Ok(())
}

impl Generic {
    /// The `__setup` handlers and kernel parameters: true when consumed.
    fn claim(&mut self, w: &Word) -> Result<bool, CmdlineError> {
        let joined = w.joined();
        let j = joined.as_str();
        if let Some(rest) = j.strip_prefix("ubd") {
            match ubd::parse(rest, &self.configured)? {
                UbdOption::SyncAll => {
                    self.c.ubd_sync_all = true;
                    self.c.notices.push("ubd: Synchronous mode".into());
                }
                UbdOption::FakeMajor => self
                    .c
                    .notices
                    .push("fake major not supported any more".into()),
                UbdOption::Device(n, cfg) => {
                    self.configured[n] = true;
                    self.c.disks[n] = Some(cfg);
                }
            }
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("udb") {
            self.c.notices.push(format!(
                "udb{rest} specified on command line is almost certainly a ubd -> udb TYPO"
            ));
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("vec") {
            self.vec(rest)?;
            return Ok(true);
        }
        if j.starts_with("fake_ide") || j.starts_with("stderr=") {
            return Ok(true);
        }
        if j == "ssl-non-raw" {
            self.c.ssl_non_raw = true;
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("con").filter(|r| !r.starts_with("sole=")) {
            match chan::line_setup(rest, MAX_CONSOLES, "console")? {
                LineSetting::All(s) => self.con_default = Some(s),
                LineSetting::One(n, s) => self.con_one[n] = Some(s),
            }
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("ssl") {
            match chan::line_setup(rest, MAX_SERIALS, "serial line")? {
                LineSetting::All(s) => self.ssl_default = Some(s),
                LineSetting::One(n, s) => self.ssl_one[n] = Some(s),
            }
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("eth") {
            self.eth(rest)?;
            return Ok(true);
        }
        if let Some(rest) = j.strip_prefix("mconsole=") {
            match rest.strip_prefix("notify:") {
                Some(path) => self.c.notify = Some(path.to_string()),
                None => self
                    .c
                    .notices
                    .push(format!("mconsole_setup : Unknown option - '{rest}'")),
            }
            return Ok(true);
        }
        match (&w.value, w.name.as_str()) {
            (None, "rw") => self.c.read_write = true,
            (None, "ro") => self.c.read_write = false,
            (Some(v), "root") => self.c.root = v.clone(),
            (Some(v), "init") => {
                self.c.init = Some(v.clone());
                self.c.init_args.clear();
            }
            (None, n) if CONSUMED_FLAGS.contains(&n) => {}
            (Some(_), n) if CONSUMED_VALUES.contains(&n) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `unknown_bootoption`: into init's environment or argv.
    fn unknown(&mut self, w: &Word) -> Result<(), CmdlineError> {
        if w.name == "umlkit.nested_userns" {
            self.c.nested_userns = w.value.as_deref().is_none_or(|v| v != "0");
            return Ok(());
        }
        if w.name.contains('.') {
            return Ok(()); // an unused module parameter
        }
        match &w.value {
            Some(_) => {
                let prefix = format!("{}=", w.name);
                let entry = w.joined();
                if let Some(e) = self.c.init_env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    *e = entry;
                } else {
                    push_limited(&mut self.c.init_env, entry, "env")?;
                }
            }
            None => push_limited(&mut self.c.init_args, w.name.clone(), "init")?,
        }
        Ok(())
    }

    fn eth(&mut self, rest: &str) -> Result<(), CmdlineError> {
        let err = |reason| CmdlineError::Eth {
            text: rest.to_string(),
            reason,
        };
        let (n, used) = parse_ulong(rest).ok_or_else(|| err("Bad device number"))?;
        let Some(value) = rest[used..].strip_prefix('=') else {
            return Err(err("Expected '=' after device number"));
        };
        let n = usize::try_from(n).map_err(|_| err("Bad device number"))?;
        if self.c.eths.iter().any(|(u, _)| *u == n) {
            return Err(err("Device already configured"));
        }
        self.c.eths.push((n, value.to_string()));
        Ok(())
    }

    /// `vector_setup`/`vector_parse`: `N:OPTIONS`, N by `kstrtouint` with
    /// base 0 (`0x1`, `010`), each unit once.
    fn vec(&mut self, rest: &str) -> Result<(), CmdlineError> {
        let Some((number, options)) = rest.split_once(':') else {
            return Err(CmdlineError::Vec {
                text: rest.to_string(),
                reason: "Expected ':' after device number",
            });
        };
        let bad = |reason| CmdlineError::Vec {
            text: number.to_string(),
            reason,
        };
        let n = match parse_ulong(number) {
            Some((n, used)) if used == number.len() && !number.is_empty() => n,
            _ => return Err(bad("Bad device number")),
        };
        let n = u32::try_from(n)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad("Bad device number"))?;
        if self.c.vecs.iter().any(|(u, _)| *u == n) {
            return Err(bad("Device already configured"));
        }
        self.c.vecs.push((n, options.to_string()));
        Ok(())
    }

    /// Applies the defaults: con0 `fd:0,fd:1`, the other consoles
    /// `x-terminal-emulator` (not a channel: those devices do not exist),
    /// serial lines only where set.
    fn resolve_lines(&mut self) -> Result<(), CmdlineError> {
        for n in 0..MAX_CONSOLES {
            let s = self.con_one[n].clone().or_else(|| self.con_default.clone());
            let pair = match s {
                Some(s) => chan::parse_pair(n, &s)?,
                None if n == 0 => chan::parse_pair(0, "fd:0,fd:1")?,
                None => None,
            };
            self.c.consoles.push(pair);
        }
        for n in 0..MAX_SERIALS {
            let s = self.ssl_one[n].clone().or_else(|| self.ssl_default.clone());
            let pair = match s {
                Some(s) => chan::parse_pair(n, &s)?,
                None => None,
            };
            self.c.serials.push(pair);
        }
        Ok(())
    }
}

/// The unit a `root=` value names: `/dev/ubdX`, `ubdX` or `98:M` with M a
/// multiple of 16 (partitions are not supported).
pub fn root_unit(root: &str) -> Option<usize> {
    let name = root.strip_prefix("/dev/").unwrap_or(root);
    if let Some(l) = name.strip_prefix("ubd") {
        let b = l.as_bytes();
        return (b.len() == 1 && (b'a'..b'a' + 16).contains(&b[0]))
            .then(|| usize::from(b[0] - b'a'));
    }
    let (major, minor) = root.split_once(':')?;
    let minor: usize = minor.parse().ok()?;
    (major == "98" && minor % 16 == 0 && minor / 16 < MAX_DEV).then_some(minor / 16)
}

#[cfg(test)]
mod tests;
