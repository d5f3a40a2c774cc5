//! The classic UML article's destruction scenario on a stock Debian guest
//! (issue 13): `rm -rf --no-preserve-root /` as root, `kill -9` of the
//! kernel from the host, the next boot recovers the journal and finds no
//! init, and deleting the COW file boots a fresh system.

mod common;

use common::debian::{DebianGuest, PtyGuest};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(240);
const SHELL: Duration = Duration::from_secs(120);
const ARTICLE: [&str; 2] = ["ubd0=Debian1.cow,root_fs", "root=/dev/ubda"];

fn log_in(g: &mut PtyGuest) {
    g.expect("debian login:", BOOT);
    g.send("root\n");
    g.expect("root@debian:~#", SHELL);
}

#[test]
fn rm_rf_root_then_kill_9_panics_with_no_init_and_a_new_cow_boots_fresh() {
    let test = "rm_rf_root_then_kill_9";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g);
    // `echo` is a shell builtin: it still runs once /bin is gone.
    g.send("rm -rf --no-preserve-root / 2>/dev/null; echo RM-DONE-$((1+1))\n");
    g.expect("RM-DONE-2", SHELL);
    // Past the 5 s journal commit, as in the article: the deletions are
    // in the journal when the kernel dies.
    std::thread::sleep(Duration::from_secs(7));
    let pid = g.pid().expect("monitor running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(g.wait(SHELL), Some(137), "{}", g.transcript());

    let mut g = d.start(&ARTICLE);
    let code = g.wait(BOOT);
    let out = g.transcript();
    assert!(
        out.contains("Kernel panic - not syncing: No working init found."),
        "{out}"
    );
    assert!(
        out.contains("recovery complete"),
        "no journal recovery:\n{out}"
    );
    assert_ne!(code, Some(0), "{out}");

    std::fs::remove_file(d.path("Debian1.cow")).unwrap();
    let mut g = d.start(&ARTICLE);
    log_in(&mut g);
    g.send("ls /bin/bash && echo FRESH-$((2+2))\n");
    g.expect("FRESH-4", SHELL);
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}
