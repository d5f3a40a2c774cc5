//! `uml_lab image build`: a Debian root image fit for labs, made with
//! debootstrap (minbase plus the network tools Netkit labs use), adjusted
//! for a UML console, and written as ext3 with `mke2fs -d`.
//!
//! ```text
//!   debootstrap --variant=minbase --include=PACKAGES SUITE TREE MIRROR
//!   TREE: root password emptied, a getty on `console` (no VT gettys),
//!         fstab for /dev/ubda, no /etc/hostname (the lab names machines),
//!         downloaded .debs dropped, the Netkit-way startup hook
//!   mke2fs -t ext3 -d TREE OUT.build/root_fs SIZE ── rename ──> OUT
//! ```
//!
//! The image needs nothing for `uml_lab` itself: its init wrapper runs
//! the startup scripts and then execs the image's sysvinit. For kernels
//! started the way Netkit starts them (`linux.uml ... name=M hostlab=DIR`)
//! the image runs the scripts itself, as Netkit's images do: an inittab
//! `wait` entry after runlevel 2's scripts mounts `DIR` (hostfs) at
//! `/hostlab` and runs `shared.startup` and `M.startup` from there.
//!
//! The whole recipe is one text ([`Recipe::text`]): what is installed and
//! every file written, so a cache of built images can be keyed by it.
//! Everything is built in a directory beside `OUT` and only the finished
//! image is renamed into place; a failed build leaves `OUT` untouched and
//! its debootstrap log at `OUT.debootstrap.log`.

use super::{Error, Result};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The suite debootstrap installs by default.
pub const SUITE: &str = "bookworm";
/// The archive debootstrap fetches from by default.
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// The image's size in MiB by default (a sparse file).
pub const SIZE_MIB: u64 = 1024;

/// What every image gets: sysvinit and a console login, and the tools of
/// Netkit's lab images (addresses and routes old and new style, ping,
/// capture, filtering, bridges, VLANs, traceroute, netcat).
pub const PACKAGES: &[&str] = &[
    "sysvinit-core",
    "login",
    "passwd",
    "ifupdown",
    "iproute2",
    "net-tools",
    "iputils-ping",
    "iputils-arping",
    "iputils-tracepath",
    "traceroute",
    "procps",
    "tcpdump",
    "iptables",
    "bridge-utils",
    "vlan",
    "netcat-openbsd",
];

/// The image's fstab: the root on the first UML block device.
pub const FSTAB: &str = "/dev/ubda / ext3 defaults,errors=remount-ro 0 0\n";

/// The image's `/etc/hosts`.
pub const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// Where the Netkit-way startup hook lives in the image.
pub const NETKIT_HOOK_PATH: &str = "etc/uml_lab/netkit-startup";

/// The Netkit-way startup hook: for a kernel whose command line has
/// `hostlab=DIR` (as Netkit's `vstart` gives it), mount `DIR` at
/// `/hostlab` (and `hosthome=` at `/hosthome`) through hostfs, take the
/// name from `name=`, and run the lab's startup scripts from there.
/// Without `hostlab=` (under `uml_lab`, whose init wrapper ran them) it
/// does nothing.
pub const NETKIT_HOOK: &str = r#"#!/bin/sh
# Written by uml_lab image build: Netkit's phase 1 and 2 for kernels
# started the Netkit way (hostlab= and name= on the kernel command line).
name= hostlab= hosthome=
for w in $(cat /proc/cmdline); do
  case "$w" in
    name=*) name=${w#name=} ;;
    hostlab=*) hostlab=${w#hostlab=} ;;
    hosthome=*) hosthome=${w#hosthome=} ;;
  esac
done
[ -n "$hostlab" ] || exit 0
[ -n "$name" ] && hostname "$name"
mkdir -p /hostlab && mount -t hostfs -o "$hostlab" none /hostlab
if [ -n "$hosthome" ]; then
  mkdir -p /hosthome && mount -t hostfs -o "$hosthome" none /hosthome
fi
for s in shared.startup "$name.startup"; do
  if [ -f "/hostlab/$s" ]; then
    echo "uml_lab: running $s"
    sh "/hostlab/$s"
  fi
done
exit 0
"#;

/// The inittab line that runs [`NETKIT_HOOK`] once runlevel 2's scripts
/// are done, before the console getty.
pub const INITTAB_HOOK: &str = "ul:2345:wait:/etc/uml_lab/netkit-startup";
/// The console getty.
pub const INITTAB_GETTY: &str = "C0:2345:respawn:/sbin/getty 38400 console";

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Every package debootstrap adds to minbase, sorted.
    pub packages: Vec<String>,
    /// The suite.
    pub suite: String,
    /// The archive.
    pub mirror: String,
    /// The image's size in MiB.
    pub size_mib: u64,
}

fn valid_package(p: &str) -> bool {
    // Debian policy 5.6.1: lower case letters, digits, + - . ; at least
    // two characters, starting with a letter or digit.
    p.len() >= 2
        && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

impl Recipe {
    /// The recipe with `extra` packages (each word a name; words split at
    /// commas and spaces) on top of [`PACKAGES`]; every input checked.
    pub fn new(extra: &[String], suite: &str, mirror: &str, size_mib: u64) -> Result<Recipe> {
        let mut packages: Vec<String> = PACKAGES.iter().map(|s| s.to_string()).collect();
        for word in extra
            .iter()
            .flat_map(|e| e.split([',', ' ', '\t', '\n']))
            .filter(|w| !w.is_empty())
        {
            if !valid_package(word) {
                return Err(Error::Invalid(format!(
                    "--packages: {word:?} is not a Debian package name"
                )));
            }
            packages.push(word.to_string());
        }
        packages.sort();
        packages.dedup();
        if suite.is_empty()
            || !suite
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Error::Invalid(format!(
                "--suite: {suite:?} is not a suite name"
            )));
        }
        let scheme_ok = ["http://", "https://", "file:///"]
            .iter()
            .any(|s| mirror.starts_with(s));
        if !scheme_ok || mirror.bytes().any(|b| b.is_ascii_whitespace() || b == b',') {
            return Err(Error::Invalid(format!(
                "--mirror: {mirror:?} is not an http://, https:// or file:/// URL"
            )));
        }
        if !(256..=1 << 20).contains(&size_mib) {
            return Err(Error::Invalid(format!(
                "--size: {size_mib} MiB: give 256 to 1048576"
            )));
        }
        Ok(Recipe {
            packages,
            suite: suite.to_string(),
            mirror: mirror.to_string(),
            size_mib,
        })
    }

    /// debootstrap's arguments (before TREE and MIRROR).
    pub fn debootstrap_args(&self) -> Vec<String> {
        vec![
            "--variant=minbase".to_string(),
            format!("--include={}", self.packages.join(",")),
            self.suite.clone(),
        ]
    }

    /// Every step and every file written, as text: equal texts make equal
    /// images (up to the archive's changes), so it keys caches.
    pub fn text(&self) -> String {
        format!(
            "debootstrap {} TREE {}\n\
             shadow: root password emptied\n\
             inittab: tty gettys commented out; {INITTAB_HOOK}; {INITTAB_GETTY}\n\
             fstab: {FSTAB}\
             hosts: {HOSTS}\
             hostname: removed\n\
             var/cache/apt/archives/*.deb: removed\n\
             {NETKIT_HOOK_PATH} (0755):\n{NETKIT_HOOK}\
             mke2fs -q -F -t ext3 -d TREE root_fs {}M\n",
            self.debootstrap_args().join(" "),
            self.mirror,
            self.size_mib
        )
    }
}

/// `/etc/shadow` with root's password emptied (a console login without
/// a password, as Netkit's images have).
pub fn empty_root_password(shadow: &str) -> String {
    shadow
        .lines()
        .map(|l| match l.strip_prefix("root:") {
            Some(rest) => {
                let after = rest.split_once(':').map_or("", |(_, a)| a);
                format!("root::{after}\n")
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// `/etc/inittab` for a UML console: the virtual-terminal gettys
/// commented out (a UML guest has no VT), then [`INITTAB_HOOK`] and
/// [`INITTAB_GETTY`]. Idempotent.
pub fn console_inittab(inittab: &str) -> String {
    let mut out: String = inittab
        .lines()
        .filter(|l| *l != INITTAB_HOOK && *l != INITTAB_GETTY)
        .map(|l| {
            let vt = l.as_bytes().first().is_some_and(u8::is_ascii_digit) && l.contains("getty");
            if vt {
                format!("#{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    out.push_str(INITTAB_HOOK);
    out.push('\n');
    out.push_str(INITTAB_GETTY);
    out.push('\n');
    out
}

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A step begins.
    Step(String),
    /// A line of the running step's output (debootstrap's `I: ...`).
    Detail(String),
}

/// `name` in `PATH`, then in `/usr/sbin` and `/sbin` (debootstrap lives
/// there, outside many users' `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(path, op, e)
}

/// Builds the image of `recipe` at `out`. Needs root (debootstrap does);
/// says so in one line before anything is written.
pub fn build(recipe: &Recipe, out: &Path, report: &mut dyn FnMut(Progress)) -> Result<()> {
    if out.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: is a directory (give the image file's path)",
            out.display()
        )));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file name", out.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::Invalid(format!(
            "{}: no such directory",
            parent.display()
        )));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Invalid(
            "image build: debootstrap needs root: run it as root (sudo); the image it writes is for any user"
                .to_string(),
        ));
    }
    let debootstrap = find_program("debootstrap").ok_or_else(|| {
        Error::Invalid("image build: debootstrap not found (apt-get install debootstrap)".into())
    })?;
    let mke2fs = find_program("mke2fs").ok_or_else(|| {
        Error::Invalid("image build: mke2fs not found (apt-get install e2fsprogs)".into())
    })?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.build-"))
        .tempdir_in(&parent)
        .map_err(io(&parent, "cannot make a build directory in"))?;
    let tree = tmp.path().join("tree");
    let log = tmp.path().join("debootstrap.log");
    report(Progress::Step(format!(
        "debootstrap {} from {} ({} packages over minbase)",
        recipe.suite,
        recipe.mirror,
        recipe.packages.len()
    )));
    if let Err(e) = debootstrap_into(&debootstrap, recipe, &tree, &log, report) {
        let kept = parent.join(format!("{name}.debootstrap.log"));
        let _ = std::fs::copy(&log, &kept);
        return Err(Error::Invalid(format!("{e}; log: {}", kept.display())));
    }
    report(Progress::Step(
        "adjusting the tree for a UML console".into(),
    ));
    customize(&tree)?;
    report(Progress::Step(format!(
        "writing the ext3 image ({} MiB, sparse)",
        recipe.size_mib
    )));
    let image = tmp.path().join("root_fs");
    let made = Command::new(&mke2fs)
        .args(["-q", "-F", "-t", "ext3", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg(format!("{}M", recipe.size_mib))
        .stdin(Stdio::null())
        .output()
        .map_err(io(&mke2fs, "cannot run"))?;
    if !made.status.success() {
        let why = String::from_utf8_lossy(&made.stderr);
        return Err(Error::Invalid(format!(
            "mke2fs failed ({}): {} (a larger --size?)",
            made.status,
            why.trim().replace('\n', " | ")
        )));
    }
    std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o644))
        .map_err(io(&image, "cannot chmod"))?;
    std::fs::rename(&image, out).map_err(io(out, "cannot rename the image to"))?;
    report(Progress::Step("removing the build tree".into()));
    let tmp_path = tmp.path().to_path_buf();
    tmp.close().map_err(io(&tmp_path, "cannot remove"))?;
    Ok(())
}

fn debootstrap_into(
    debootstrap: &Path,
    recipe: &Recipe,
    tree: &Path,
    log: &Path,
    report: &mut dyn FnMut(Progress),
) -> Result<()> {
    let mut log_file = std::fs::File::create(log).map_err(io(log, "cannot create"))?;
    let err_file = log_file.try_clone().map_err(io(log, "cannot reopen"))?;
    let mut child = Command::new(debootstrap)
        .args(recipe.debootstrap_args())
        .arg(tree)
        .arg(&recipe.mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err_file)
        .spawn()
        .map_err(io(debootstrap, "cannot run"))?;
    let mut last = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            use std::io::Write;
            let _ = writeln!(log_file, "{line}");
            if !line.trim().is_empty() {
                last.clone_from(&line);
                report(Progress::Detail(line));
            }
        }
    }
    let status = child.wait().map_err(io(debootstrap, "cannot wait for"))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let why = text
        .lines()
        .rev()
        .find(|l| l.starts_with("E:"))
        .map_or(last, str::to_string);
    Err(Error::Invalid(format!(
        "debootstrap failed ({status}): {}",
        why.trim()
    )))
}

/// The changes to a fresh debootstrap tree (see the module docs).
fn customize(tree: &Path) -> Result<()> {
    let edit = |rel: &str, f: &dyn Fn(&str) -> String| -> Result<()> {
        let p = tree.join(rel);
        let text = std::fs::read_to_string(&p).map_err(io(&p, "cannot read"))?;
        std::fs::write(&p, f(&text)).map_err(io(&p, "cannot write"))
    };
    edit("etc/shadow", &empty_root_password)?;
    edit("etc/inittab", &console_inittab)?;
    for (rel, text) in [("etc/fstab", FSTAB), ("etc/hosts", HOSTS)] {
        let p = tree.join(rel);
        std::fs::write(&p, text).map_err(io(&p, "cannot write"))?;
    }
    let hostname = tree.join("etc/hostname");
    match std::fs::remove_file(&hostname) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&hostname, "cannot remove", e)),
    }
    let archives = tree.join("var/cache/apt/archives");
    if let Ok(rd) = std::fs::read_dir(&archives) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                std::fs::remove_file(e.path()).map_err(io(&archives, "cannot clean"))?;
            }
        }
    }
    let hook = tree.join(NETKIT_HOOK_PATH);
    if let Some(dir) = hook.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir, "cannot create"))?;
    }
    std::fs::write(&hook, NETKIT_HOOK).map_err(io(&hook, "cannot write"))?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .map_err(io(&hook, "cannot chmod"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_loses_its_password_and_nobody_else_does() {
        let s = "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
        assert_eq!(
            empty_root_password(s),
            "root::19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
        );
    }

    #[test]
    fn the_inittab_gets_a_console_getty_after_the_hook_and_no_vt_gettys() {
        let t = "id:2:initdefault:\nl2:2:wait:/etc/init.d/rc 2\n\
                 1:2345:respawn:/sbin/getty --noclear 38400 tty1\n2:23:respawn:/sbin/getty 38400 tty2\n";
        let once = console_inittab(t);
        assert!(once.contains("#1:2345:respawn:/sbin/getty --noclear 38400 tty1\n"));
        assert!(once.contains("#2:23:respawn"));
        let rc = once.find("l2:2:wait").unwrap();
        let hook = once.find(INITTAB_HOOK).unwrap();
        let getty = once.find(INITTAB_GETTY).unwrap();
        assert!(rc < hook && hook < getty, "{once}");
        assert_eq!(console_inittab(&once).matches(INITTAB_GETTY).count(), 1);
    }

    #[test]
    fn packages_are_checked_merged_and_keyed_by_the_recipe_text() {
        let r = Recipe::new(&["frr, tcpdump".into(), "vim".into()], SUITE, MIRROR, 1024).unwrap();
        assert!(r.packages.contains(&"frr".to_string()));
        assert_eq!(r.packages.iter().filter(|p| *p == "tcpdump").count(), 1);
        let base = Recipe::new(&[], SUITE, MIRROR, 1024).unwrap();
        assert_ne!(r.text(), base.text());
        assert!(base.text().contains(NETKIT_HOOK));
        for bad in ["Frr", "a", "x;rm", "-o"] {
            assert!(
                Recipe::new(&[bad.into()], SUITE, MIRROR, 1024).is_err(),
                "{bad}"
            );
        }
        assert!(Recipe::new(&[], "../x", MIRROR, 1024).is_err());
        assert!(Recipe::new(&[], SUITE, "ftp://x", 1024).is_err());
        assert!(Recipe::new(&[], SUITE, MIRROR, 10).is_err());
    }

    #[test]
    fn the_netkit_hook_does_nothing_without_hostlab() {
        let guard = NETKIT_HOOK.find("[ -n \"$hostlab\" ] || exit 0").unwrap();
        assert!(guard < NETKIT_HOOK.find("mount").unwrap());
    }
}
