//! Vector network devices `vec<N>:OPTION=VALUE,...` (the only network
//! driver of current UML kernels; `arch/um/drivers/vector_user.c`,
//! `vector_kern.c`, `Documentation/virt/uml/user_mode_linux_howto_v2.rst`).
//!
//! ```text
//!   vec0:transport=tap,ifname=tap0,mac=fe:fd:0:0:0:1,depth=128
//!        └ parse_ifspec ─ Args (key=value pairs, first one wins)
//!                           └ Spec::from_args ─ Transport + MAC choice
//!                                                └ open::open (host side)
//! ```
//!
//! The pure part is here: the option list, the transport it names (the
//! kernel compares prefixes: `transport=tapx` is `tap`), the MAC rules of
//! `uml_net_setup_etheraddr`. Unknown keys are accepted and ignored, as
//! the kernel does. The host sides are opened by `open`, frames of a
//! `vde_plug` byte stream are cut by `vde`.

pub mod gre;
pub mod l2tpv3;
pub mod open;
pub mod rawip;
pub mod vde;

use crate::net::Mac;

/// `MAXVARGS` of `vector_user.h`: the most `key=value` pairs.
pub const MAX_ARGS: usize = 20;

/// Why a vector device was refused or could not be opened: the kernel's
/// texts (`vector_user.c`), one variant each.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A value with a second `=` (the kernel prints the text up to the
    /// first `=` or `,`, which it has cut there already), or more than
    /// [`MAX_ARGS`] pairs.
    #[error("vector_setup - Couldn't parse '{0}'")]
    CouldntParse(String),
    /// No `transport=`.
    #[error("missing transport for unit {0}")]
    MissingTransport(usize),
    /// A transport name the kernel does not know (it opens nothing and
    /// says nothing; the device then fails to come up).
    #[error("vec{unit}: unknown transport '{name}'; no device")]
    UnknownTransport {
        /// The unit.
        unit: usize,
        /// The name as given.
        name: String,
    },
    /// `tap`: `/dev/net/tun` could not be opened.
    #[error("uml_tap: failed to open tun device\nuser_init_tap: init failed, error -12")]
    TunOpen,
    /// `tap`/`hybrid`: TUNSETIFF on the host TAP failed (errno given).
    #[error("uml_tap: failed to select tap interface\numl_tap: failed to create tun interface\nuser_init_tap: init failed, error -1 ({0})")]
    TapSelect(std::io::Error),
    /// `hybrid`: no `ifname=`.
    #[error("uml_tap: failed to parse interface spec\nuser_init_hybrid: init failed")]
    HybridNoIfname,
    /// `raw`/`hybrid`: the packet socket (CAP_NET_RAW in the host's
    /// network namespace) or its binding failed; `errno` negated as the
    /// kernel prints it.
    #[error("user_init_raw: init failed, error {0}")]
    Raw(i32),
    /// `gre`/`l2tpv3`: `src`/`dst` and their ports did not resolve.
    #[error("socket_open : could not resolve {which}, error = {why}")]
    Resolve {
        /// `src` or `dst`.
        which: &'static str,
        /// `gai_strerror`'s text.
        why: String,
    },
    /// `gre`/`l2tpv3`: the socket (raw ones need CAP_NET_RAW).
    #[error("socket_open : could not open socket, error = {0}\nuser_init_socket: init failed, error -12")]
    Socket(i32),
    /// `bess`: binding to `src=` failed (errno as the kernel prints it).
    #[error("unix_open : could not bind socket err={0}")]
    BessBind(i32),
    /// `bess`: connecting to `dst=` failed (errno negated).
    #[error("bess open:cannot connect to {dst} {errno}")]
    BessConnect {
        /// The switch's socket.
        dst: String,
        /// The negated errno.
        errno: i32,
    },
    /// `l2tpv3`: the options do not make a header (the kernel fails the
    /// device silently with EINVAL).
    #[error("vec{unit}: l2tpv3: {why}; no device")]
    TransportData {
        /// The unit.
        unit: usize,
        /// What is missing.
        why: &'static str,
    },
    /// `l2tpv3`: binding to `src:srcport` failed (errno).
    #[error(
        "l2tpv3_open : could not bind socket err={0}\nuser_init_socket: init failed, error -12"
    )]
    L2tpBind(i32),
    /// `fd`: no usable `fd=`.
    #[error("fd open: bad or missing fd argument")]
    BadFd,
    /// `vde`: `vde_plug` could not be run or gave up (its own message, if
    /// any, is on the console before this line).
    #[error("vde: vde_open failed, errno = {errno} ({why})")]
    VdeOpen {
        /// The system's error number (0 when `vde_plug` just exited).
        errno: i32,
        /// What happened.
        why: String,
    },
    /// A transport the kernel has that this monitor cannot serve.
    #[error("vec{unit}: transport {name} is not supported by this linux ({why}); no device")]
    Unsupported {
        /// The unit.
        unit: usize,
        /// The transport.
        name: &'static str,
        /// Why not.
        why: &'static str,
    },
}

/// The `key=value` pairs of one device, in order. A key without `=` is
/// dropped, as the kernel's tokenizer drops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    pairs: Vec<(String, String)>,
}

impl Args {
    /// `uml_vector_fetch_arg`: the first value of `key`.
    pub fn fetch(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// `uml_parse_vector_ifspec`: splits at `,` into tokens and at the first
/// `=` into key and value; a second `=` in one token refuses the whole
/// device.
pub fn parse_ifspec(arg: &str) -> Result<Args, VectorError> {
    let refuse = || {
        let end = arg.find(['=', ',']).unwrap_or(arg.len());
        VectorError::CouldntParse(arg[..end].to_string())
    };
    let mut pairs = Vec::new();
    let tokens: Vec<&str> = arg.split(',').collect();
    let last = tokens.len().saturating_sub(1);
    for (i, token) in tokens.into_iter().enumerate() {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        if value.contains('=') {
            return Err(refuse());
        }
        // The kernel starts a value only at a character after `=`: a
        // `key=` at the very end of the text has none.
        if value.is_empty() && i == last {
            continue;
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    if pairs.len() > MAX_ARGS {
        return Err(refuse());
    }
    Ok(Args { pairs })
}

/// The transport a device asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `tap`: a host TAP, `ifname=` (without it the kernel makes
    /// `tapXXXXXX`, which needs CAP_NET_ADMIN).
    Tap {
        /// The host TAP's name.
        ifname: Option<String>,
    },
    /// `hybrid`: a host TAP to send, a packet socket on it to receive.
    Hybrid {
        /// The host TAP's name.
        ifname: Option<String>,
    },
    /// `raw`: packet sockets on a host interface.
    Raw {
        /// The host interface.
        ifname: Option<String>,
    },
    /// `gre`: Ethernet over GRE (a raw IP socket).
    Gre,
    /// `l2tpv3`: Ethernet over L2TPv3 (raw IP, or UDP with `udp=1`).
    L2tpv3 {
        /// `udp=1`.
        udp: bool,
    },
    /// `bess`: a BESS switch's unix socket.
    Bess,
    /// `fd`: an inherited descriptor.
    Fd {
        /// `fd=`, when it is a number.
        fd: Option<i32>,
    },
    /// `vde`: a VDE network through `vde_plug VNL`.
    Vde {
        /// `vnl=` (empty: `vde_plug`'s default network).
        vnl: String,
    },
}

impl Transport {
    /// `uml_vector_user_open`'s choice: the first name that is a prefix
    /// of `transport=`'s value.
    pub fn from_args(unit: usize, args: &Args) -> Result<Transport, VectorError> {
        let name = args
            .fetch("transport")
            .ok_or(VectorError::MissingTransport(unit))?;
        let ifname = || args.fetch("ifname").map(str::to_string);
        let flag = |key: &str| args.fetch(key).and_then(strtol).is_some_and(|v| v > 0);
        let t = if name.starts_with("raw") {
            Transport::Raw { ifname: ifname() }
        } else if name.starts_with("hybrid") {
            Transport::Hybrid { ifname: ifname() }
        } else if name.starts_with("tap") {
            Transport::Tap { ifname: ifname() }
        } else if name.starts_with("gre") {
            Transport::Gre
        } else if name.starts_with("l2tpv3") {
            Transport::L2tpv3 { udp: flag("udp") }
        } else if name.starts_with("bess") {
            Transport::Bess
        } else if name.starts_with("fd") {
            Transport::Fd {
                fd: args.fetch("fd").and_then(strtofd),
            }
        } else if name.starts_with("vde") {
            Transport::Vde {
                vnl: args.fetch("vnl").unwrap_or("").to_string(),
            }
        } else {
            return Err(VectorError::UnknownTransport {
                unit,
                name: name.to_string(),
            });
        };
        Ok(t)
    }
}

/// `strtol(value, NULL, 10)` as the kernel reads flags: leading digits
/// (with an optional sign), `None` when there are none.
fn strtol(value: &str) -> Option<i64> {
    let t = value.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let v: i64 = digits[..end].parse().ok()?;
    Some(if neg { -v } else { v })
}

/// `strtofd`: a whole decimal number from 0 to `INT_MAX`.
fn strtofd(value: &str) -> Option<i32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The address the device gets and the lines the kernel logs choosing it
/// (`uml_net_setup_etheraddr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacChoice {
    /// The address given, or `None` for a random one.
    pub mac: Option<Mac>,
    /// The kernel's lines (errors, warnings, "Choosing a random ...").
    pub lines: Vec<String>,
}

/// `uml_net_setup_etheraddr(dev, mac=)` for device `name`.
pub fn choose_mac(name: &str, text: Option<&str>) -> MacChoice {
    let random = |mut lines: Vec<String>| {
        lines.push(format!(
            "Choosing a random ethernet address for device {name}"
        ));
        MacChoice { mac: None, lines }
    };
    let Some(text) = text else {
        return random(Vec::new());
    };
    let Some(addr) = etheraddr(text) else {
        return random(vec![format!(
            "setup_etheraddr: failed to parse '{text}' as an ethernet address"
        )]);
    };
    let mac = Mac::new(addr);
    if mac.is_multicast() {
        return random(vec![
            "Attempt to assign a multicast ethernet address to a device disallowed".into(),
        ]);
    }
    if addr == [0; 6] {
        return random(vec![
            "Attempt to assign an invalid ethernet address to a device disallowed".into(),
        ]);
    }
    let mut lines = Vec::new();
    if addr[0] & 2 == 0 {
        let mut local = addr;
        local[0] |= 2;
        lines.push("Warning: Assigning a globally valid ethernet address to a device".into());
        lines.push("You should set the 2nd rightmost bit in the first byte of the MAC,".into());
        lines.push(format!("i.e. {}", Mac::new(local)));
    }
    MacChoice {
        mac: Some(mac),
        lines,
    }
}

/// Six `simple_strtoul(.., 16)` numbers, each ended by `:`, `,` or the
/// end (a number over 0xff keeps its low byte, as the kernel's `u8` does).
fn etheraddr(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut rest = text;
    for (i, byte) in out.iter_mut().enumerate() {
        let r = rest
            .strip_prefix("0x")
            .or_else(|| rest.strip_prefix("0X"))
            .filter(|r| r.starts_with(|c: char| c.is_ascii_hexdigit()))
            .unwrap_or(rest);
        let end = r
            .bytes()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(r.len());
        if end == 0 {
            return None;
        }
        let mut v: u8 = 0;
        for b in r[..end].bytes() {
            let d = char::from(b).to_digit(16).unwrap_or(0);
            v = v
                .wrapping_mul(16)
                .wrapping_add(u8::try_from(d).unwrap_or(0));
        }
        *byte = v;
        match r[end..].chars().next() {
            Some(':' | ',') => rest = &r[end + 1..],
            None if i == 5 => rest = "",
            _ => return None,
        }
    }
    Some(out)
}

/// One `vec<N>:` device, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Unit N.
    pub unit: usize,
    /// The transport.
    pub transport: Transport,
    /// All options (transports read theirs from here).
    pub args: Args,
}

impl Spec {
    /// Parses the text after `vec<N>:`.
    pub fn parse(unit: usize, text: &str) -> Result<Spec, VectorError> {
        let args = parse_ifspec(text)?;
        let transport = Transport::from_args(unit, &args)?;
        Ok(Spec {
            unit,
            transport,
            args,
        })
    }

    /// The guest's interface name, `vec<N>`.
    pub fn name(&self) -> String {
        format!("vec{}", self.unit)
    }

    /// The MAC rules applied to `mac=`.
    pub fn mac(&self) -> MacChoice {
        choose_mac(&self.name(), self.args.fetch("mac"))
    }
}

/// The counter word of a GRE sequence number or an L2TPv3 counter, when
/// the device sends one: 0 when pinned (`pin_sequence`/`pin_counter`),
/// else the device's count, advanced first, as the kernel does.
fn push_counter(out: &mut Vec<u8>, counter: Option<bool>, count: &mut u32) {
    match counter {
        Some(true) => out.extend_from_slice(&[0; 4]),
        Some(false) => {
            *count = count.wrapping_add(1);
            out.extend_from_slice(&count.to_be_bytes());
        }
        None => {}
    }
}

#[cfg(test)]
mod tests;
