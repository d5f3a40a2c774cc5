//! `uml_mconsole` against the real `linux.uml`: every command of the issue
//! on one running guest, compared byte for byte (standard output and exit
//! status) with Debian's `/usr/bin/uml_mconsole` on the same guest; the
//! notify listener; a crashed guest's stale socket.

mod common;

use common::mcon::{client, idle_init, RunningGuest};
use common::uml::Guest;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use umlkit::cli::uml_mconsole::texts::LOCAL_HELP;
use umlkit::mconsole::commands::HELP_TEXT;

const PEERS: &[&str] = &["linux.uml", "mke2fs", "busybox", "uml_mconsole"];

struct Clients {
    ours: PathBuf,
    debian: PathBuf,
    home: PathBuf,
}

type Run = (i32, Vec<u8>, String);

impl Clients {
    fn new(home: &Path) -> Clients {
        Clients {
            ours: common::bin("uml_mconsole"),
            debian: common::which("uml_mconsole").expect("uml_mconsole"),
            home: home.to_path_buf(),
        }
    }

    fn ours(&self, args: &[&str]) -> Run {
        client(&self.ours, &self.home, &self.home, args, None)
    }

    fn debian(&self, args: &[&str]) -> Run {
        client(&self.debian, &self.home, &self.home, args, None)
    }

    /// Runs both clients (ours first) and checks they print the same bytes
    /// and exit the same way; returns ours.
    fn same(&self, args: &[&str]) -> Run {
        let ours = self.ours(args);
        let debian = self.debian(args);
        assert_eq!(
            (ours.0, text(&ours.1)),
            (debian.0, text(&debian.1)),
            "{args:?}: ours (left) differs from Debian's; our stderr: {}",
            ours.2
        );
        ours
    }

    fn interactive(&self, program: &Path, input: &str) -> Run {
        client(
            program,
            &self.home,
            &self.home,
            &["mcon1"],
            Some(input.as_bytes()),
        )
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn keys(meminfo: &str) -> Vec<&str> {
    meminfo
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect()
}

#[test]
fn real_guest_answers_every_command_like_debians_client() {
    let test = "real_guest_answers_every_command_like_debians_client";
    if !common::have_peers(test, PEERS) {
        return;
    }
    let guest = Guest::new(&idle_init(""), 16);
    for name in ["extra1.img", "extra2.img"] {
        std::fs::write(guest.path(name), vec![0u8; 1 << 20]).unwrap();
    }
    let mut g = RunningGuest::start(&guest, "mcon1", &[], Duration::from_secs(100));
    assert!(
        g.wait_for("READY", 1, Duration::from_secs(40)),
        "guest did not boot:\n{}",
        g.output()
    );
    let c = Clients::new(&g.home);
    let home = std::fs::canonicalize(&g.home).unwrap();

    // Queries, found by umid under $HOME/.uml.
    let (_, out, _) = c.same(&["mcon1", "version"]);
    assert!(text(&out).starts_with("OK Linux "), "{}", text(&out));
    let (_, out, _) = c.same(&["mcon1", "help"]);
    assert_eq!(
        text(&out),
        format!("OK {HELP_TEXT}\n{LOCAL_HELP}"),
        "the kernel's help text changed"
    );
    let (_, out, _) = c.same(&["mcon1", "proc", "version"]);
    assert!(
        text(&out).starts_with("OK \nLinux version "),
        "{}",
        text(&out)
    );
    let (code, ours, _) = c.ours(&["mcon1", "proc", "meminfo"]);
    let (_, debian, _) = c.debian(&["mcon1", "proc", "meminfo"]);
    assert_eq!(code, 0);
    assert!(text(&ours).starts_with("OK \nMemTotal:"), "{}", text(&ours));
    assert_eq!(keys(&text(&ours)), keys(&text(&debian)));
    c.same(&["mcon1", "foo"]);
    c.same(&["mcon1", "remove", "ubd5"]);
    c.same(&["mcon1", "config", "ubd0"]);
    c.same(&["mcon1", "sysrq", "h"]);
    c.same(&["mcon1", "mconsole-version"]);
    c.same(&["mcon1", "proc", "nosuchfile"]);
    c.same(&["mcon1", "stack", "99999"]);
    let (code, out, _) = c.same(&["mcon1", "config", "ubd3=/nonexistent/x.img"]);
    assert_eq!(
        (code, text(&out).as_str()),
        (254, "ERR Couldn't determine size of device's file\n")
    );

    // log reaches the kernel log; sysrq output is streamed back.
    let (code, out, _) = c.ours(&["mcon1", "log", "hello-from-umlkit-log"]);
    assert_eq!((code, text(&out).as_str()), (0, "OK \nOK \n"));
    assert!(
        g.wait_for("hello-from-umlkit-log", 1, Duration::from_secs(10)),
        "{}",
        g.output()
    );
    let (code, out, _) = c.ours(&["mcon1", "sysrq", "m"]);
    assert_eq!(code, 0);
    assert!(
        text(&out).starts_with("OK sysrq: Show Memory\nMem-Info:"),
        "{}",
        text(&out)
    );

    // config with a relative file name (made absolute), query, remove.
    let (code, out, err) = c.ours(&["mcon1", "config", "ubd1=extra1.img"]);
    assert_eq!((code, text(&out).as_str()), (0, "OK \n"), "{err}");
    let (code, out, err) = c.debian(&["mcon1", "config", "ubd2=extra2.img"]);
    assert_eq!((code, text(&out).as_str()), (0, "OK \n"), "{err}");
    let (_, out, _) = c.same(&["mcon1", "config", "ubd1"]);
    assert_eq!(text(&out), format!("OK {}/extra1.img\n", home.display()));
    let (_, out, _) = c.same(&["mcon1", "config", "ubd2"]);
    assert_eq!(text(&out), format!("OK {}/extra2.img\n", home.display()));
    assert_eq!(c.ours(&["mcon1", "remove", "ubd1"]).1, b"OK \n");
    assert_eq!(c.debian(&["mcon1", "remove", "ubd2"]).1, b"OK \n");
    c.same(&["mcon1", "config", "ubd1"]);

    // stop freezes the guest but mconsole answers; go resumes it.
    assert_eq!(
        c.ours(&["mcon1", "stop"]),
        (0, b"OK stopped\n".to_vec(), String::new())
    );
    let (code, out, _) = c.same(&["mcon1", "stop"]);
    assert_eq!((code, text(&out).as_str()), (1, "ERR Already stopped\n"));
    c.same(&["mcon1", "version"]);
    assert_eq!(c.ours(&["mcon1", "go"]).1, b"OK \n");
    let (code, out, _) = c.same(&["mcon1", "go"]);
    assert_eq!((code, text(&out).as_str()), (1, "ERR Not stopped\n"));

    // The socket path works as well as the umid.
    let socket = g.socket();
    c.same(&[socket.to_str().unwrap(), "version"]);

    // Interactive mode through a pipe, with and without quit.
    let script = "version\nhelp\nbogus\nmconsole-version\nconfig ubd0\nswitch mcon1\n\nlog piped\nquit\nversion\n";
    let ours = c.interactive(&c.ours, script);
    let debian = c.interactive(&c.debian, script);
    assert_eq!(
        (ours.0, text(&ours.1)),
        (debian.0, text(&debian.1)),
        "interactive output differs"
    );
    assert!(
        text(&ours.1).starts_with("(mcon1) version\nOK Linux"),
        "{}",
        text(&ours.1)
    );
    let ours = c.interactive(&c.ours, "version\n");
    let debian = c.interactive(&c.debian, "version\n");
    assert_eq!((ours.0, text(&ours.1)), (debian.0, text(&debian.1)));
    assert!(text(&ours.1).ends_with("(mcon1) \n"), "{}", text(&ours.1));

    // JSON for scripts.
    let (code, out, _) = c.ours(&["--json", "mcon1", "remove", "ubd5"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(code, 237);
    assert_eq!(v["ok"], false);
    assert_eq!(v["err"], -19);
    assert_eq!(v["reply"], "Device doesn't exist");
    let (code, out, _) = c.ours(&["--json", "--timeout", "5", "mcon1", "version"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((code, &v["ok"]), (0, &serde_json::Value::Bool(true)));
    assert!(v["reply"].as_str().unwrap().starts_with("Linux "), "{v}");

    // cad signals init (ctrl-alt-del set to 0 by the init script).
    assert_eq!(c.ours(&["mcon1", "cad"]).1, b"OK \n");
    assert!(
        g.wait_for("GOT-CAD", 1, Duration::from_secs(10)),
        "{}",
        g.output()
    );

    // halt ends the guest cleanly and removes its directory.
    assert_eq!(c.ours(&["mcon1", "halt"]).1, b"OK \n");
    let status = g
        .wait_exit(Duration::from_secs(30))
        .expect("guest did not halt");
    assert!(status.success(), "{status:?}\n{}", g.output());
    assert!(
        !g.instance_dir().exists(),
        "the umid directory was left behind"
    );
    let (code, out, err) = c.ours(&["mcon1", "version"]);
    assert_eq!((code, out.as_slice()), (1, &b""[..]));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no guest named 'mcon1'"), "{err}");
}

#[test]
fn notify_listener_hears_the_boot_and_user_notes_and_a_killed_guest_is_reported() {
    let test = "notify_listener_hears_the_boot_and_user_notes_and_a_killed_guest_is_reported";
    if !common::have_peers(test, PEERS) {
        return;
    }
    let guest = Guest::new(&idle_init("echo hello-user > /proc/mconsole"), 16);
    let notify = guest.path("notify.sock");
    let listener = Command::new("timeout")
        .args(["-s", "KILL", "60"])
        .arg(common::bin("uml_mconsole"))
        .args(["--json", "--count", "2", "--timeout", "50", "--listen"])
        .arg(&notify)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !notify.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "listener did not bind"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let arg = format!("mconsole=notify:{}", notify.display());
    let mut g = RunningGuest::start(&guest, "mcon2", &[&arg], Duration::from_secs(80));
    let out = listener.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "listener: {:?}\n{}",
        out.status,
        g.output()
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["type"], "socket");
    assert_eq!(lines[0]["data"], g.socket().to_str().unwrap());
    assert_eq!(lines[1]["type"], "user");
    assert_eq!(lines[1]["data"], "hello-user\n");
    assert!(!notify.exists(), "the listener left its socket");

    // A guest killed like a crash leaves a stale socket and pid file.
    assert!(
        g.wait_for("READY", 1, Duration::from_secs(30)),
        "{}",
        g.output()
    );
    let c = Clients::new(&g.home);
    assert_eq!(c.ours(&["mcon2", "version"]).0, 0);
    g.kill();
    assert!(g.socket().exists());
    // The guest's user processes share its file table and may take a
    // moment to die after it: until then the socket still takes datagrams.
    for _ in 0..25 {
        if c.ours(&["--timeout", "0.2", "mcon2", "version"])
            .2
            .contains("stale")
        {
            break;
        }
    }
    let (code, out, err) = c.ours(&["mcon2", "version"]);
    assert_eq!((code, out.as_slice()), (1, &b""[..]), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is not running (stale socket"), "{err}");
    assert!(err.contains("which does not exist"), "{err}");
    assert_eq!(c.debian(&["mcon2", "version"]).0, 1);
}

#[test]
fn int_sends_sigint_to_the_guest_process_which_then_exits() {
    let test = "int_sends_sigint_to_the_guest_process_which_then_exits";
    if !common::have_peers(test, PEERS) {
        return;
    }
    let guest = Guest::new(&idle_init(""), 16);
    let mut g = RunningGuest::start(&guest, "mcon3", &[], Duration::from_secs(60));
    assert!(
        g.wait_for("READY", 1, Duration::from_secs(30)),
        "{}",
        g.output()
    );
    let c = Clients::new(&g.home);
    let (code, out, err) = c.ours(&["mcon3", "int"]);
    assert_eq!((code, out.as_slice()), (0, &b""[..]), "{err}");
    let status = g.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some(),
        "the guest ignored SIGINT:\n{}",
        g.output()
    );
    // Linux 6.1 takes a host SIGINT as a request to shut down and cleans up.
    assert!(
        !g.instance_dir().exists(),
        "the umid directory was left behind"
    );
}
