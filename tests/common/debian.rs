//! A stock Debian guest for the `linux` tests (issue 13): Debian bookworm
//! made with debootstrap as the classic UML article makes it, built once
//! and cached between test runs, and a driver that runs `linux` as the
//! test user with its console on a pty, as a person at a terminal would.
//!
//! The image: `debootstrap --variant=minbase --include=...` ([`RECIPE`]),
//! root's password emptied, a getty on `console` in /etc/inittab (the
//! virtual-terminal gettys commented out), the article's fstab, hostname
//! `debian`, then `mke2fs -t ext3 -d`. It is kept in
//! `/var/cache/umlkit-tests/debian-<hash of the recipe>/root_fs`; a lock
//! file makes parallel tests build it once, and it is built in a
//! temporary directory renamed into place, so a failed build leaves
//! nothing half made. No archive: the test is skipped loudly (a failure
//! under `UMLKIT_REQUIRE_PEERS=1`).

use super::kernel::User;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where built images are kept between test runs.
pub const CACHE: &str = "/var/cache/umlkit-tests";
/// The archive debootstrap fetches from.
pub const MIRROR: &str = "http://deb.debian.org/debian";
/// Every step that makes the image; its hash names the cache entry, so a
/// change here builds a new image.
pub const RECIPE: &str = "\
debootstrap --variant=minbase --include=sysvinit-core,ifupdown,iproute2,iputils-ping,procps,login,passwd bookworm TREE http://deb.debian.org/debian
shadow: root password emptied
inittab: tty[1-6] gettys commented out; C0:2345:respawn:/sbin/getty 38400 console
fstab: /dev/ubda / ext3 defaults,errors=remount-ro 0 1
hostname: debian
mke2fs -q -F -t ext3 -d TREE root_fs 1024M
";
/// How long a debootstrap may take before the build is given up.
const BUILD_LIMIT: Duration = Duration::from_secs(1500);

fn recipe_hash(recipe: &str) -> String {
    // FNV-1a: stable across Rust releases, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in recipe.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// True when the archive answers on port 80 within a few seconds.
fn archive_reachable() -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let Ok(addrs) = "deb.debian.org:80".to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
}

/// One kind of Debian image: the recipe text (hashed into the cache
/// entry's name), the packages debootstrap adds, and the changes made to
/// the tree afterwards.
pub struct Flavor {
    /// The cache entry's prefix (`debian` for the sysvinit image).
    pub prefix: &'static str,
    /// Every step that makes the image.
    pub recipe: &'static str,
    /// debootstrap's `--include=` list.
    pub include: &'static str,
    /// The changes to the debootstrapped tree.
    pub customize: fn(&Path),
}

/// The article's sysvinit image.
pub const SYSVINIT: Flavor = Flavor {
    prefix: "debian",
    recipe: RECIPE,
    include: "sysvinit-core,ifupdown,iproute2,iputils-ping,procps,login,passwd",
    customize,
};

/// Every step that makes the systemd image (issue 13, defect 5).
pub const SYSTEMD_RECIPE: &str = "\
debootstrap --variant=minbase --include=systemd-sysv,dbus,login,passwd,iproute2,procps bookworm TREE http://deb.debian.org/debian
shadow: root password emptied
getty: console-getty.service enabled, getty@tty1 disabled; logind.conf NAutoVTs=0 ReserveVT=0
fstab: /dev/ubda / ext3 defaults,errors=remount-ro 0 1
hostname: debian
mke2fs -q -F -t ext3 -d TREE root_fs 1024M
";

/// A stock bookworm with systemd as init and a getty on the console.
pub const SYSTEMD: Flavor = Flavor {
    prefix: "debian-systemd",
    recipe: SYSTEMD_RECIPE,
    include: "systemd-sysv,dbus,login,passwd,iproute2,procps",
    customize: customize_systemd,
};

/// The cached Debian image (built now if missing), readable by everyone;
/// `None` after a loud skip when it cannot be had.
pub fn image(test: &str) -> Option<PathBuf> {
    image_of(&SYSVINIT, test)
}

/// The cached image of `flavor` (built now if missing); `None` after a
/// loud skip when it cannot be had.
pub fn image_of(flavor: &Flavor, test: &str) -> Option<PathBuf> {
    let recipe_hash = || recipe_hash(flavor.recipe);
    let dir = Path::new(CACHE).join(format!("{}-{}", flavor.prefix, recipe_hash()));
    let image = dir.join("root_fs");
    if image.is_file() {
        return Some(image);
    }
    if !super::have_root(test) || !super::have_peers(test, &["debootstrap", "mke2fs"]) {
        return None;
    }
    std::fs::create_dir_all(CACHE).unwrap();
    std::fs::set_permissions(CACHE, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lock = std::fs::File::create(Path::new(CACHE).join(format!(
        "{}-{}.lock",
        flavor.prefix,
        recipe_hash()
    )))
    .unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock");
    if image.is_file() {
        return Some(image);
    }
    if !archive_reachable() {
        super::skip(
            test,
            &format!("the Debian archive ({MIRROR}) cannot be reached"),
        );
        return None;
    }
    let tmp = tempfile::Builder::new()
        .prefix("debian-build-")
        .tempdir_in(CACHE)
        .unwrap();
    eprintln!(
        "{test}: building the Debian image once (debootstrap, several minutes) in {}",
        tmp.path().display()
    );
    if let Err(why) = build(flavor, tmp.path()) {
        super::skip(test, &format!("cannot build the Debian image: {why}"));
        return None;
    }
    std::fs::remove_dir_all(tmp.path().join("tree")).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let made = tmp.keep();
    std::fs::rename(&made, &dir).unwrap();
    Some(image)
}

fn build(flavor: &Flavor, dir: &Path) -> Result<(), String> {
    let tree = dir.join("tree");
    let log = dir.join("debootstrap.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(super::which("debootstrap").unwrap())
        .args([
            "--variant=minbase",
            &format!("--include={}", flavor.include),
            "bookworm",
        ])
        .arg(&tree)
        .arg(MIRROR)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .map_err(|e| format!("debootstrap: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > BUILD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err("debootstrap took too long".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        return Err(format!("debootstrap failed ({status}): {:?}", tail));
    }
    (flavor.customize)(&tree);
    super::mkfs_ext3(&tree, &dir.join("root_fs"), 1024);
    std::fs::set_permissions(dir.join("root_fs"), std::fs::Permissions::from_mode(0o644)).unwrap();
    Ok(())
}

/// Empties root's password in the tree's /etc/shadow.
fn empty_root_password(tree: &Path) {
    let shadow = tree.join("etc/shadow");
    let text = std::fs::read_to_string(&shadow).unwrap();
    let text: String = text
        .lines()
        .map(|l| match l.strip_prefix("root:") {
            Some(rest) => {
                let after = rest.split_once(':').map_or("", |(_, a)| a);
                format!("root::{after}\n")
            }
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&shadow, text).unwrap();
}

/// The article's fstab and the hostname `debian`.
fn fstab_and_hostname(tree: &Path) {
    std::fs::write(
        tree.join("etc/fstab"),
        "/dev/ubda / ext3 defaults,errors=remount-ro 0 1\n",
    )
    .unwrap();
    std::fs::write(tree.join("etc/hostname"), "debian\n").unwrap();
}

/// The article's changes to a fresh debootstrap tree.
fn customize(tree: &Path) {
    empty_root_password(tree);
    let inittab = tree.join("etc/inittab");
    let text = std::fs::read_to_string(&inittab).unwrap();
    let mut text: String = text
        .lines()
        .map(|l| {
            let vt = l.len() > 2 && l.as_bytes()[0].is_ascii_digit() && l.contains("getty");
            if vt {
                format!("#{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    text.push_str("C0:2345:respawn:/sbin/getty 38400 console\n");
    std::fs::write(&inittab, text).unwrap();
    fstab_and_hostname(tree);
}

/// The systemd image's changes: what the article does for sysvinit, in
/// systemd's terms. The console's getty is `console-getty.service`; no
/// getty on virtual terminals (the guest has none), as the article
/// comments out the inittab's tty gettys.
fn customize_systemd(tree: &Path) {
    empty_root_password(tree);
    let wants = tree.join("etc/systemd/system/getty.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    let _ = std::fs::remove_file(wants.join("getty@tty1.service"));
    std::os::unix::fs::symlink(
        "/lib/systemd/system/console-getty.service",
        wants.join("console-getty.service"),
    )
    .unwrap();
    let logind = tree.join("etc/systemd/logind.conf");
    let mut text = std::fs::read_to_string(&logind).unwrap_or_else(|_| "[Login]\n".into());
    text.push_str("NAutoVTs=0\nReserveVT=0\n");
    std::fs::write(&logind, text).unwrap();
    fstab_and_hostname(tree);
}

/// A scratch directory for one Debian guest: `root_fs` (a link to the
/// cached image) and a copy of `linux`, owned by the test user.
pub struct DebianGuest {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    /// Who runs it.
    pub user: User,
}

impl DebianGuest {
    /// A guest over the cached image; `None` after a loud skip.
    pub fn new(test: &str) -> Option<DebianGuest> {
        Self::of(&SYSVINIT, test)
    }

    /// A guest over the cached image of `flavor`; `None` after a loud
    /// skip.
    pub fn of(flavor: &Flavor, test: &str) -> Option<DebianGuest> {
        if !super::kernel::can_boot(test) {
            return None;
        }
        let user = super::kernel::test_user(test)?;
        let image = image_of(flavor, test)?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&image, dir.path().join("root_fs")).unwrap();
        super::copy_executable(&super::bin("linux"), &dir.path().join("linux"));
        if let Some((uid, gid)) = user.ids {
            std::os::unix::fs::lchown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(dir.path().join("linux"), Some(uid), Some(gid)).unwrap();
        }
        Some(DebianGuest { dir, user })
    }

    /// A path in the guest directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `linux ARGS` on a pty.
    pub fn start(&self, args: &[&str]) -> PtyGuest {
        PtyGuest::start(&self.path("linux"), args, self.dir.path(), self.user)
    }

    /// Starts `linux ARGS` on a pty inside the cgroup `cgroup` (a
    /// [`Delegated`] one), as a user's session puts its programs.
    pub fn start_in(&self, cgroup: &Delegated, args: &[&str]) -> PtyGuest {
        PtyGuest::start_in(
            &self.path("linux"),
            args,
            self.dir.path(),
            self.user,
            Some(&cgroup.dir),
            None,
        )
    }

    /// Starts `linux ARGS` on a pty inside the network namespace `netns`.
    pub fn start_in_netns(&self, netns: &str, args: &[&str]) -> PtyGuest {
        PtyGuest::start_in(
            &self.path("linux"),
            args,
            self.dir.path(),
            self.user,
            None,
            Some(netns),
        )
    }
}

/// A cgroup v2 subtree delegated to the test user, as the user's systemd
/// manager delegates one to a rootless container: made by root as a
/// child of the cgroup2 mount's root (on hybrid hosts
/// `/sys/fs/cgroup/unified`), its directory and files chowned to the
/// user. Removed, with whatever the guest left below it, when dropped.
pub struct Delegated {
    /// The delegated directory.
    pub dir: PathBuf,
}

impl Delegated {
    /// Makes one for `user`; `None` after a loud skip.
    pub fn create(test: &str, user: User) -> Option<Delegated> {
        if !super::have_root(test) {
            return None;
        }
        let Some((uid, gid)) = user.ids else {
            super::skip(test, "no separate test user to delegate a cgroup to");
            return None;
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(mount) = mountinfo.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(sep + 1) == Some(&"cgroup2") && f.get(3) == Some(&"/"))
                .then(|| PathBuf::from(f[4]))
        }) else {
            super::skip(test, "no cgroup2 hierarchy mounted on the host");
            return None;
        };
        let dir = mount.join(format!("umlkit-{}-{}", std::process::id(), test_tag(test)));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let st = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "chown -R {}", dir.display());
        Some(Delegated { dir })
    }

    /// Every cgroup left below the delegated one, deepest first.
    pub fn children(&self) -> Vec<PathBuf> {
        fn walk(d: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                    out.push(e.path());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, &mut out);
        out
    }
}

/// A short tag from a test's name, for cgroup names.
fn test_tag(test: &str) -> String {
    test.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect()
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let mut all = self.children();
        all.push(self.dir.clone());
        for dir in all {
            for _ in 0..100 {
                if let Ok(pids) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                    for p in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(p),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `linux` running on a pty, as from a terminal: the pty is its
/// controlling terminal and standard input, output and error. Killed
/// (its whole session) when dropped.
pub struct PtyGuest {
    child: Option<Child>,
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
    /// Bytes of the transcript already matched by [`PtyGuest::expect`].
    mark: usize,
}

impl PtyGuest {
    /// Runs `linux` (at `linux`) with `args` in `dir` as `user`.
    pub fn start(linux: &Path, args: &[&str], dir: &Path, user: User) -> PtyGuest {
        Self::start_in(linux, args, dir, user, None, None)
    }

    /// As [`PtyGuest::start`], in the cgroup `cgroup` when given: a shell
    /// (still root) moves itself there and execs the rest.
    pub fn start_in(
        linux: &Path,
        args: &[&str],
        dir: &Path,
        user: User,
        cgroup: Option<&Path>,
        netns: Option<&str>,
    ) -> PtyGuest {
        // setsid -c: a new session whose controlling terminal is the pty
        // (the child is no group leader, so setsid execs without forking).
        let mut cmd = match (cgroup, netns) {
            (_, Some(ns)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns])
                    .arg(super::which("setsid").expect("setsid"));
                c
            }
            (Some(cg), None) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("echo 0 > \"$0/cgroup.procs\" || exit 125; exec \"$@\"")
                    .arg(cg)
                    .arg(super::which("setsid").expect("setsid"));
                c
            }
            (None, None) => Command::new(super::which("setsid").expect("setsid")),
        };
        cmd.arg("-c");
        if let Some((uid, gid)) = user.ids {
            cmd.arg(super::which("setpriv").expect("setpriv"))
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"]);
        }
        cmd.arg(linux)
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("TERM", "vt100");
        Self::spawn(cmd, user)
    }

    /// Spawns `cmd` (which makes itself a session leader with its
    /// standard input as controlling terminal) on a new pty whose slave
    /// is owned by `user`.
    pub fn spawn(mut cmd: Command, user: User) -> PtyGuest {
        let pty = nix::pty::openpty(
            Some(&nix::pty::Winsize {
                ws_row: 24,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }),
            None,
        )
        .expect("openpty");
        let slave: OwnedFd = pty.slave;
        if let Some((uid, gid)) = user.ids {
            let path = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        }
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        let child = cmd.spawn().expect("spawn linux");
        drop(slave);
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once every holder of the slave has gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyGuest {
            child: Some(child),
            master,
            seen,
            mark: 0,
        }
    }

    /// Everything the console printed so far (CRs removed).
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).replace('\r', "")
    }

    /// Waits until `text` appears after the last match; panics with the
    /// transcript after `limit`.
    pub fn expect(&mut self, text: &str, limit: Duration) {
        if let Err(t) = self.wait_for(text, limit) {
            panic!("console: no {text:?} within {limit:?}; transcript:\n{t}");
        }
    }

    /// Waits until `text` appears after the last match; the transcript
    /// when it did not within `limit`.
    pub fn wait_for(&mut self, text: &str, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let tail = &seen[self.mark.min(seen.len())..];
                if let Some(at) = tail
                    .windows(text.len().max(1))
                    .position(|w| w == text.as_bytes())
                {
                    self.mark += at + text.len();
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                return Err(self.transcript());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The monitor's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok())
    }

    /// The console's text after the last match so far.
    pub fn since_mark(&self) -> String {
        let seen = self.seen.lock().unwrap();
        String::from_utf8_lossy(&seen[self.mark.min(seen.len())..]).replace('\r', "")
    }

    /// Types `keys` (a line wants its "\n"; a terminal sends "\r").
    pub fn send(&mut self, keys: &str) {
        let bytes: Vec<u8> = keys
            .bytes()
            .map(|b| if b == b'\n' { b'\r' } else { b })
            .collect();
        for chunk in bytes.chunks(16) {
            self.master.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The monitor's exit status once it exits within `limit` (as a shell
    /// reports it); `None` when it did not (then it is killed).
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let child = self.child.as_mut()?;
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.kill();
        // Let the reader drain what the monitor printed last.
        std::thread::sleep(Duration::from_millis(100));
        status.map(|s| s.code().unwrap_or(128 + s.signal().unwrap_or(0)))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for PtyGuest {
    fn drop(&mut self) {
        self.kill();
    }
}
