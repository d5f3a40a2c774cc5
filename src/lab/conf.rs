//! `lab.conf`, as Netkit and Kathará write it: `machine[N]=DOMAIN` puts
//! `ethN` of `machine` on collision domain `DOMAIN`; `machine[KEY]=VALUE`
//! sets an option; `NAME=VALUE` sets a lab-wide value (`LAB_DESCRIPTION`,
//! `machines="..."`, `LAB_IMAGE`, ...). Values may be bare or quoted with
//! `"` or `'`; `#` starts a comment outside quotes. Pure: text in, a
//! [`LabConf`] (and warnings) out, with `file:line` in every error.

use super::{valid_name, Error, Result, Warning};
use std::collections::BTreeMap;
use std::path::Path;

/// The highest interface number (`eth15`), as Netkit allows.
pub const MAX_IFACE: u32 = 15;

/// Where an interface is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// A collision domain (one `uml_switch`), with an optional MAC from
    /// Kathará's `DOMAIN/MAC` form.
    Domain {
        /// The domain's name.
        name: String,
        /// The interface's MAC, when given.
        mac: Option<String>,
    },
    /// Netkit's `tap,HOSTIP,GUESTIP`: a host TAP through `uml_net`.
    Tap {
        /// The host side's address.
        host_ip: String,
        /// The guest's address.
        guest_ip: String,
    },
}

/// One machine's settings from `lab.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineConf {
    /// `machine[N]=...`, by interface number, with the line it came from.
    pub ifaces: BTreeMap<u32, (Attach, usize)>,
    /// `[mem]` (Netkit: megabytes; a suffix is kept).
    pub mem: Option<String>,
    /// `[image]` or `[filesystem]`, with its line.
    pub image: Option<(String, usize)>,
    /// `[con0]`.
    pub con0: Option<String>,
    /// `[append]`: extra kernel words.
    pub append: Vec<String>,
    /// `[host]`: the host that runs the machine when a lab is split over
    /// several (`uml_lab start --host NAME`), with its line.
    pub host: Option<(String, usize)>,
    /// The line that first named the machine.
    pub line: usize,
}

/// A collision domain's settings from `lab.conf` (an umlkit extension):
/// `DOMAIN[vxlan]=VNI`, `DOMAIN[peer]=ADDR[:PORT]` (repeatable, or a
/// comma list), `DOMAIN[vxlan-local]=ADDR[:PORT]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainConf {
    /// The VNI, with its line.
    pub vxlan: Option<(u32, usize)>,
    /// The peers (port 4789 unless given), with their lines.
    pub peers: Vec<(std::net::SocketAddr, usize)>,
    /// The local address the switch binds, with its line.
    pub local: Option<(std::net::SocketAddr, usize)>,
}

/// The keys that make `NAME[KEY]` a collision domain's, not a machine's.
pub const DOMAIN_KEYS: [&str; 3] = ["vxlan", "peer", "vxlan-local"];

/// What `lab.conf` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabConf {
    /// Machines in order of first appearance.
    pub machines: BTreeMap<String, MachineConf>,
    /// Order of first appearance.
    pub order: Vec<String>,
    /// `machines="a b c"`, with its line: the set and its order.
    pub machine_list: Option<(Vec<String>, usize)>,
    /// `LAB_DESCRIPTION`, `LAB_VERSION`, `LAB_AUTHOR`, `LAB_EMAIL`,
    /// `LAB_WEB`, in file order.
    pub info: Vec<(String, String)>,
    /// `LAB_IMAGE`, with its line.
    pub image: Option<(String, usize)>,
    /// `LAB_HUBS="A B"`: domains run as hubs.
    pub hubs: Vec<String>,
    /// `DOMAIN[vxlan]` and friends, by domain.
    pub domains: BTreeMap<String, DomainConf>,
}

/// The lab-wide keys shown at start.
const INFO_KEYS: [&str; 5] = [
    "LAB_DESCRIPTION",
    "LAB_VERSION",
    "LAB_AUTHOR",
    "LAB_EMAIL",
    "LAB_WEB",
];

/// Per-machine keys accepted and ignored quietly (Kathará's container
/// options that mean nothing for a UML guest).
const IGNORED_KEYS: [&str; 9] = [
    "bridged",
    "port",
    "exec",
    "ipv6",
    "sysctl",
    "env",
    "shell",
    "num_terms",
    "privileged",
];

/// Strips a comment and surrounding blanks, honouring quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') => return line[..i].trim(),
            _ => {}
        }
    }
    line.trim()
}

/// A value, unquoted: `"x"`, `'x'` or bare `x`.
fn unquote(value: &str, file: &Path, n: usize) -> Result<String> {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            let inner = rest
                .strip_suffix(q)
                .ok_or_else(|| Error::syntax(file, n, format!("unterminated quote in {v}")))?;
            if inner.contains(q) {
                return Err(Error::syntax(file, n, format!("stray quote in {v}")));
            }
            return Ok(inner.to_string());
        }
    }
    if v.contains(['"', '\'']) {
        return Err(Error::syntax(file, n, format!("stray quote in {v}")));
    }
    Ok(v.to_string())
}

/// Parses an interface value: `DOMAIN`, `DOMAIN/MAC`, `tap,HOST,GUEST`.
fn parse_attach(value: &str, file: &Path, n: usize) -> Result<Attach> {
    if let Some(rest) = value.strip_prefix("tap,") {
        let mut parts = rest.split(',');
        let (Some(h), Some(g), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::syntax(
                file,
                n,
                format!("{value}: a TAP domain is tap,HOSTIP,GUESTIP"),
            ));
        };
        for ip in [h, g] {
            if ip.parse::<std::net::Ipv4Addr>().is_err() {
                return Err(Error::syntax(
                    file,
                    n,
                    format!("{value}: {ip} is not an IPv4 address"),
                ));
            }
        }
        return Ok(Attach::Tap {
            host_ip: h.to_string(),
            guest_ip: g.to_string(),
        });
    }
    let (name, mac) = match value.split_once('/') {
        Some((d, m)) => (d, Some(m)),
        None => (value, None),
    };
    if !valid_name(name) {
        return Err(Error::syntax(
            file,
            n,
            format!("collision domain '{name}': a name is 1 to 32 letters, digits, '_' or '-'"),
        ));
    }
    if let Some(m) = mac {
        if !valid_mac(m) {
            return Err(Error::syntax(
                file,
                n,
                format!("{m}: not a MAC address (xx:xx:xx:xx:xx:xx)"),
            ));
        }
    }
    Ok(Attach::Domain {
        name: name.to_string(),
        mac: mac.map(str::to_lowercase),
    })
}

/// True for `xx:xx:xx:xx:xx:xx` in hex.
pub fn valid_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Parses `lab.conf` text; `file` names it in errors and warnings.
pub fn parse(text: &str, file: &Path) -> Result<(LabConf, Vec<Warning>)> {
    let mut conf = LabConf::default();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::syntax(
                file,
                n,
                format!("'{line}': expected KEY=VALUE or MACHINE[KEY]=VALUE"),
            ));
        };
        let key = key.trim();
        let value = unquote(value, file, n)?;
        match key.split_once('[') {
            Some((machine, rest)) => {
                let Some(sub) = rest.strip_suffix(']') else {
                    return Err(Error::syntax(file, n, format!("'{key}': missing ']'")));
                };
                if DOMAIN_KEYS.contains(&sub.trim()) {
                    domain_key(&mut conf, machine, sub.trim(), &value, file, n)?;
                } else {
                    machine_key(&mut conf, &mut warnings, machine, sub, &value, file, n)?;
                }
            }
            None => lab_key(&mut conf, &mut warnings, key, value, file, n)?,
        }
    }
    Ok((conf, warnings))
}

fn lab_key(
    conf: &mut LabConf,
    warnings: &mut Vec<Warning>,
    key: &str,
    value: String,
    file: &Path,
    n: usize,
) -> Result<()> {
    match key {
        k if INFO_KEYS.contains(&k) => conf.info.push((k.to_string(), value)),
        "machines" => {
            let names: Vec<String> = value.split_whitespace().map(str::to_string).collect();
            if let Some(bad) = names.iter().find(|m| !valid_name(m)) {
                return Err(Error::syntax(file, n, bad_machine(bad)));
            }
            conf.machine_list = Some((names, n));
        }
        "LAB_IMAGE" => conf.image = Some((value, n)),
        "LAB_HUBS" => {
            for d in value.split_whitespace() {
                if !valid_name(d) {
                    return Err(Error::syntax(
                        file,
                        n,
                        format!("collision domain '{d}' in LAB_HUBS: bad name"),
                    ));
                }
                conf.hubs.push(d.to_string());
            }
        }
        _ => warnings.push(Warning(format!(
            "{}:{n}: unknown key '{key}' ignored",
            file.display()
        ))),
    }
    Ok(())
}

/// `DOMAIN[vxlan|peer|vxlan-local]=VALUE`.
fn domain_key(
    conf: &mut LabConf,
    domain: &str,
    sub: &str,
    value: &str,
    file: &Path,
    n: usize,
) -> Result<()> {
    let domain = domain.trim();
    if !valid_name(domain) {
        return Err(Error::syntax(
            file,
            n,
            format!("collision domain '{domain}': a name is 1 to 32 letters, digits, '_' or '-'"),
        ));
    }
    let bad = |e: crate::switch::vxlan::AddrError| {
        Error::syntax(file, n, format!("{domain}[{sub}]: {e}"))
    };
    let d = conf.domains.entry(domain.to_string()).or_default();
    match sub {
        "vxlan" => {
            if d.vxlan.is_some() {
                return Err(Error::syntax(
                    file,
                    n,
                    format!("{domain}[vxlan] given twice"),
                ));
            }
            d.vxlan = Some((
                crate::switch::vxlan::parse_vni(value.trim()).map_err(bad)?,
                n,
            ));
        }
        "peer" => {
            for p in value.split([',', ' ']).filter(|p| !p.is_empty()) {
                d.peers
                    .push((crate::switch::vxlan::parse_addr(p).map_err(bad)?, n));
            }
            if d.peers.is_empty() {
                return Err(Error::syntax(
                    file,
                    n,
                    format!("{domain}[peer]: no address"),
                ));
            }
        }
        _ => {
            if d.local.is_some() {
                return Err(Error::syntax(
                    file,
                    n,
                    format!("{domain}[{sub}] given twice"),
                ));
            }
            d.local = Some((
                crate::switch::vxlan::parse_addr(value.trim()).map_err(bad)?,
                n,
            ));
        }
    }
    Ok(())
}

fn bad_machine(name: &str) -> String {
    format!("machine '{name}': a name is 1 to 32 letters, digits, '_' or '-'")
}

fn machine_key(
    conf: &mut LabConf,
    warnings: &mut Vec<Warning>,
    machine: &str,
    sub: &str,
    value: &str,
    file: &Path,
    n: usize,
) -> Result<()> {
    let machine = machine.trim();
    if !valid_name(machine) {
        return Err(Error::syntax(file, n, bad_machine(machine)));
    }
    if !conf.machines.contains_key(machine) {
        conf.order.push(machine.to_string());
    }
    let m = conf
        .machines
        .entry(machine.to_string())
        .or_insert_with(|| MachineConf {
            line: n,
            ..Default::default()
        });
    let sub = sub.trim();
    if !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_digit()) {
        let iface = sub
            .parse::<u32>()
            .ok()
            .filter(|&i| i <= MAX_IFACE)
            .ok_or_else(|| {
                Error::syntax(
                    file,
                    n,
                    format!("{machine}[{sub}]: interface number over {MAX_IFACE}"),
                )
            })?;
        if m.ifaces.contains_key(&iface) {
            return Err(Error::syntax(
                file,
                n,
                format!("{machine}[{iface}]: interface given twice"),
            ));
        }
        m.ifaces.insert(iface, (parse_attach(value, file, n)?, n));
        return Ok(());
    }
    match sub {
        "mem" | "memory" => m.mem = Some(value.to_string()),
        "image" | "filesystem" => m.image = Some((value.to_string(), n)),
        "con0" => m.con0 = Some(value.to_string()),
        "host" => {
            if !valid_name(value) {
                return Err(Error::syntax(
                    file,
                    n,
                    format!("{machine}[host]='{value}': a host name is 1 to 32 letters, digits, '_' or '-'"),
                ));
            }
            m.host = Some((value.to_string(), n));
        }
        "append" => m
            .append
            .extend(value.split_whitespace().map(str::to_string)),
        k if IGNORED_KEYS.contains(&k) => warnings.push(Warning(format!(
            "{}:{n}: {machine}[{k}] has no meaning for a UML guest; ignored",
            file.display()
        ))),
        k => warnings.push(Warning(format!(
            "{}:{n}: unknown key {machine}[{k}] ignored",
            file.display()
        ))),
    }
    Ok(())
}

/// Netkit's `[mem]` as a kernel `mem=` value: a bare number is megabytes.
pub fn mem_arg(mem: &str) -> String {
    if !mem.is_empty() && mem.bytes().all(|b| b.is_ascii_digit()) {
        format!("{mem}M")
    } else {
        mem.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<(LabConf, Vec<Warning>)> {
        parse(text, Path::new("lab/lab.conf"))
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn interfaces_options_and_lab_keys_are_read_as_netkit_writes_them() {
        let (c, w) = p("# a lab\n\
             LAB_DESCRIPTION=\"two routers\"\n\
             LAB_AUTHOR='me' # comment\n\
             r1[0]=A\n\
             r1[1]=\"B\"\n\
             pc1[0]=A/02:00:00:00:00:AA\n\
             pc1[mem]=128\n\
             pc1[image]=\"/img/x\"\n\
             pc1[append]=\"quiet foo=1\"\n\
             pc2[0]=tap,10.0.0.1,10.0.0.2\n\
             \n")
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.order, ["r1", "pc1", "pc2"]);
        assert_eq!(c.info[0], ("LAB_DESCRIPTION".into(), "two routers".into()));
        assert_eq!(c.info[1].1, "me");
        let r1 = &c.machines["r1"];
        assert_eq!(
            r1.ifaces[&1].0,
            Attach::Domain {
                name: "B".into(),
                mac: None
            }
        );
        assert_eq!(r1.ifaces[&1].1, 5);
        let pc1 = &c.machines["pc1"];
        assert_eq!(
            pc1.ifaces[&0].0,
            Attach::Domain {
                name: "A".into(),
                mac: Some("02:00:00:00:00:aa".into())
            }
        );
        assert_eq!(pc1.mem.as_deref(), Some("128"));
        assert_eq!(pc1.image, Some(("/img/x".into(), 8)));
        assert_eq!(pc1.append, ["quiet", "foo=1"]);
        assert!(matches!(c.machines["pc2"].ifaces[&0].0, Attach::Tap { .. }));
    }

    #[test]
    fn a_line_without_equals_names_file_and_line() {
        assert_eq!(
            err("r1[0]=A\n\nr1 A\n"),
            "lab/lab.conf:3: 'r1 A': expected KEY=VALUE or MACHINE[KEY]=VALUE"
        );
    }

    #[test]
    fn an_interface_over_15_is_refused_with_its_line() {
        let e = err("a[0]=A\na[16]=B\n");
        assert!(
            e.starts_with("lab/lab.conf:2: a[16]: interface number over 15"),
            "{e}"
        );
        assert!(err("a[99999999999999999999]=B").contains("over 15"));
        assert!(p("a[15]=B").is_ok());
    }

    #[test]
    fn bad_names_quotes_and_duplicates_are_errors_with_lines() {
        assert!(err("a b[0]=A").starts_with("lab/lab.conf:1: machine 'a b'"));
        assert!(err("a[0]=A B").starts_with("lab/lab.conf:1: collision domain 'A B'"));
        assert!(err("a[0]=\"A").contains("unterminated quote"));
        assert!(err("a[0=A").contains("missing ']'"));
        assert!(err("a[0]=A\na[0]=B").starts_with("lab/lab.conf:2: a[0]: interface given twice"));
        assert!(err("a[0]=A/zz").contains("not a MAC"));
        assert!(err("a[0]=tap,1.2.3.4").contains("tap,HOSTIP,GUESTIP"));
    }

    #[test]
    fn unknown_keys_warn_with_file_and_line_and_go_on() {
        let (c, w) = p("a[0]=A\nFOO=1\na[colour]=red\na[bridged]=true\n").unwrap();
        assert_eq!(c.order, ["a"]);
        assert_eq!(w.len(), 3);
        assert!(
            w[0].0.starts_with("lab/lab.conf:2: unknown key 'FOO'"),
            "{w:?}"
        );
        assert!(w[1].0.starts_with("lab/lab.conf:3:"), "{w:?}");
    }

    #[test]
    fn hash_inside_quotes_is_not_a_comment() {
        let (c, _) = p("LAB_WEB=\"http://x/#top\" # c\n").unwrap();
        assert_eq!(c.info[0].1, "http://x/#top");
    }

    #[test]
    fn netkit_mem_is_megabytes() {
        assert_eq!(mem_arg("128"), "128M");
        assert_eq!(mem_arg("1G"), "1G");
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(s in "\\PC*") {
            let _ = p(&s);
        }

        #[test]
        fn lab_like_text_parses_or_fails_without_panicking(
            lines in proptest::collection::vec("[a-z0-9\\[\\]=\"'#/,: .]{0,24}", 0..12)
        ) {
            let _ = p(&lines.join("\n"));
        }
    }
}
