//! The plan of a start: which switches, and for each machine its disk,
//! its kernel command line and when it may boot. Pure: a function of the
//! lab, the selection and the paths.

use super::conf::{mem_arg, Attach};
use super::model::{Lab, Machine};
use super::state::Layout;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One machine's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachinePlan {
    /// The machine.
    pub name: String,
    /// Its root image (the COW's backing file).
    pub image: PathBuf,
    /// Its COW file.
    pub cow: PathBuf,
    /// The kernel's command line.
    pub args: Vec<String>,
    /// Domains it attaches to.
    pub domains: Vec<String>,
    /// `(interface, guest address)` of its TAP interfaces.
    pub taps: Vec<(u32, String)>,
}

/// The host directories every machine sees, as Netkit gives them: the lab
/// directory at `/hostlab` and the user's home at `/hosthome`, mounted
/// with hostfs by the init wrapper (`lab::guest::INIT`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostDirs {
    /// The lab directory (absolute), for `/hostlab`.
    pub lab: Option<PathBuf>,
    /// `/hostlab` read-only (`--hostlab-ro`).
    pub lab_read_only: bool,
    /// The user's home (absolute), for `/hosthome`; `None` with
    /// `--no-hosthome`.
    pub home: Option<PathBuf>,
}

/// Can `p` be one word of the kernel's command line (UTF-8, not empty,
/// no white space)?
pub fn one_word(p: &Path) -> bool {
    p.to_str()
        .is_some_and(|s| !s.is_empty() && !s.contains(char::is_whitespace))
}

impl HostDirs {
    /// The kernel command-line words that carry them to the guest's init:
    /// `hostlab=DIR` and `hosthome=DIR` as Netkit passes them, and
    /// `UML_LAB_HOSTLAB_RO=1`. A path with white space cannot be one word
    /// of the kernel's line and is left out.
    pub fn args(&self) -> Vec<String> {
        let word = |p: &Path| one_word(p).then(|| p.display().to_string());
        let mut v = Vec::new();
        if let Some(lab) = self.lab.as_deref().and_then(word) {
            v.push(format!("hostlab={lab}"));
            if self.lab_read_only {
                v.push("UML_LAB_HOSTLAB_RO=1".to_string());
            }
        }
        if let Some(home) = self.home.as_deref().and_then(word) {
            v.push(format!("hosthome={home}"));
        }
        v
    }
}

/// The MAC of interface `iface` of the machine at `index` in the lab
/// (locally administered, unique in the lab).
pub fn mac(index: usize, iface: u32) -> String {
    let i = u16::try_from(index).unwrap_or(u16::MAX);
    let [hi, lo] = i.to_be_bytes();
    let n = u8::try_from(iface).unwrap_or(u8::MAX);
    format!("02:00:4c:{hi:02x}:{lo:02x}:{n:02x}")
}

/// The plan for machine `m` (at `index` in the lab), on `image`, whose
/// own init is `init`, seeing `host` directories.
pub fn machine_plan(
    layout: &Layout,
    index: usize,
    m: &Machine,
    image: &Path,
    init: &str,
    host: &HostDirs,
) -> MachinePlan {
    let cow = layout.cow(&m.name);
    let mut args = vec![
        format!("ubd0={},{}", cow.display(), image.display()),
        "root=/dev/ubda".to_string(),
        "rw".to_string(),
        "init=/uml_lab/init".to_string(),
        format!("umid={}", m.name),
        format!("uml_dir={}", layout.uml_dir().display()),
        "con=null".to_string(),
        "con0=fd:0,fd:1".to_string(),
        "ssl0=fd:3,fd:4".to_string(),
    ];
    if let Some(mem) = &m.mem {
        args.push(format!("mem={}", mem_arg(mem)));
    }
    let mut domains = Vec::new();
    let mut taps = Vec::new();
    for (n, a) in &m.ifaces {
        let mac = match a {
            Attach::Domain { mac: Some(mac), .. } => mac.clone(),
            _ => mac(index, *n),
        };
        match a {
            Attach::Domain { name, .. } => {
                args.push(format!(
                    "eth{n}=daemon,{mac},unix,{}",
                    layout.switch_socket(name).display()
                ));
                if !domains.contains(name) {
                    domains.push(name.clone());
                }
            }
            Attach::Tap { host_ip, guest_ip } => {
                args.push(format!("eth{n}=tuntap,,{mac},{host_ip}"));
                taps.push((*n, guest_ip.clone()));
            }
        }
    }
    args.extend(host.args());
    args.push(format!("UML_LAB_NAME={}", m.name));
    args.push(format!("UML_LAB_INIT={init}"));
    args.extend(m.append.iter().cloned());
    MachinePlan {
        name: m.name.clone(),
        image: image.to_path_buf(),
        cow,
        args,
        domains,
        taps,
    }
}

/// The boot order: a machine may boot once every machine it depends on
/// (among those being started) has finished its startup scripts.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    lab: &'a Lab,
    selected: BTreeSet<String>,
}

impl<'a> Order<'a> {
    /// The order for booting `selected` machines of `lab`.
    pub fn new(lab: &'a Lab, selected: &[&Machine]) -> Order<'a> {
        Order {
            lab,
            selected: selected.iter().map(|m| m.name.clone()).collect(),
        }
    }

    /// Machines that may boot now, in lab order: selected, not `started`,
    /// and every selected dependency in `done`.
    pub fn ready(&self, started: &BTreeSet<String>, done: &BTreeSet<String>) -> Vec<String> {
        self.lab
            .machines
            .iter()
            .map(|m| &m.name)
            .filter(|n| self.selected.contains(*n) && !started.contains(*n))
            .filter(|n| {
                self.lab.deps.get(*n).is_none_or(|d| {
                    d.keys()
                        .all(|p| !self.selected.contains(p) || done.contains(p))
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::model::Listing;

    fn lab() -> Lab {
        Lab::assemble(
            Path::new("/l"),
            "a[0]=A\nb[0]=A\nb[1]=B\nc[0]=B\nc[1]=tap,10.0.0.1,10.0.0.2\nc[mem]=96\n",
            Some("c: b\nb: a\n"),
            &Listing::default(),
        )
        .unwrap()
    }

    #[test]
    fn dependencies_hold_back_only_selected_machines() {
        let lab = lab();
        let all = lab.select(&[]).unwrap();
        let o = Order::new(&lab, &all);
        let none = BTreeSet::new();
        assert_eq!(o.ready(&none, &none), ["a"]);
        let a: BTreeSet<String> = ["a".to_string()].into();
        assert_eq!(o.ready(&a, &none), Vec::<String>::new());
        assert_eq!(o.ready(&a, &a), ["b"]);
        let some = lab.select(&["c".into()]).unwrap();
        assert_eq!(Order::new(&lab, &some).ready(&none, &none), ["c"]);
    }

    #[test]
    fn the_command_line_attaches_interfaces_to_switches_and_taps() {
        let lab = lab();
        let layout = Layout::new(Path::new("/s"));
        let p = machine_plan(
            &layout,
            2,
            lab.machine("c").unwrap(),
            Path::new("/img"),
            "/sbin/init",
            &HostDirs {
                lab: Some("/labs/l".into()),
                lab_read_only: true,
                home: Some("/home/u".into()),
            },
        );
        assert_eq!(p.args[0], "ubd0=/s/m/c/disk.cow,/img");
        assert!(p
            .args
            .contains(&"eth0=daemon,02:00:4c:00:02:00,unix,/s/sw/B.ctl".to_string()));
        assert!(p
            .args
            .contains(&"eth1=tuntap,,02:00:4c:00:02:01,10.0.0.1".to_string()));
        assert!(p.args.contains(&"mem=96M".to_string()));
        assert!(p.args.contains(&"UML_LAB_INIT=/sbin/init".to_string()));
        for w in [
            "hostlab=/labs/l",
            "UML_LAB_HOSTLAB_RO=1",
            "hosthome=/home/u",
        ] {
            assert!(p.args.contains(&w.to_string()), "{w}");
        }
        assert_eq!(p.domains, ["B"]);
        assert_eq!(p.taps, [(1, "10.0.0.2".to_string())]);
    }

    #[test]
    fn host_directories_with_white_space_are_left_out() {
        let h = HostDirs {
            lab: Some("/my labs/l".into()),
            lab_read_only: true,
            home: None,
        };
        assert!(h.args().is_empty());
        assert!(HostDirs::default().args().is_empty());
    }
}
