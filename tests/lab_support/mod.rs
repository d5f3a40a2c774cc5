//! Shared by the `lab_*` tests: a scratch area owned by the
//! test user with our binaries, a busybox root image and a lab directory,
//! and `uml_lab` run as that user (optionally inside a network namespace).
#![allow(dead_code)]

use crate::common;
use common::kernel::{can_boot, test_user, User};
use common::net::Netns;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The image's own init: says so on the console (lab_basic looks for it)
/// and idles.
const IMAGE_INIT: &str = "#!/bin/sh\necho IMAGE-INIT-RAN\nwhile true; do sleep 1000; done\n";

/// `bin/` (uml_lab, linux, uml_switch), `root_fs` (busybox ext3), `lab/`.
pub struct Area {
    pub dir: tempfile::TempDir,
    pub user: User,
    /// `(namespace name, --host)` of every `uml_lab start` made, so that
    /// drop stops each.
    started: std::sync::Mutex<Vec<(Option<String>, Option<String>)>>,
    /// `PATH` for `uml_lab` (and so for `linux`'s `uml_net`), when set.
    pub path: Option<String>,
}

/// The area for `test`, or `None` (after a loud skip) when guests cannot
/// boot here.
pub fn area(test: &str) -> Option<Area> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(Area::new(user))
}

impl Area {
    /// A fresh area for `user` (`User { ids: None }` runs as the caller).
    pub fn new(user: User) -> Area {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for b in ["uml_lab", "linux", "uml_switch"] {
            common::copy_executable(&common::bin(b), &bin.join(b));
        }
        let tree = dir.path().join("tree");
        common::uml::busybox_tree(&tree, IMAGE_INIT);
        std::fs::create_dir_all(tree.join("sbin")).unwrap();
        std::fs::copy(tree.join("init"), tree.join("sbin/init")).unwrap();
        common::mkfs_ext3(&tree, &dir.path().join("root_fs"), 64);
        std::fs::remove_dir_all(&tree).unwrap();
        std::fs::create_dir(dir.path().join("lab")).unwrap();
        Area {
            dir,
            user,
            started: Default::default(),
            path: None,
        }
    }

    pub fn lab(&self) -> PathBuf {
        self.dir.path().join("lab")
    }

    pub fn image(&self) -> PathBuf {
        self.dir.path().join("root_fs")
    }

    pub fn write(&self, name: &str, text: &str) {
        let p = self.lab().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn chown(&self) {
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

    /// The command `uml_lab ARGS` as the test user in the lab directory,
    /// inside `ns` when given.
    pub fn command(&self, ns: Option<&Netns>, args: &[&str]) -> Command {
        let prog = self.dir.path().join("bin/uml_lab");
        let mut cmd = match (ns, self.user.ids) {
            (Some(ns), Some(_)) => ns.command("setpriv"),
            (None, Some(_)) => Command::new("setpriv"),
            (Some(ns), None) => ns.command(&prog),
            (None, None) => Command::new(&prog),
        };
        if let Some((uid, gid)) = self.user.ids {
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(&prog);
        }
        cmd.args(args)
            .current_dir(self.lab())
            .env("HOME", self.dir.path())
            .env_remove("UML_LAB_IMAGE")
            .stdin(Stdio::null());
        if let Some(p) = &self.path {
            cmd.env("PATH", p);
        }
        cmd
    }

    /// `uml_lab ARGS`, its output.
    pub fn run(&self, ns: Option<&Netns>, args: &[&str]) -> Output {
        self.command(ns, args).output().unwrap()
    }

    /// `uml_lab ARGS`, which must succeed: its standard output.
    pub fn ok(&self, ns: Option<&Netns>, args: &[&str]) -> String {
        let out = self.run(ns, args);
        assert!(
            out.status.success(),
            "uml_lab {args:?}: {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            common::stdout(&out),
            common::stderr(&out),
            self.consoles()
        );
        common::stdout(&out)
    }

    /// `uml_lab [--host HOST] start --no-hosthome` inside `ns`; its
    /// standard error.
    pub fn start(&self, ns: Option<&Netns>, host: Option<&str>) -> String {
        self.start_with(ns, host, &["--no-hosthome"])
    }

    /// `uml_lab [--host HOST] start EXTRA...` inside `ns`, which must
    /// succeed; its standard error.
    pub fn start_with(&self, ns: Option<&Netns>, host: Option<&str>, extra: &[&str]) -> String {
        let img = self.image().display().to_string();
        let mut args = Vec::new();
        if let Some(h) = host {
            args.extend(["--host", h]);
        }
        args.extend(["start", "--image", &img, "--timeout", "90"]);
        args.extend_from_slice(extra);
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((ns.map(|n| n.name.clone()), host.map(str::to_string)));
        let out = self.run(ns, &args);
        let err = common::stderr(&out);
        assert!(
            out.status.success(),
            "start {host:?} failed: {err}\n{}",
            self.consoles()
        );
        err
    }

    /// The last lines of every machine's console, for failure messages.
    pub fn consoles(&self) -> String {
        let mut s = String::new();
        let Ok(rd) = std::fs::read_dir(self.lab()) else {
            return s;
        };
        for st in rd.flatten() {
            let name = st.file_name().to_string_lossy().into_owned();
            if !name.starts_with(".uml_lab") {
                continue;
            }
            for sw in std::fs::read_dir(st.path().join("sw"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if sw.file_name().to_string_lossy().ends_with(".log") {
                    let log = std::fs::read_to_string(sw.path()).unwrap_or_default();
                    s.push_str(&format!("--- {name}/sw/{:?}:\n{log}\n", sw.file_name()));
                }
            }
            for m in std::fs::read_dir(st.path().join("m"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let log = std::fs::read_to_string(m.path().join("console.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                s.push_str(&format!(
                    "--- {name}/{:?}:\n{}\n",
                    m.file_name(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
        s
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // Never leave a guest running: kill whatever each start recorded.
        let mut started =
            std::mem::take(&mut *self.started.lock().unwrap_or_else(|e| e.into_inner()));
        if started.is_empty() {
            // A test that expected a start to be refused may have been
            // wrong: stop whatever the lab directory records.
            started.push((None, None));
        }
        for (ns, host) in started {
            let mut args = Vec::new();
            if let Some(h) = &host {
                args.extend(["--host", h.as_str()]);
            }
            args.extend(["stop", "--force"]);
            // The namespace may be gone; the processes are killed by pid
            // from the state directory either way, from outside it.
            let _ = ns;
            let _ = self.run(None, &args);
        }
    }
}
