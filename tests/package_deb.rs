//! The Debian package (`packaging/build-deb`, `cargo deb`): lintian finds no
//! errors in it, and it installs over Debian's uml-utilities beside
//! user-mode-linux, sets `uml_net` up as Debian does, runs its init script
//! and ifupdown hooks, and purges back to a machine on which Debian's
//! uml-utilities is reinstalled. Root only; the machine always ends with
//! Debian's uml-utilities installed (a guard reinstalls it when a step
//! fails), because the other tests compare against it.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

const DEBIAN_CACHE: &str = "/var/cache/umlkit-tests/debs";

/// Builds the .deb once per test binary from the release binaries that
/// `cargo test --release` built; `None` (after a loud skip) without
/// cargo-deb.
fn deb(test: &str) -> Option<PathBuf> {
    static DEB: OnceLock<Mutex<Option<PathBuf>>> = OnceLock::new();
    let mut built = DEB.get_or_init(|| Mutex::new(None)).lock().unwrap();
    if let Some(path) = built.as_ref() {
        return Some(path.clone());
    }
    if !common::have_peers(test, &["cargo-deb", "dpkg-deb", "strip", "gzip"]) {
        return None;
    }
    let release = common::bin("uml_mkcow").parent().unwrap().to_path_buf();
    let target = release.parent().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("packaging/build-deb"))
        .env("UMLKIT_DEB_NO_BUILD", "1")
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("run packaging/build-deb");
    assert!(
        out.status.success(),
        "packaging/build-deb failed:\n{}",
        common::stderr(&out)
    );
    let path = root.join(
        common::stdout(&out)
            .lines()
            .last()
            .expect("deb path")
            .trim(),
    );
    assert!(path.is_file(), "{} not built", path.display());
    *built = Some(path.clone());
    Some(path)
}

fn sh(script: &str) -> Output {
    common::run("/bin/sh", ["-c", script])
}

fn sh_ok(script: &str) -> String {
    let out = sh(script);
    assert!(
        out.status.success(),
        "sh -c {script:?} failed ({}):\n{}{}",
        out.status,
        common::stdout(&out),
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// dpkg's state of `package`: the second letter of its status ('i'
/// installed, 'c' only conffiles left, 'n' not installed, ...).
fn state(package: &str) -> char {
    let out = common::run("dpkg-query", ["-W", "-f=${db:Status-Abbrev}", package]);
    common::stdout(&out).chars().nth(1).unwrap_or('n')
}

/// Debian's uml-utilities .deb for the installed version, from apt's cache
/// or downloaded into ours, before anything is changed.
fn debian_deb(test: &str) -> Option<PathBuf> {
    let version = common::stdout(&common::run(
        "dpkg-query",
        ["-W", "-f=${Version}", "uml-utilities"],
    ));
    let file = format!(
        "uml-utilities_{}_{}.deb",
        version.replace(':', "%3a"),
        common::stdout(&common::run("dpkg", ["--print-architecture"])).trim()
    );
    for dir in ["/var/cache/apt/archives", DEBIAN_CACHE] {
        let path = Path::new(dir).join(&file);
        if path.is_file() {
            return Some(path);
        }
    }
    std::fs::create_dir_all(DEBIAN_CACHE).expect("create the .deb cache");
    let out = Command::new("apt-get")
        .args(["download", &format!("uml-utilities={version}")])
        .current_dir(DEBIAN_CACHE)
        .output()
        .expect("run apt-get download");
    let path = Path::new(DEBIAN_CACHE).join(&file);
    if !out.status.success() || !path.is_file() {
        common::skip(
            test,
            &format!(
                "cannot get Debian's {file} to restore uml-utilities with: {}",
                common::stderr(&out).trim()
            ),
        );
        return None;
    }
    Some(path)
}

/// The uml-net user and group as Debian's postinst made them.
struct UmlNet {
    uid: u32,
    gid: u32,
}

impl UmlNet {
    fn now() -> Option<UmlNet> {
        let user = nix::unistd::User::from_name("uml-net").ok()??;
        let group = nix::unistd::Group::from_name("uml-net").ok()??;
        Some(UmlNet {
            uid: user.uid.as_raw(),
            gid: group.gid.as_raw(),
        })
    }

    /// Makes the user and group again with the same ids, if they are gone.
    fn restore(&self) {
        if nix::unistd::Group::from_name("uml-net")
            .ok()
            .flatten()
            .is_none()
        {
            sh(&format!("groupadd --system --gid {} uml-net", self.gid));
        }
        if nix::unistd::User::from_name("uml-net")
            .ok()
            .flatten()
            .is_none()
        {
            sh(&format!(
                "useradd --system --uid {} --gid uml-net --home-dir /nonexistent \
                 --no-create-home --shell /usr/sbin/nologin uml-net",
                self.uid
            ));
        }
    }
}

/// Puts Debian's uml-utilities back when the test ends, passed or failed:
/// stops a switch our init script started, purges umlkit, brings back the
/// uml-net user if a step removed it, reinstalls Debian's package.
struct Restore {
    debian_deb: PathBuf,
    uml_net: UmlNet,
}

impl Drop for Restore {
    fn drop(&mut self) {
        sh(
            "[ -x /etc/init.d/uml-utilities ] && grep -q umlkit /etc/init.d/uml-utilities \
            && /etc/init.d/uml-utilities stop >/dev/null 2>&1; true",
        );
        if state("umlkit") != 'n' {
            sh("dpkg --purge umlkit >/dev/null 2>&1");
        }
        self.uml_net.restore();
        if state("uml-utilities") != 'i' {
            let out = common::run("dpkg", [Path::new("-i"), &self.debian_deb]);
            if !out.status.success() {
                eprintln!(
                    "dpkg -i {}: {}",
                    self.debian_deb.display(),
                    common::stderr(&out)
                );
                sh("DEBIAN_FRONTEND=noninteractive apt-get install -y uml-utilities");
            }
        }
        if state("uml-utilities") != 'i' {
            eprintln!("\n*** package_deb: could NOT reinstall Debian's uml-utilities ***\n");
        }
    }
}

#[test]
fn lintian_reports_no_errors_for_the_deb() {
    let test = "lintian_reports_no_errors_for_the_deb";
    if !common::have_peers(test, &["lintian"]) {
        return;
    }
    let Some(deb) = deb(test) else { return };
    let out = common::run(
        "lintian",
        [Path::new("--tag-display-limit"), Path::new("0"), &deb],
    );
    let report = common::stdout(&out) + &common::stderr(&out);
    eprintln!("lintian {}:\n{report}", deb.display());
    let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    assert!(
        !report.lines().any(|l| l.starts_with("W:")),
        "lintian warnings (fix them or override them with a reason in packaging/lintian-overrides):\n{report}"
    );
}

#[test]
fn deb_replaces_uml_utilities_beside_user_mode_linux_and_purges_back_to_it() {
    let test = "deb_replaces_uml_utilities_beside_user_mode_linux_and_purges_back_to_it";
    if !common::have_root(test)
        || !common::have_peers(
            test,
            &[
                "dpkg",
                "dpkg-statoverride",
                "apt-get",
                "man",
                "unshare",
                "ip",
                "linux.uml",
            ],
        )
    {
        return;
    }
    for package in ["uml-utilities", "user-mode-linux"] {
        if state(package) != 'i' {
            common::skip(test, &format!("Debian's {package} is not installed"));
            return;
        }
    }
    let Some(uml_net) = UmlNet::now() else {
        common::skip(
            test,
            "no uml-net user and group (Debian's uml-utilities makes them)",
        );
        return;
    };
    let Some(debian_deb) = debian_deb(test) else {
        return;
    };
    let Some(ours) = deb(test) else { return };
    let guard = Restore {
        debian_deb: debian_deb.clone(),
        uml_net,
    };

    // Over uml-utilities: dpkg removes it (Conflicts + Replaces), keeps
    // user-mode-linux.
    sh_ok(&format!("dpkg -i {} 2>&1", ours.display()));
    assert_eq!(state("umlkit"), 'i');
    assert_ne!(state("uml-utilities"), 'i', "uml-utilities still installed");
    assert_eq!(state("user-mode-linux"), 'i');
    assert!(
        Path::new("/usr/bin/linux.uml").is_file(),
        "linux.uml is gone"
    );
    for file in [
        "/usr/bin/tunctl",
        "/usr/bin/uml_net",
        "/usr/bin/uml_switch",
        "/usr/bin/uml_watchdog",
        "/usr/lib/uml/port-helper",
        "/etc/init.d/uml-utilities",
    ] {
        let owner = sh_ok(&format!("dpkg -S {file}"));
        assert!(owner.starts_with("umlkit: "), "{file} belongs to {owner}");
    }

    // uml_net: setuid root, run by group uml-net only.
    let meta = std::fs::metadata("/usr/bin/uml_net").unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o4754, "mode of /usr/bin/uml_net");
    assert_eq!((meta.uid(), meta.gid()), (0, guard.uml_net.gid));
    assert!(sh_ok("dpkg-statoverride --list /usr/bin/uml_net").starts_with("root uml-net 4754 "));

    // Every binary runs from /usr/bin; our kernel is the "linux" alternative.
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("root_fs");
    std::fs::write(&backing, vec![0u8; 1 << 20]).unwrap();
    let cow = dir.path().join("guest.cow");
    common::run_ok("/usr/bin/uml_mkcow", [&cow, &backing]);
    assert!(cow.is_file(), "uml_mkcow from /usr/bin made no COW file");
    let tunctl = common::run("/usr/bin/tunctl", ["-h"]);
    assert!(common::stderr(&tunctl).contains("Create: /usr/bin/tunctl"));
    for name in common_bins().into_iter().filter(|n| n != "port-helper") {
        let path = if name == "linux" {
            "/usr/bin/linux".into()
        } else {
            format!("/usr/bin/{name}")
        };
        assert!(Path::new(&path).is_file(), "{path} not installed");
    }
    assert_eq!(
        std::fs::canonicalize("/usr/bin/linux").unwrap(),
        Path::new("/usr/bin/linux.umlkit")
    );
    // linux.uml's port: and xterm consoles run it from there.
    common::run_ok("/usr/lib/uml/port-helper", ["--help"]);
    assert!(
        common::stdout(&common::run_ok("/usr/bin/linux", ["--version"]))
            .starts_with(|c: char| c.is_ascii_digit())
    );

    // Man pages gzipped (and readable), completions where each shell looks.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("man")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(section) = name.rsplit('.').next().filter(|s| s.len() == 1) else {
            continue;
        };
        let installed = if name == "linux.1" {
            "linux.umlkit.1".to_string()
        } else {
            name.clone()
        };
        let page = format!("/usr/share/man/man{section}/{installed}.gz");
        let text = sh_ok(&format!("MANWIDTH=80 man -l -P cat {page} 2>/dev/null"));
        let stem = name.rsplit_once('.').unwrap().0;
        assert!(text.contains(stem), "{page} does not render with man -l");
    }
    assert_eq!(
        std::fs::canonicalize("/usr/share/man/man1/linux.1.gz").unwrap(),
        Path::new("/usr/share/man/man1/linux.umlkit.1.gz")
    );
    for entry in std::fs::read_dir(root.join("completions")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let installed = if let Some(tool) = name.strip_suffix(".bash") {
            format!("/usr/share/bash-completion/completions/{tool}")
        } else if name.ends_with(".fish") {
            format!("/usr/share/fish/vendor_completions.d/{name}")
        } else if name.starts_with('_') {
            format!("/usr/share/zsh/vendor-completions/{name}")
        } else {
            continue;
        };
        assert!(Path::new(&installed).is_file(), "{installed} not installed");
    }

    // The ifupdown hooks and the init script, in a network namespace: a
    // TAP owned by uml-net (tunctl_user), the switch on it as a daemon
    // (UML_SWITCH_OPTIONS="-tap ..."), stopped, the TAP deleted on ifdown.
    std::fs::write(
        "/etc/default/uml-utilities",
        "UML_SWITCH_OPTIONS=\"-tap umlkpkg0\"\n",
    )
    .unwrap();
    let hooks = sh_ok(
        "exec unshare --net --mount sh -ec '
         mount -t sysfs sysfs /sys
         trap \"/etc/init.d/uml-utilities stop >/dev/null 2>&1 || true\" EXIT
         export IFACE=umlkpkg0 IF_TUNCTL_USER=uml-net
         export IF_UML_PROXY_ARP=\"192.0.2.7 192.0.2.8\" IF_UML_PROXY_ETHER=umlkpkgd
         ip tuntap add mode tap name umlkpkgd
         /etc/network/if-pre-up.d/uml-utilities
         echo owner=$(cat /sys/class/net/umlkpkg0/owner)
         ip link set umlkpkg0 up
         /etc/network/if-up.d/uml-utilities
         echo proxy_arp=$(cat /proc/sys/net/ipv4/conf/umlkpkg0/proxy_arp)
         ip route show 192.0.2.8 | cut -d\" \" -f1-3 | sed \"s/^/route /\"
         ip neigh show proxy | cut -d\" \" -f1-3 | sed \"s/^/proxy /\"
         /etc/init.d/uml-utilities start
         test -S /var/run/uml-utilities/uml_switch.ctl && echo socket
         echo user=$(ps -o user= -p $(cat /var/run/uml-utilities/uml_switch.pid))
         echo carrier=$(cat /sys/class/net/umlkpkg0/carrier)
         /etc/init.d/uml-utilities status >/dev/null && echo running
         /etc/init.d/uml-utilities stop
         test -e /var/run/uml-utilities/uml_switch.ctl || echo socket-gone
         /etc/network/if-post-down.d/uml-utilities
         test -e /sys/class/net/umlkpkg0 || echo tap-gone
         echo proxies-left=$(ip neigh show proxy | wc -l)
        ' 2>&1",
    );
    for line in [
        format!("owner={}", guard.uml_net.uid),
        "proxy_arp=1".into(),
        "route 192.0.2.8 dev umlkpkg0".into(),
        "proxy 192.0.2.7 dev umlkpkgd".into(),
        "proxy 192.0.2.8 dev umlkpkgd".into(),
        "socket".into(),
        "user=uml-net".into(),
        "carrier=1".into(),
        "running".into(),
        "socket-gone".into(),
        "tap-gone".into(),
        "proxies-left=0".into(),
    ] {
        assert!(hooks.lines().any(|l| l == line), "no {line:?} in:\n{hooks}");
    }

    // Purge: everything postinst made goes; uml-net stays, Debian made it.
    sh_ok("dpkg --purge umlkit 2>&1");
    assert_eq!(state("umlkit"), 'n', "umlkit not purged");
    for gone in [
        "/usr/bin/uml_net",
        "/usr/bin/linux.umlkit",
        "/usr/lib/uml/port-helper",
        "/etc/init.d/uml-utilities",
        "/etc/default/uml-utilities",
        "/var/lib/umlkit",
        "/var/run/uml-utilities",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    assert!(
        !sh("dpkg-statoverride --list /usr/bin/uml_net")
            .status
            .success(),
        "statoverride left"
    );
    assert_eq!(
        std::fs::canonicalize("/usr/bin/linux").unwrap(),
        Path::new("/usr/bin/linux.uml")
    );
    assert!(
        UmlNet::now().is_some(),
        "purge removed the uml-net user that Debian's package made"
    );

    // Without uml-net, postinst makes the user and group and purge removes
    // them again.
    sh_ok("deluser --quiet --system uml-net >/dev/null; delgroup --quiet --system uml-net >/dev/null 2>&1 || true");
    assert!(UmlNet::now().is_none());
    sh_ok(&format!("dpkg -i {} 2>&1", ours.display()));
    let made = UmlNet::now().expect("postinst made no uml-net user and group");
    let user = nix::unistd::User::from_name("uml-net").unwrap().unwrap();
    assert_eq!(user.gid.as_raw(), made.gid, "uml-net's primary group");
    assert_eq!(user.dir, Path::new("/nonexistent"));
    sh_ok("dpkg --purge umlkit 2>&1");
    assert!(
        nix::unistd::User::from_name("uml-net").unwrap().is_none()
            && nix::unistd::Group::from_name("uml-net").unwrap().is_none(),
        "purge left the uml-net user or group that postinst made"
    );

    // Back to Debian's package, as the machine began.
    guard.uml_net.restore();
    sh_ok(&format!("dpkg -i {} 2>&1", debian_deb.display()));
    assert_eq!(state("uml-utilities"), 'i');
    assert!(sh_ok("dpkg -S /usr/lib/uml/port-helper").starts_with("uml-utilities: "));
    let meta = std::fs::metadata("/usr/bin/uml_net").unwrap();
    assert_eq!(
        meta.mode() & 0o7777,
        0o4754,
        "Debian's uml_net after reinstall"
    );
    assert_eq!(
        UmlNet::now().map(|u| (u.uid, u.gid)),
        Some((guard.uml_net.uid, guard.uml_net.gid))
    );
    assert_eq!(
        std::fs::canonicalize("/usr/bin/linux").unwrap(),
        Path::new("/usr/bin/linux.uml")
    );
    drop(guard);
}

/// The names of this package's binaries (src/bin/*.rs).
fn common_bins() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}
