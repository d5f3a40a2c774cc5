//! `uml_lab image build`: the Debian image it makes runs a lab (startup
//! scripts give addresses, one machine pings the other, `exec` returns
//! output and status, a login waits on the console, `stop` halts); a lab
//! without an image is told to build one; a normal user and bad input are
//! refused in one line before anything is written.
//!
//! The image is built once with debootstrap (several minutes) and kept in
//! `/var/cache/umlkit-tests/lab-debian-<hash>/root_fs`, the hash being
//! that of the builder's recipe (`uml_lab image build --print-recipe`:
//! packages, suite, mirror, size and every file written), so a change to
//! the builder builds a new image and an unchanged one is reused.

mod common;

use common::kernel::{can_boot, test_user, User};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CACHE: &str = common::debian::CACHE;
/// How long a build may take before it is given up.
const BUILD_LIMIT: Duration = Duration::from_secs(1500);

fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The archive host of the recipe's mirror answers on port 80.
fn archive_reachable(recipe: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let host = recipe
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|r| r.split('/').next())
        .unwrap_or("deb.debian.org");
    let Ok(addrs) = (host, 80).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
}

/// The cached lab image, built now with `uml_lab image build` when
/// missing; `None` after a loud skip.
fn lab_image(test: &str) -> Option<PathBuf> {
    let out = common::umlkit("uml_lab", ["image", "build", "--print-recipe"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let recipe = common::stdout(&out);
    let key = fnv(&recipe);
    let dir = Path::new(CACHE).join(format!("lab-debian-{key}"));
    let image = dir.join("root_fs");
    if image.is_file() {
        return Some(image);
    }
    if !common::have_root(test) || !common::have_peers(test, &["debootstrap", "mke2fs"]) {
        return None;
    }
    std::fs::create_dir_all(CACHE).unwrap();
    std::fs::set_permissions(CACHE, std::fs::Permissions::from_mode(0o755)).unwrap();
    let lock =
        std::fs::File::create(Path::new(CACHE).join(format!("lab-debian-{key}.lock"))).unwrap();
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock");
    if image.is_file() {
        return Some(image);
    }
    if !archive_reachable(&recipe) {
        common::skip(test, "the Debian archive of the recipe cannot be reached");
        return None;
    }
    let tmp = tempfile::Builder::new()
        .prefix("lab-debian-build-")
        .tempdir_in(CACHE)
        .unwrap();
    eprintln!(
        "{test}: building the lab image once (uml_lab image build, several minutes) in {}",
        tmp.path().display()
    );
    let started = Instant::now();
    let mut child = Command::new(common::bin("uml_lab"))
        .args(["image", "build"])
        .arg(tmp.path().join("root_fs"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > BUILD_LIMIT {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = child.wait();
            common::skip(test, "uml_lab image build took too long");
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = child.wait_with_output().unwrap();
    let err = common::stderr(&out);
    // A build that fails for the archive's sake is a skip; any other
    // failure is the builder's and fails the test.
    if !status.success() && err.contains("debootstrap failed") {
        common::skip(test, &format!("the image could not be built: {err}"));
        return None;
    }
    assert!(status.success(), "uml_lab image build: {status}: {err}");
    assert!(
        err.contains("wrote") && err.contains("root_fs"),
        "no summary line: {err}"
    );
    eprintln!(
        "{test}: image built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let made = tmp.keep();
    std::fs::rename(&made, &dir).unwrap();
    Some(image)
}

use std::os::unix::process::CommandExt;

/// A lab directory and the binaries, owned by the test user.
struct Lab {
    dir: tempfile::TempDir,
    user: User,
}

impl Lab {
    fn new(user: User) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        for b in ["uml_lab", "linux", "uml_switch"] {
            common::copy_executable(&common::bin(b), &dir.path().join("bin").join(b));
        }
        std::fs::create_dir(dir.path().join("lab")).unwrap();
        Lab { dir, user }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("lab")
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).unwrap();
    }

    fn chown(&self) {
        if let Some((uid, gid)) = self.user.ids {
            common::run_ok(
                "chown",
                [
                    "-R".to_string(),
                    format!("{uid}:{gid}"),
                    self.dir.path().display().to_string(),
                ],
            );
        }
    }

    fn uml_lab(&self, args: &[&str]) -> Output {
        let prog = self.dir.path().join("bin/uml_lab");
        let mut cmd = match self.user.ids {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(&prog);
                c
            }
            None => Command::new(&prog),
        };
        cmd.args(args)
            .current_dir(self.path())
            .env("HOME", self.dir.path())
            .env_remove("UML_LAB_IMAGE")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.uml_lab(args);
        assert!(
            out.status.success(),
            "uml_lab {args:?}: {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            common::stdout(&out),
            common::stderr(&out),
            self.console("pc1") + &self.console("pc2")
        );
        common::stdout(&out)
    }

    fn console(&self, m: &str) -> String {
        let log = self.path().join(format!(".uml_lab/m/{m}/console.log"));
        format!(
            "--- {m} console:\n{}\n",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Never leave a guest running.
        let _ = self.uml_lab(&["stop", "--force"]);
    }
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next())
        })
        .is_some_and(|c| c != 'Z' && c != 'X')
}

#[test]
fn the_built_debian_image_runs_a_two_machine_lab_that_pings_execs_offers_a_login_and_stops() {
    const TEST: &str = "the_built_debian_image_runs_a_two_machine_lab";
    if !can_boot(TEST) {
        return;
    }
    let Some(user) = test_user(TEST) else { return };
    let Some(image) = lab_image(TEST) else { return };
    let t = Instant::now();
    let lab = Lab::new(user);
    lab.write(
        "lab.conf",
        "LAB_DESCRIPTION=\"debian pair\"\npc1[0]=A\npc2[0]=A\n",
    );
    lab.write(
        "pc1.startup",
        "ip addr add 10.0.0.1/24 dev eth0\nip link set eth0 up\n",
    );
    lab.write(
        "pc2.startup",
        "ifconfig eth0 10.0.0.2 netmask 255.255.255.0 up\n",
    );
    lab.write("shared.startup", "echo ran > /root/shared-startup\n");
    lab.chown();
    let img = image.display().to_string();
    let out = lab.uml_lab(&["start", "--image", &img, "--timeout", "90"]);
    assert!(
        out.status.success(),
        "start: {}\n{}{}",
        common::stderr(&out),
        lab.console("pc1"),
        lab.console("pc2")
    );
    eprintln!("2 Debian machines up in {:.2} s", t.elapsed().as_secs_f64());

    // The startup scripts gave the addresses; pc1 reaches pc2.
    let ping = lab.ok(&[
        "exec", "pc1", "--", "ping", "-c", "2", "-W", "3", "10.0.0.2",
    ]);
    assert!(ping.contains("2 received"), "{ping}");
    let who = lab.ok(&[
        "exec",
        "pc2",
        "--",
        "hostname; cat /root/shared-startup /etc/debian_version; ip -4 addr show eth0",
    ]);
    let mut lines = who.lines();
    assert_eq!(lines.next(), Some("pc2"), "{who}");
    assert_eq!(lines.next(), Some("ran"), "{who}");
    assert!(
        lines
            .next()
            .is_some_and(|v| v.starts_with(char::is_numeric)),
        "{who}"
    );
    assert!(who.contains("inet 10.0.0.2/24"), "{who}");

    // The tools Netkit labs use are there; exec returns the status.
    lab.ok(&[
        "exec",
        "pc1",
        "--",
        "command -v ip ifconfig route ping arping traceroute tcpdump iptables brctl nc ps",
    ]);
    let out = lab.uml_lab(&["exec", "pc1", "--", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(common::stdout(&out), "out\n");
    assert_eq!(common::stderr(&out), "err\n");

    // The image's sysvinit runs after the wrapper and offers a login on
    // the console.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab.console("pc1").contains("pc1 login:") {
        assert!(
            Instant::now() < deadline,
            "no login prompt:\n{}",
            lab.console("pc1")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let st: serde_json::Value = serde_json::from_str(&lab.ok(&["status", "--json"])).unwrap();
    let pids: Vec<i64> = st["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let stopped = lab.ok(&["stop"]);
    assert_eq!(stopped, "pc1: halted\npc2: halted\n");
    assert!(pids.iter().all(|p| !alive(*p)), "{pids:?}");
    eprintln!("whole lab test {:.2} s", t.elapsed().as_secs_f64());
}

#[test]
fn a_lab_without_an_image_is_told_to_build_one_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lab.conf"), "pc1[0]=A\n").unwrap();
    let out = Command::new(common::bin("uml_lab"))
        .args(["start"])
        .current_dir(dir.path())
        .env_remove("UML_LAB_IMAGE")
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("uml_lab: pc1: no root image") && err.contains("uml_lab image build"),
        "{err}"
    );
    assert!(!dir.path().join(".uml_lab").exists());
}

#[test]
fn image_build_refuses_a_normal_user_and_bad_input_in_one_line_writing_nothing() {
    const TEST: &str = "image_build_refuses_a_normal_user";
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out_path = dir.path().join("root_fs");
    let out_arg = out_path.display().to_string();
    let run = |user: Option<(u32, u32)>, args: &[&str]| -> Output {
        let mut cmd = match user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(common::bin("uml_lab"));
                c
            }
            None => Command::new(common::bin("uml_lab")),
        };
        cmd.args(args).stdin(Stdio::null()).output().unwrap()
    };
    let refused = |out: &Output, what: &str| {
        let err = common::stderr(out);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("uml_lab: "), "{what}: {err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{what}: something was written"
        );
        err
    };
    // Bad input, whoever runs it.
    let bad = [
        (
            vec!["--packages", "tcpdump,Bad;Name"],
            "is not a Debian package name",
        ),
        (vec!["--suite", "../etc"], "is not a suite name"),
        (vec!["--mirror", "ftp://x/debian"], "is not an http://"),
        (vec!["--size", "10"], "--size: 10 MiB"),
    ];
    for (args, why) in bad {
        let mut all = vec!["image", "build"];
        all.extend(&args);
        all.push(&out_arg);
        let err = refused(&run(None, &all), why);
        assert!(err.contains(why), "{err}");
    }
    let out = run(None, &["image", "build", "--packages", "x1"]);
    assert_eq!(out.status.code(), Some(2), "OUT is required");
    // A normal user is told debootstrap needs root.
    let Some(user) = test_user(TEST) else { return };
    let ids = match user.ids {
        Some(ids) => Some(ids),
        None if !nix::unistd::geteuid().is_root() => None,
        None => {
            common::skip(TEST, "no normal user to run as");
            return;
        }
    };
    let err = refused(&run(ids, &["image", "build", &out_arg]), "normal user");
    assert!(err.contains("debootstrap needs root"), "{err}");
}
