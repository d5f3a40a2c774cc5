//! Test helpers for the guest kernel (`linux`) tests: a busybox guest in a
//! scratch directory owned by an unprivileged test user, and runs of
//! `linux` as that user (CI is root; `linux` is a normal user's command),
//! with a time limit and the whole process group killed afterwards.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user the guests run as when the tests run as root.
pub const TEST_USER: &str = "umlkit-test";

/// Who runs `linux`: `None` = this process's user (not root).
#[derive(Debug, Clone, Copy)]
pub struct User {
    /// uid and gid to switch to, when running as root.
    pub ids: Option<(u32, u32)>,
}

/// The test user: created with `useradd` (and a subordinate id range) when
/// running as root and missing; this process's user otherwise. `None`
/// (after a loud skip) when it cannot be had.
pub fn test_user(test: &str) -> Option<User> {
    if !nix::unistd::geteuid().is_root() {
        return Some(User { ids: None });
    }
    let lookup = || nix::unistd::User::from_name(TEST_USER).ok().flatten();
    if lookup().is_none() {
        let _ = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", TEST_USER])
            .status();
    }
    let Some(u) = lookup() else {
        super::skip(test, "cannot create the test user (useradd)");
        return None;
    };
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.starts_with(&format!("{TEST_USER}:")))
        {
            let mut t = text.clone();
            t.push_str(&format!("{TEST_USER}:300000:65536\n"));
            let _ = std::fs::write(file, t);
        }
    }
    Some(User {
        ids: Some((u.uid.as_raw(), u.gid.as_raw())),
    })
}

/// True when a guest can run here: /dev/fuse usable by the test user and
/// user namespaces enabled; else skips loudly.
pub fn can_boot(test: &str) -> bool {
    let fuse_ok = std::fs::metadata("/dev/fuse").is_ok_and(|m| m.mode() & 0o006 == 0o006);
    if !fuse_ok {
        super::skip(test, "/dev/fuse missing or not mode 0666");
        return false;
    }
    let userns = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if userns == 0 {
        super::skip(test, "user namespaces disabled");
        return false;
    }
    super::have_peers(test, &["busybox", "mke2fs"])
}

/// A guest directory: `root_fs` (busybox tree with `/init`) and a copy of
/// `linux`, owned by the test user.
pub struct KGuest {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    /// Who runs it.
    pub user: User,
}

fn chown_tree(path: &Path, user: User) {
    if let Some((uid, gid)) = user.ids {
        let _ = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(path)
            .status();
    }
}

impl KGuest {
    /// A busybox guest with `init` as `/init` (64 MiB ext3).
    pub fn new(user: User, init: &str) -> KGuest {
        Self::with_tree(user, |tree| super::uml::busybox_tree(tree, init))
    }

    /// A guest whose tree `make` fills.
    pub fn with_tree(user: User, make: impl FnOnce(&Path)) -> KGuest {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        make(&tree);
        super::mkfs_ext3(&tree, &dir.path().join("root_fs"), 64);
        std::fs::remove_dir_all(&tree).unwrap();
        super::copy_executable(&super::bin("linux"), &dir.path().join("linux"));
        chown_tree(dir.path(), user);
        KGuest { dir, user }
    }

    /// A busybox guest whose `/init` is `init`, with the same tree also on
    /// a default `mke2fs -t ext4` image `root_ext4` (boot it with
    /// [`EXT4_ROOT_ARGS`]).
    pub fn with_ext4_root(user: User, init: &str) -> KGuest {
        Self::with_tree(user, |tree| {
            super::uml::busybox_tree(tree, init);
            let img = tree.parent().unwrap().join("root_ext4");
            super::mkfs_from("ext4", tree, &img, "64M");
        })
    }

    /// A path in the guest directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `linux ARGS` as the test user, in the directory, HOME there.
    pub fn command(&self, args: &[&str]) -> Command {
        let linux = self.path("linux");
        let mut cmd = match self.user.ids {
            Some((uid, gid)) => {
                let setpriv = super::which("setpriv").unwrap_or_else(|| "setpriv".into());
                let mut c = Command::new(setpriv);
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&linux);
                c
            }
            None => Command::new(&linux),
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }

    /// Runs `linux ARGS` to its end (killed after `limit`).
    pub fn run(&self, args: &[&str], limit: Duration) -> super::uml::Boot {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut b = super::uml::run_with_limit(cmd, limit);
        b.output = b.output.replace('\r', "");
        b
    }

    /// Starts `linux ARGS` with its output in a file.
    pub fn start(&self, args: &[&str]) -> Running {
        let out = self.path("console.out");
        let file = std::fs::File::create(&out).unwrap();
        let mut cmd = self.command(args);
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
        let child = cmd.spawn().expect("spawn linux");
        Running { child, out }
    }
}

/// The arguments that boot [`KGuest::with_ext4_root`]'s image read-write.
pub const EXT4_ROOT_ARGS: [&str; 6] = [
    "ubd0=root_ext4",
    "root=/dev/ubda",
    "rw",
    "init=/init",
    "con=null",
    "con0=fd:0,fd:1",
];

/// A `linux` running in the background.
pub struct Running {
    /// The process (`setpriv` execs `linux`, so this is the monitor).
    pub child: Child,
    out: PathBuf,
}

impl Running {
    /// The console output so far (CRs removed).
    pub fn output(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.out) {
            let _ = f.read_to_string(&mut s);
        }
        s.replace('\r', "")
    }

    /// Waits until the output contains `marker`.
    pub fn wait_for(&self, marker: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.output().contains(marker) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The monitor's pid.
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the end (killing the group after `limit`): the status
    /// code or signal, as a shell reports it.
    pub fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break Some(s);
            }
            if start.elapsed() > limit {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let _ = nix::sys::signal::killpg(self.pid(), nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
        use std::os::unix::process::ExitStatusExt;
        let code = status.map(|s| s.code().unwrap_or(128 + s.signal().unwrap_or(0)));
        (code, self.output())
    }
}

/// Host pids of processes whose environment holds `marker` (guest
/// processes are tagged by an environment word on the command line).
pub fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|w| w == marker.as_bytes()) {
                found.push(pid);
            }
        }
    }
    found
}

/// A cheap fingerprint of a file: its bytes' hash and its mtime.
pub fn fingerprint(path: &Path) -> (u64, i64) {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (h.finish(), std::fs::metadata(path).unwrap().mtime())
}

/// A busybox guest with `init` as `/init`, run by the test user; `None`
/// after a loud skip when guests cannot boot here.
pub fn busybox_guest(test: &str, init: &str) -> Option<KGuest> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::new(user, init))
}

/// The command line the busybox tests boot with: `disk`, root on ubda
/// read-write, `/init`, con0 on the monitor's stdio and the other
/// consoles null, then `extra`.
pub fn boot_args<'a>(disk: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        disk,
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
    ];
    v.extend_from_slice(extra);
    v
}
