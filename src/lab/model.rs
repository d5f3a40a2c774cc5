//! A lab: the machines, their interfaces, the collision domains and the
//! start order, assembled from `lab.conf`, `lab.dep` and the directory
//! listing (a machine for every subdirectory but `shared/`, `_test/` and
//! hidden ones). [`Lab::assemble`] is pure; [`Lab::load`] reads the files.

use super::conf::{self, Attach, LabConf};
use super::dep::{self, Deps};
use super::{valid_name, Error, Result, Warning};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One machine of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Its name (also its hostname and `umid`).
    pub name: String,
    /// Its interfaces, by number.
    pub ifaces: BTreeMap<u32, Attach>,
    /// Kernel `mem=` value.
    pub mem: Option<String>,
    /// Its own root image, with the `lab.conf` line that named it.
    pub image: Option<(String, usize)>,
    /// `[con0]`: kept for the record; the console is always the lab's.
    pub con0: Option<String>,
    /// Extra kernel words.
    pub append: Vec<String>,
    /// `MACHINE/` exists (a tree to copy into its disk).
    pub has_dir: bool,
    /// `[host]`: the host that runs it in a lab split over hosts.
    pub host: Option<String>,
}

/// A collision domain joined to the same domain on other hosts (and to
/// Linux `vxlan` devices) over VXLAN: its switch runs with
/// `-vxlan VNI -peer ADDR[:PORT]... [-vxlan-local ADDR[:PORT]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    /// The VNI.
    pub vni: u32,
    /// Every host of the domain, this one included (left out when the
    /// switch starts; see [`Vxlan::switch_args`]).
    pub peers: Vec<std::net::SocketAddr>,
    /// The address the switch binds (default `0.0.0.0:4789`).
    pub local: Option<std::net::SocketAddr>,
}

impl Vxlan {
    /// The switch's VXLAN arguments on a host whose own addresses
    /// `is_local` tells: a peer at one of them on the local port is this
    /// host itself and is left out, so that every host runs the same
    /// `lab.conf`. `None` when no other peer remains.
    pub fn switch_args(&self, is_local: &dyn Fn(std::net::IpAddr) -> bool) -> Option<Vec<String>> {
        let port = self
            .local
            .map_or(crate::switch::vxlan::DEFAULT_PORT, |l| l.port());
        let others: Vec<_> = self
            .peers
            .iter()
            .filter(|p| !(p.port() == port && (is_local(p.ip()) || Some(**p) == self.local)))
            .collect();
        if others.is_empty() {
            return None;
        }
        let mut v = vec!["-vxlan".to_string(), self.vni.to_string()];
        for p in others {
            v.push("-peer".to_string());
            v.push(p.to_string());
        }
        if let Some(l) = self.local {
            v.push("-vxlan-local".to_string());
            v.push(l.to_string());
        }
        Some(v)
    }
}

/// One collision domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Run the switch as a hub.
    pub hub: bool,
    /// `(machine, interface)` attached, in lab order.
    pub members: Vec<(String, u32)>,
    /// Joined over VXLAN (`DOMAIN[vxlan]`).
    pub vxlan: Option<Vxlan>,
}

/// What a directory listing says (the I/O-free part of a lab directory).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Names of subdirectories.
    pub dirs: Vec<String>,
    /// Names of regular files.
    pub files: BTreeSet<String>,
}

/// A whole lab.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The lab directory.
    pub dir: PathBuf,
    /// Machines, in start order of preference (`machines=`, then
    /// `lab.conf` order, then directories by name).
    pub machines: Vec<Machine>,
    /// Collision domains by name.
    pub domains: BTreeMap<String, Domain>,
    /// `lab.dep`.
    pub deps: Deps,
    /// `LAB_*` values to show.
    pub info: Vec<(String, String)>,
    /// `LAB_IMAGE`, with its line.
    pub image: Option<(String, usize)>,
    /// Warnings met while reading.
    pub warnings: Vec<Warning>,
}

impl Lab {
    /// Reads the lab in `dir` (`lab.conf` and `lab.dep` are optional).
    pub fn load(dir: &Path) -> Result<Lab> {
        let read = |name: &str| -> Result<Option<String>> {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", path.display()))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(&path, "cannot read", e)),
            }
        };
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, "lab directory", e))?;
        if !meta.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: not a lab directory",
                dir.display()
            )));
        }
        let conf_text = read("lab.conf")?.unwrap_or_default();
        let dep_text = read("lab.dep")?;
        let mut listing = Listing::default();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "cannot list", e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(dir, "cannot list", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match std::fs::metadata(e.path()) {
                Ok(m) if m.is_dir() => listing.dirs.push(name),
                Ok(m) if m.is_file() => {
                    listing.files.insert(name);
                }
                _ => {}
            }
        }
        listing.dirs.sort();
        Lab::assemble(dir, &conf_text, dep_text.as_deref(), &listing)
    }

    /// Builds the lab from the texts of `lab.conf` and `lab.dep` and the
    /// directory listing.
    pub fn assemble(
        dir: &Path,
        conf_text: &str,
        dep_text: Option<&str>,
        listing: &Listing,
    ) -> Result<Lab> {
        let conf_file = dir.join("lab.conf");
        let (conf, mut warnings) = conf::parse(conf_text, &conf_file)?;
        let LabConf {
            machines: confs,
            order,
            machine_list,
            info,
            image,
            hubs,
            domains: domain_confs,
        } = conf;
        let mut names: Vec<String> = Vec::new();
        let mut dirs = BTreeSet::new();
        for d in &listing.dirs {
            if d.starts_with('.') || d == "shared" || d == "_test" {
                continue;
            }
            if !valid_name(d) {
                return Err(Error::Invalid(format!(
                    "{}: bad machine directory name: a name is 1 to 32 letters, digits, '_' or '-'",
                    dir.join(d).display()
                )));
            }
            dirs.insert(d.clone());
        }
        match &machine_list {
            Some((list, line)) => {
                for m in list {
                    if !names.contains(m) {
                        names.push(m.clone());
                    }
                }
                for m in order.iter().chain(dirs.iter()) {
                    if !names.contains(m) {
                        warnings.push(Warning(format!(
                            "{}:{line}: {m} is not in machines=; left out",
                            conf_file.display()
                        )));
                    }
                }
            }
            None => {
                for m in order.iter().chain(dirs.iter()) {
                    if !names.contains(m) {
                        names.push(m.clone());
                    }
                }
            }
        }
        let mut machines = Vec::new();
        let mut domains: BTreeMap<String, Domain> = BTreeMap::new();
        for name in &names {
            let c = confs.get(name).cloned().unwrap_or_default();
            let mut ifaces = BTreeMap::new();
            for (n, (attach, _line)) in c.ifaces {
                if let Attach::Domain { name: d, .. } = &attach {
                    domains
                        .entry(d.clone())
                        .or_insert_with(|| Domain {
                            hub: false,
                            members: Vec::new(),
                            vxlan: None,
                        })
                        .members
                        .push((name.clone(), n));
                }
                ifaces.insert(n, attach);
            }
            machines.push(Machine {
                name: name.clone(),
                ifaces,
                mem: c.mem,
                image: c.image,
                con0: c.con0,
                append: c.append,
                has_dir: dirs.contains(name),
                host: c.host.map(|(h, _)| h),
            });
        }
        for (d, dc) in domain_confs {
            let first = dc
                .vxlan
                .map(|(_, l)| l)
                .into_iter()
                .chain(dc.peers.iter().map(|(_, l)| *l))
                .chain(dc.local.map(|(_, l)| l))
                .min()
                .unwrap_or(0);
            let Some((vni, _)) = dc.vxlan else {
                let key = if dc.peers.is_empty() {
                    "vxlan-local"
                } else {
                    "peer"
                };
                return Err(Error::syntax(
                    &conf_file,
                    first,
                    format!("{d}[{key}] without {d}[vxlan]=VNI"),
                ));
            };
            if dc.peers.is_empty() {
                return Err(Error::syntax(
                    &conf_file,
                    first,
                    format!("{d}[vxlan] needs at least one {d}[peer]=ADDR[:PORT]"),
                ));
            }
            let vx = Vxlan {
                vni,
                peers: dc.peers.iter().map(|(p, _)| *p).collect(),
                local: dc.local.map(|(a, _)| a),
            };
            match domains.get_mut(&d) {
                Some(dom) => dom.vxlan = Some(vx),
                None => warnings.push(Warning(format!(
                    "{}:{first}: collision domain {d} has VXLAN settings but no machine uses it",
                    conf_file.display()
                ))),
            }
        }
        for (d, dom) in &domains {
            let hosts: BTreeSet<&str> = dom
                .members
                .iter()
                .filter_map(|(m, _)| {
                    machines
                        .iter()
                        .find(|x: &&Machine| &x.name == m)
                        .and_then(|x| x.host.as_deref())
                })
                .collect();
            if hosts.len() > 1 && dom.vxlan.is_none() {
                warnings.push(Warning(format!(
                    "{}: collision domain {d} has machines on hosts {} but no {d}[vxlan]: they will not reach each other",
                    conf_file.display(),
                    hosts.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for h in hubs {
            match domains.get_mut(&h) {
                Some(d) => d.hub = true,
                None => warnings.push(Warning(format!(
                    "{}: LAB_HUBS names {h}, which no machine uses",
                    conf_file.display()
                ))),
            }
        }
        let known: BTreeSet<String> = names.iter().cloned().collect();
        let deps = match dep_text {
            Some(t) => dep::parse(t, &dir.join("lab.dep"), &known)?,
            None => Deps::new(),
        };
        Ok(Lab {
            dir: dir.to_path_buf(),
            machines,
            domains,
            deps,
            info,
            image,
            warnings,
        })
    }

    /// The machine called `name`.
    pub fn machine(&self, name: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.name == name)
    }

    /// The machines `names` asks for (all when empty), in lab order; an
    /// unknown name is an error.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Machine>> {
        if let Some(bad) = names.iter().find(|n| self.machine(n).is_none()) {
            return Err(Error::Invalid(format!(
                "{bad}: no such machine in the lab {} (lab.conf)",
                self.dir.display()
            )));
        }
        Ok(self
            .machines
            .iter()
            .filter(|m| names.is_empty() || names.contains(&m.name))
            .collect())
    }

    /// The machines placed on `host` (`[host]=HOST`); an error when there
    /// are none.
    pub fn on_host(&self, host: &str) -> Result<Vec<String>> {
        let v: Vec<String> = self
            .machines
            .iter()
            .filter(|m| m.host.as_deref() == Some(host))
            .map(|m| m.name.clone())
            .collect();
        if v.is_empty() {
            return Err(Error::Invalid(format!(
                "--host {host}: no machine of the lab {} has [host]={host} (lab.conf)",
                self.dir.display()
            )));
        }
        Ok(v)
    }

    /// Whether `file` (such as `pc1.startup`) is in the lab directory.
    pub fn has_file(&self, file: &str) -> bool {
        self.dir.join(file).is_file()
    }

    /// The Graphviz picture of the lab: machines as boxes, domains as
    /// ellipses, an edge per interface labelled `ethN`.
    pub fn dot(&self) -> String {
        let mut s = String::from("graph lab {\n  node [shape=box];\n");
        for m in &self.machines {
            s.push_str(&format!("  \"m:{0}\" [label=\"{0}\"];\n", m.name));
        }
        for (d, dom) in &self.domains {
            let shape = if dom.hub { "diamond" } else { "ellipse" };
            let label = match &dom.vxlan {
                Some(v) => format!("{d}\\nvxlan {}", v.vni),
                None => d.clone(),
            };
            s.push_str(&format!(
                "  \"d:{d}\" [label=\"{label}\", shape={shape}];\n"
            ));
        }
        for m in &self.machines {
            for (n, a) in &m.ifaces {
                let target = match a {
                    Attach::Domain { name, .. } => format!("d:{name}"),
                    Attach::Tap { host_ip, .. } => {
                        s.push_str(&format!(
                            "  \"tap:{0}\" [label=\"host {0}\", shape=house];\n",
                            host_ip
                        ));
                        format!("tap:{host_ip}")
                    }
                };
                s.push_str(&format!(
                    "  \"m:{}\" -- \"{target}\" [label=\"eth{n}\"];\n",
                    m.name
                ));
            }
        }
        s.push_str("}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dirs: &[&str], files: &[&str]) -> Listing {
        Listing {
            dirs: dirs.iter().map(|s| s.to_string()).collect(),
            files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn machines_come_from_lab_conf_and_directories_and_domains_collect_members() {
        let lab = Lab::assemble(
            Path::new("/l"),
            "r1[0]=A\nr1[1]=B\npc1[0]=A\nLAB_HUBS=B\n",
            Some("pc1: r1\n"),
            &listing(&["pc2", "shared", "_test", ".uml_lab", "r1"], &[]),
        )
        .unwrap();
        let names: Vec<_> = lab.machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["r1", "pc1", "pc2"]);
        assert_eq!(
            lab.domains["A"].members,
            [("r1".to_string(), 0), ("pc1".to_string(), 0)]
        );
        assert!(lab.domains["B"].hub);
        assert!(!lab.domains["A"].hub);
        assert!(lab.machine("r1").unwrap().has_dir);
        assert!(lab.deps["pc1"].contains_key("r1"));
        let dot = lab.dot();
        assert!(
            dot.contains("\"m:r1\" -- \"d:B\" [label=\"eth1\"]"),
            "{dot}"
        );
    }

    #[test]
    fn machines_list_sets_the_set_and_the_order() {
        let lab = Lab::assemble(
            Path::new("/l"),
            "machines=\"b a\"\na[0]=X\nb[0]=X\nc[0]=X\n",
            None,
            &listing(&[], &[]),
        )
        .unwrap();
        let names: Vec<_> = lab.machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert!(lab
            .warnings
            .iter()
            .any(|w| w.0.contains("c is not in machines=")));
    }

    #[test]
    fn a_bad_directory_name_and_an_unknown_selected_machine_are_errors() {
        let e = Lab::assemble(Path::new("/l"), "", None, &listing(&["pc 1"], &[]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/l/pc 1: bad machine directory name"), "{e}");
        let lab = Lab::assemble(Path::new("/l"), "a[0]=A", None, &listing(&[], &[])).unwrap();
        let e = lab.select(&["zz".into()]).unwrap_err().to_string();
        assert!(e.starts_with("zz: no such machine"), "{e}");
        assert_eq!(lab.select(&[]).unwrap().len(), 1);
    }

    #[test]
    fn errors_in_lab_dep_name_lab_dep() {
        let e = Lab::assemble(
            Path::new("/l"),
            "a[0]=A\nb[0]=A",
            Some("a: b\nb: a\n"),
            &listing(&[], &[]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("/l/lab.dep:"), "{e}");
        assert!(e.contains("dependency cycle"), "{e}");
    }

    #[test]
    fn vxlan_keys_make_a_domain_and_each_host_leaves_itself_out_of_the_peers() {
        let lab = Lab::assemble(
            Path::new("/l"),
            "a[0]=A\na[host]=h1\nb[0]=A\nb[host]=h2\nc[0]=C\nc[host]=h1\nd[0]=C\nd[host]=h2\n\
             A[vxlan]=42\nA[peer]=10.0.0.1, 10.0.0.2\nA[peer]=10.0.0.3:4790\n",
            None,
            &listing(&[], &[]),
        )
        .unwrap();
        let vx = lab.domains["A"].vxlan.clone().unwrap();
        assert_eq!(vx.vni, 42);
        assert_eq!(vx.peers.len(), 3);
        let me = |ip: std::net::IpAddr| ip.to_string() == "10.0.0.1";
        assert_eq!(
            vx.switch_args(&me).unwrap(),
            [
                "-vxlan",
                "42",
                "-peer",
                "10.0.0.2:4789",
                "-peer",
                "10.0.0.3:4790"
            ]
        );
        let all = |_: std::net::IpAddr| true;
        assert_eq!(
            vx.switch_args(&all).unwrap(),
            ["-vxlan", "42", "-peer", "10.0.0.3:4790"]
        );
        assert_eq!(lab.machine("b").unwrap().host.as_deref(), Some("h2"));
        assert_eq!(lab.on_host("h1").unwrap(), ["a", "c"]);
        assert!(lab
            .on_host("h9")
            .unwrap_err()
            .to_string()
            .contains("--host h9"));
        // C spans two hosts without VXLAN: a warning names it.
        assert!(
            lab.warnings.iter().any(|w| w
                .0
                .contains("collision domain C has machines on hosts h1, h2")),
            "{:?}",
            lab.warnings
        );
        assert!(!lab.warnings.iter().any(|w| w.0.contains("domain A")));
        assert!(
            lab.dot()
                .contains("[label=\"A\\nvxlan 42\", shape=ellipse]"),
            "{}",
            lab.dot()
        );
    }

    #[test]
    fn bad_vxlan_keys_are_errors_naming_the_line() {
        let e = |conf: &str| {
            Lab::assemble(Path::new("/l"), conf, None, &listing(&[], &[]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e("a[0]=A\nA[vxlan]=x\n"),
            "/l/lab.conf:2: A[vxlan]: 'x' is not a VNI (0 to 16777215)"
        );
        assert!(e("a[0]=A\nA[vxlan]=1\nA[peer]=h:1\n")
            .starts_with("/l/lab.conf:3: A[peer]: 'h:1' is not an address"));
        assert_eq!(
            e("a[0]=A\n\nA[vxlan-local]=1.2.3.4\n"),
            "/l/lab.conf:3: A[vxlan-local] without A[vxlan]=VNI"
        );
        assert!(e("a[0]=A\nA[vxlan]=1\n")
            .starts_with("/l/lab.conf:2: A[vxlan] needs at least one A[peer]"));
        assert!(e("a[0]=A\nA[vxlan]=1\nA[vxlan]=2\n")
            .starts_with("/l/lab.conf:3: A[vxlan] given twice"));
        assert!(e("a[host]=x/y\n").starts_with("/l/lab.conf:1: a[host]='x/y'"));
    }

    proptest::proptest! {
        /// The fuzz target `lab_conf`'s property, on lab-like text: a lab
        /// is assembled or refused with one line, and an accepted lab has
        /// usable names and acyclic dependencies.
        #[test]
        fn random_bytes_never_panic_lab_assemble(
            conf in proptest::collection::vec("[a-c0-9\\[\\]=\"'#/,: .]{0,16}", 0..10),
            dep in proptest::option::of(proptest::collection::vec("[a-c0-9:# \\\\]{0,12}", 0..6)),
            dirs in proptest::collection::vec("[a-c0-9._ -]{0,4}", 0..4),
        ) {
            let dep = dep.map(|d| d.join("\n"));
            let l = listing(&dirs.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
            match Lab::assemble(Path::new("/l"), &conf.join("\n"), dep.as_deref(), &l) {
                Ok(lab) => {
                    for m in &lab.machines {
                        proptest::prop_assert!(crate::lab::valid_name(&m.name));
                    }
                    proptest::prop_assert!(
                        crate::lab::dep::check_acyclic(&lab.deps, Path::new("/l/lab.dep")).is_ok()
                    );
                }
                Err(e) => proptest::prop_assert!(!e.to_string().contains('\n')),
            }
        }
    }
}
