//! The classic UML article on the stock Debian guest under both kernels in
//! the same test (issue 13): Debian's `linux.uml` and our `linux` boot the
//! same image with the article's command line on a pty, and the lines a
//! person sees are compared line by line: the login banner, the halt, the
//! panic when the guest has destroyed itself, and the exit statuses.

mod common;

use common::debian::{DebianGuest, PtyGuest};
use common::kernel::User;
use std::process::Command;
use std::time::Duration;

/// The real kernel boots Debian in about 20 s on a quiet machine; this one
/// is shared with other tests.
const BOOT: Duration = Duration::from_secs(300);
const SHELL: Duration = Duration::from_secs(120);

/// Which kernel runs the guest.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    Ours,
    Real,
}

/// Starts `kernel` on the COW file `cow` over the guest's image, with the
/// article's command line (plus, for `linux.uml`, the memory Debian needs
/// and this host's work-around word).
fn start(d: &DebianGuest, kernel: Kernel, cow: &str) -> PtyGuest {
    let ubd0 = format!("ubd0={cow},root_fs");
    match kernel {
        Kernel::Ours => d.start(&[&ubd0, "root=/dev/ubda"]),
        Kernel::Real => {
            let mut cmd = Command::new(common::which("linux.uml").expect("linux.uml"));
            cmd.args([&ubd0, "root=/dev/ubda", "mem=256M"])
                .arg(format!("uml_dir={}", d.dir.path().display()))
                .arg(common::uml::GLIBC_TUNABLES)
                .current_dir(d.dir.path())
                .env("HOME", d.dir.path())
                .env("TERM", "vt100");
            common::uml::apply_shim_on_terminal(&mut cmd);
            PtyGuest::spawn(cmd, User { ids: None })
        }
    }
}

/// The real kernel, under load, sometimes fails its crypto self-tests and
/// then cannot open its root disk (ENOMEM) before init runs: nothing
/// this test compares has happened yet, so that boot is run once more.
fn start_until_it_opens_its_root(d: &DebianGuest, kernel: Kernel, cow: &str) -> PtyGuest {
    let mut g = start(d, kernel, cow);
    if let Kernel::Real = kernel {
        if g.wait_for("Run /sbin/init as init process", BOOT).is_err() {
            let t = g.transcript();
            assert!(
                t.contains("VFS: Cannot open root device") && t.contains("error -12"),
                "linux.uml: no init:\n{t}"
            );
            eprintln!(
                "\n*** linux.uml could not open its root disk under load; booting again ***\n"
            );
            drop(g);
            g = start(d, kernel, cow);
        }
    }
    g
}

/// What one kernel showed: the banner line above `login:`, the last
/// kernel line and status of `halt`, and the panic line and status of the
/// boot after `rm -rf --no-preserve-root /` and `kill -9`.
#[derive(Debug, PartialEq)]
struct Seen {
    banner: String,
    halted: String,
    halt_status: Option<i32>,
    panic: String,
    panic_status: Option<i32>,
}

/// The line of `text` holding `needle`, trimmed of trailing blanks.
fn line_with(text: &str, needle: &str) -> String {
    text.lines()
        .find(|l| l.contains(needle))
        .map(|l| l.trim_end().to_string())
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

fn log_in(g: &mut PtyGuest) -> String {
    g.expect("debian login:", BOOT);
    let t = g.transcript();
    let lines: Vec<&str> = t.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.contains("debian login:"))
        .expect("login line");
    let banner = lines[..at]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim_end().to_string())
        .unwrap_or_default();
    g.send("root\n");
    g.expect("root@debian:~#", SHELL);
    banner
}

fn article(d: &DebianGuest, kernel: Kernel) -> Seen {
    let cow = format!("{kernel:?}.cow");
    // Boot, log in, halt.
    let mut g = start_until_it_opens_its_root(d, kernel, &cow);
    let banner = log_in(&mut g);
    g.send("halt\n");
    let halt_status = g.wait(BOOT);
    let halted = line_with(&g.transcript(), "reboot: ");
    // Boot again, destroy everything, die without a clean shutdown.
    let mut g = start_until_it_opens_its_root(d, kernel, &cow);
    log_in(&mut g);
    g.send("rm -rf --no-preserve-root / 2>/dev/null; echo RM-DONE-$((1+1))\n");
    g.expect("RM-DONE-2", SHELL);
    // Past the 5 s journal commit, as in the article.
    std::thread::sleep(Duration::from_secs(7));
    let pid = g.pid().expect("kernel running");
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    g.wait(SHELL);
    // The next boot recovers the journal and finds no init.
    let mut g = start_until_it_opens_its_root(d, kernel, &cow);
    let panic_status = g.wait(BOOT);
    let panic = line_with(&g.transcript(), "Kernel panic - not syncing");
    Seen {
        banner,
        halted,
        halt_status,
        panic,
        panic_status,
    }
}

#[test]
fn the_article_under_linux_uml_and_under_linux_shows_the_same_banner_halt_panic_and_statuses() {
    let test = "the_article_under_linux_uml_and_under_linux";
    if !common::have_root(test) || !common::have_peers(test, &["linux.uml"]) {
        return;
    }
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let ours = article(&d, Kernel::Ours);
    let real = article(&d, Kernel::Real);
    eprintln!("linux:     {ours:?}\nlinux.uml: {real:?}");
    assert_eq!(
        real.banner, "Debian GNU/Linux 12 debian console",
        "linux.uml's banner"
    );
    assert_eq!(real.halt_status, Some(0), "linux.uml's halt: {real:?}");
    assert!(
        real.panic
            .contains("Kernel panic - not syncing: No working init found."),
        "{real:?}"
    );
    assert_eq!(ours, real, "linux (left) against linux.uml (right)");
}
