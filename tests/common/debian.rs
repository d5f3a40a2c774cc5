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

fn recipe_hash() -> String {
    // FNV-1a: stable across Rust releases, unlike DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in RECIPE.bytes() {
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

/// The cached Debian image (built now if missing), readable by everyone;
/// `None` after a loud skip when it cannot be had.
pub fn image(test: &str) -> Option<PathBuf> {
    let dir = Path::new(CACHE).join(format!("debian-{}", recipe_hash()));
    let image = dir.join("root_fs");
    if image.is_file() {
        return Some(image);
    }
    if !super::have_root(test) || !super::have_peers(test, &["debootstrap", "mke2fs"]) {
        return None;
    }
    std::fs::create_dir_all(CACHE).unwrap();
    std::fs::set_permissions(CACHE, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lock =
        std::fs::File::create(Path::new(CACHE).join(format!("debian-{}.lock", recipe_hash())))
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
    if let Err(why) = build(tmp.path()) {
        super::skip(test, &format!("cannot build the Debian image: {why}"));
        return None;
    }
    std::fs::remove_dir_all(tmp.path().join("tree")).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let made = tmp.keep();
    std::fs::rename(&made, &dir).unwrap();
    Some(image)
}

fn build(dir: &Path) -> Result<(), String> {
    let tree = dir.join("tree");
    let log = dir.join("debootstrap.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(super::which("debootstrap").unwrap())
        .args([
            "--variant=minbase",
            "--include=sysvinit-core,ifupdown,iproute2,iputils-ping,procps,login,passwd",
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
    customize(&tree);
    super::mkfs_ext3(&tree, &dir.join("root_fs"), 1024);
    std::fs::set_permissions(dir.join("root_fs"), std::fs::Permissions::from_mode(0o644)).unwrap();
    Ok(())
}

/// The article's changes to a fresh debootstrap tree.
fn customize(tree: &Path) {
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
    std::fs::write(
        tree.join("etc/fstab"),
        "/dev/ubda / ext3 defaults,errors=remount-ro 0 1\n",
    )
    .unwrap();
    std::fs::write(tree.join("etc/hostname"), "debian\n").unwrap();
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
        if !super::kernel::can_boot(test) {
            return None;
        }
        let user = super::kernel::test_user(test)?;
        let image = image(test)?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&image, dir.path().join("root_fs")).unwrap();
        std::fs::copy(super::bin("linux"), dir.path().join("linux")).unwrap();
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
        // setsid -c: a new session whose controlling terminal is the pty
        // (the child is no group leader, so setsid execs without forking).
        let mut cmd = Command::new(super::which("setsid").expect("setsid"));
        cmd.arg("-c");
        if let Some((uid, gid)) = user.ids {
            cmd.arg(super::which("setpriv").expect("setpriv"))
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .args(["--clear-groups", "--"]);
        }
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.arg(linux)
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("TERM", "vt100")
            .stdin(stdio(&slave))
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
