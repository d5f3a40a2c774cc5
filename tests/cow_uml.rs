//! The classic workflow with the real UML kernel: COW files made by our
//! uml_mkcow boot `linux.uml`, the guest's writes land in the COW, our
//! uml_moo merges them into an image that debugfs and e2fsck accept, equal
//! to Debian's merge; a running guest's COW is refused as in use; a COW
//! rebased by uml_cow boots over the moved backing file.

mod common;

use common::uml::{init_script, Guest};
use common::{bin, have_peers, run, run_ok, stderr, stdout, umlkit};
use std::path::Path;
use std::time::Duration;

const PEERS: &[&str] = &[
    "linux.uml",
    "mke2fs",
    "busybox",
    "debugfs",
    "e2fsck",
    "uml_moo",
    "uml_mkcow",
];
const LIMIT: Duration = Duration::from_secs(60);

/// A guest that writes a file, remounts its root read-only and halts.
fn writer_guest() -> Guest {
    Guest::new(
        &init_script(
            "cat /data/hello.txt 2>/dev/null || echo NO-HELLO-YET\n\
             echo 'written in the guest' > /data/hello.txt\n\
             mount -o remount,ro /",
        ),
        16,
    )
}

fn debugfs_cat(image: &Path, file: &str) -> String {
    let out = run_ok(
        common::which("debugfs").unwrap(),
        [Path::new("-R"), Path::new(&format!("cat {file}")), image],
    );
    stdout(&out)
}

fn e2fsck_clean(image: &Path) {
    let copy = image.with_extension("fsck");
    std::fs::copy(image, &copy).unwrap();
    let out = run(common::which("e2fsck").unwrap(), [Path::new("-fy"), &copy]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck on {}: {}{}",
        image.display(),
        stdout(&out),
        stderr(&out)
    );
    std::fs::remove_file(copy).unwrap();
}

fn boot_and_merge(cow_maker: &str) {
    let guest = writer_guest();
    let cow = guest.path("a.cow");
    if cow_maker == "ours" {
        run_ok(bin("uml_mkcow"), [&cow, &guest.image]);
    } else {
        run_ok("uml_mkcow", [&cow, &guest.image]);
    }
    let before = std::fs::read(&guest.image).unwrap();
    let mtime_before = std::fs::metadata(&guest.image).unwrap().modified().unwrap();
    let boot = guest.boot("a.cow,root_fs", &["umid=cowtest"], LIMIT);
    assert!(
        boot.halted(),
        "guest on a COW made by {cow_maker} did not halt:\n{}",
        boot.output
    );
    assert!(boot.output.contains("GUEST-DONE"), "{}", boot.output);
    assert!(
        std::fs::read(&guest.image).unwrap() == before,
        "the backing file was written"
    );
    assert_eq!(
        std::fs::metadata(&guest.image).unwrap().modified().unwrap(),
        mtime_before
    );

    let info = run_ok(
        bin("uml_cow"),
        [Path::new("--json"), Path::new("info"), &cow],
    );
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert!(info["dirty_sectors"].as_u64().unwrap() > 0, "{info}");
    assert_eq!(info["backing_matches"], true);

    let ours = guest.path("ours.img");
    let theirs = guest.path("theirs.img");
    run_ok(bin("uml_moo"), [&cow, &ours]);
    run_ok("uml_moo", [&cow, &theirs]);
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "merge differs from Debian's"
    );
    assert_eq!(
        debugfs_cat(&ours, "/data/hello.txt"),
        "written in the guest\n"
    );
    assert!(debugfs_cat(&guest.image, "/data/hello.txt").is_empty());
    e2fsck_clean(&ours);
}

#[test]
fn a_cow_from_our_uml_mkcow_boots_and_our_merge_equals_debians() {
    if have_peers(
        "a_cow_from_our_uml_mkcow_boots_and_our_merge_equals_debians",
        PEERS,
    ) {
        boot_and_merge("ours");
    }
}

#[test]
fn a_cow_from_debian_uml_mkcow_merges_with_ours_like_with_debians() {
    if have_peers(
        "a_cow_from_debian_uml_mkcow_merges_with_ours_like_with_debians",
        PEERS,
    ) {
        boot_and_merge("debian");
    }
}

#[test]
fn a_cow_created_by_the_kernel_merges_in_place_like_debian() {
    if !have_peers(
        "a_cow_created_by_the_kernel_merges_in_place_like_debian",
        PEERS,
    ) {
        return;
    }
    let guest = writer_guest();
    let boot = guest.boot("k.cow,root_fs", &["umid=kcow"], LIMIT);
    assert!(boot.halted(), "{}", boot.output);
    let copy = guest.path("copy_fs");
    run_ok(
        "cp",
        [Path::new("--preserve=timestamps"), &guest.image, &copy],
    );
    run_ok(bin("uml_moo"), [Path::new("-d"), &guest.path("k.cow")]);
    run_ok(
        "uml_moo",
        [
            Path::new("-d"),
            Path::new("-b"),
            &copy,
            &guest.path("k.cow"),
        ],
    );
    assert!(std::fs::read(&guest.image).unwrap() == std::fs::read(&copy).unwrap());
    assert_eq!(
        debugfs_cat(&guest.image, "/data/hello.txt"),
        "written in the guest\n"
    );
    e2fsck_clean(&guest.image);
}

#[test]
fn a_running_guests_cow_is_in_use_and_is_not_merged() {
    if !have_peers("a_running_guests_cow_is_in_use_and_is_not_merged", PEERS) {
        return;
    }
    // The guest stays up until the test halts it (or the limit kills it),
    // so that a slow boot on a loaded machine cannot close the window.
    let guest = Guest::new(&init_script("touch /data/started; sleep 600"), 16);
    let cow = guest.path("busy.cow");
    run_ok(bin("uml_mkcow"), [&cow, &guest.image]);
    let dir = guest.dir.path().to_path_buf();
    let runner = std::thread::spawn(move || {
        common::uml::boot(
            &dir,
            &[
                "ubd0=busy.cow,root_fs".into(),
                "root=/dev/ubda".into(),
                "rw".into(),
                "init=/init".into(),
                "umid=busy".into(),
            ],
            // The real kernel's boot alone took over a minute on a loaded
            // machine; the guest must get as far as opening its disk.
            4 * LIMIT,
        )
    });
    // Poll until the kernel has the COW open and locked (a loaded machine
    // boots slowly), for as long as the guest runs.
    let mut refused = None;
    while !runner.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        let out = umlkit("uml_moo", [&cow, &guest.path("merged.img")]);
        if !out.status.success() {
            refused = Some(out);
            break;
        }
        std::fs::remove_file(guest.path("merged.img")).unwrap();
    }
    if refused.is_some() {
        let socket = guest.path("busy/mconsole");
        let _ = umlkit("uml_mconsole", [socket.as_os_str(), "halt".as_ref()]);
    }
    let boot = runner.join().unwrap();
    let out =
        refused.unwrap_or_else(|| panic!("uml_moo never saw the COW in use:\n{}", boot.output));
    assert!(
        stderr(&out).contains("in use by another process"),
        "{}",
        stderr(&out)
    );
    assert!(!guest.path("merged.img").exists());
}

#[test]
fn a_cow_rebased_onto_a_moved_backing_file_boots_alone() {
    if !have_peers("a_cow_rebased_onto_a_moved_backing_file_boots_alone", PEERS) {
        return;
    }
    let guest = writer_guest();
    let boot = guest.boot("a.cow,root_fs", &["umid=rebase1"], LIMIT);
    assert!(boot.halted(), "{}", boot.output);
    assert!(boot.output.contains("NO-HELLO-YET"), "{}", boot.output);
    // Move the image: a plain copy has a new mtime, so the COW no longer opens.
    let moved_dir = guest.path("moved");
    std::fs::create_dir(&moved_dir).unwrap();
    let moved = moved_dir.join("image.ext3");
    std::fs::copy(&guest.image, &moved).unwrap();
    std::fs::remove_file(&guest.image).unwrap();
    let cow = guest.path("a.cow");
    let out = umlkit("uml_moo", [&cow, &guest.path("x.img")]);
    assert!(!out.status.success());
    run_ok(bin("uml_cow"), [Path::new("rebase"), &cow, &moved]);
    let info = run_ok(bin("uml_cow"), [Path::new("info"), &cow]);
    assert!(
        stdout(&info).contains(&*moved.to_string_lossy()),
        "{}",
        stdout(&info)
    );
    // The kernel follows the header alone and sees the guest's earlier file.
    let guest2 = Guest {
        dir: tempfile::tempdir().unwrap(),
        image: moved.clone(),
    };
    std::fs::copy(&cow, guest2.path("a.cow")).unwrap();
    let boot = Guest::boot(&guest2, "a.cow", &["umid=rebase2"], LIMIT);
    assert!(boot.halted(), "{}", boot.output);
    assert!(
        boot.output.contains("written in the guest"),
        "{}",
        boot.output
    );
    assert!(!boot.output.contains("NO-HELLO-YET"), "{}", boot.output);
    let merged = guest2.path("m.img");
    run_ok(bin("uml_moo"), [&guest2.path("a.cow"), &merged]);
    assert_eq!(
        debugfs_cat(&merged, "/data/hello.txt"),
        "written in the guest\n"
    );
}
