//! A guest that keeps running while a test drives its management console:
//! `linux.uml` started in its own process group through the harness's
//! seccomp shim, killed by a time limit (a watchdog thread) and on drop.
//! Its `uml_dir` is `<guest dir>/.uml`, so with `HOME=<guest dir>` the
//! guest is found by its umid, as `~/.uml/<umid>/mconsole`.

use super::uml::{apply_shim, Guest, GLIBC_TUNABLES};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An `/init` that lets Ctrl-Alt-Del signal it (`GOT-CAD` on the console),
/// runs `body`, says `READY`, and idles until the guest is halted.
pub fn idle_init(body: &str) -> String {
    super::uml::init_script(&format!(
        "echo 0 > /proc/sys/kernel/ctrl-alt-del\ntrap 'echo GOT-CAD' INT\n{body}\necho READY\n\
         while true; do sleep 1; done"
    ))
}

/// A running `linux.uml`.
pub struct RunningGuest {
    child: Child,
    done: Arc<AtomicBool>,
    output: Arc<Mutex<Vec<u8>>>,
    /// The guest's directory (its `HOME` for the clients).
    pub home: PathBuf,
    /// The umid.
    pub umid: String,
}

impl RunningGuest {
    /// Boots `guest` with `ubd0=root_fs`, `umid=<umid>` and `extra`
    /// arguments; the whole process group is killed after `limit`.
    pub fn start(guest: &Guest, umid: &str, extra: &[&str], limit: Duration) -> RunningGuest {
        let kernel = super::which("linux.uml").expect("linux.uml");
        let home = guest.dir.path().to_path_buf();
        let mut cmd = Command::new(kernel);
        cmd.current_dir(&home)
            .args(["ubd0=root_fs", "root=/dev/ubda", "rw", "init=/init"])
            .arg(format!("umid={umid}"))
            .arg(format!("uml_dir={}/.uml", home.display()))
            .args(extra)
            .args(["con=null", "con0=fd:0,fd:1", "mem=64M", GLIBC_TUNABLES])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        apply_shim(&mut cmd);
        let mut child = cmd.spawn().expect("spawn linux.uml");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let done = Arc::new(AtomicBool::new(false));
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let watchdog_done = Arc::clone(&done);
        std::thread::spawn(move || {
            let start = Instant::now();
            while !watchdog_done.load(Ordering::SeqCst) {
                if start.elapsed() > limit {
                    eprintln!("guest time limit ({limit:?}) reached: killing it");
                    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RunningGuest {
            child,
            done,
            output,
            home,
            umid: umid.to_string(),
        }
    }

    /// `<home>/.uml/<umid>`.
    pub fn instance_dir(&self) -> PathBuf {
        self.home.join(".uml").join(&self.umid)
    }

    /// The guest's mconsole socket.
    pub fn socket(&self) -> PathBuf {
        self.instance_dir().join("mconsole")
    }

    /// The console and kernel output so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `text` `times` times; false on
    /// timeout or when the kernel exited first.
    pub fn wait_for(&mut self, text: &str, times: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.output().matches(text).count() >= times {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return self.output().matches(text).count() >= times;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits for the kernel to exit; `None` when it did not within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the kernel's process group with SIGKILL (as a crash would,
    /// leaving the socket and pid file behind) and reaps it.
    pub fn kill(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for RunningGuest {
    fn drop(&mut self) {
        self.kill();
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Runs `program` with `args`, `HOME` set to `home`, in `cwd`, with
/// `input` on standard input, killed after 30 s (the original client
/// waits for ever); returns (status, stdout, stderr).
pub fn client(
    program: &Path,
    home: &Path,
    cwd: &Path,
    args: &[&str],
    input: Option<&[u8]>,
) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "30"])
        .arg(program)
        .args(args)
        .env("HOME", home)
        .current_dir(cwd)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
