//! `uml_fs` editing commands on a plain image and on a COW view: the
//! changes are visible to `uml_fs cat`/`debugfs`, `e2fsck -fn` is clean,
//! the backing file of a COW is untouched, and `--dry-run` changes nothing.

mod common;

fn uml_fs(args: &[&str]) -> std::process::Output {
    common::umlkit("uml_fs", args)
}

fn ok(args: &[&str]) -> String {
    let out = uml_fs(args);
    assert!(
        out.status.success(),
        "uml_fs {args:?}: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

#[test]
fn editing_commands_change_a_plain_image_and_keep_it_clean() {
    if !common::have_peers(
        "editing_commands_change_a_plain_image_and_keep_it_clean",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a"), b"hello\n").unwrap();
    std::fs::write(tree.join("sub/big"), common::pattern(3, 200_000)).unwrap();
    std::os::unix::fs::symlink("a", tree.join("l")).unwrap();
    std::fs::hard_link(tree.join("a"), tree.join("h")).unwrap();
    let img = dir.path().join("a.img");
    common::run_ok(
        "mke2fs",
        ["-q", "-F", "-t", "ext3", img.to_str().unwrap(), "32M"],
    );
    let i = img.to_str().unwrap();
    ok(&["put", "--owner", "0:0", i, tree.to_str().unwrap(), "/t"]);
    ok(&["mkdir", "-p", i, "/x/y/z"]);
    let mut child = std::process::Command::new(common::bin("uml_fs"))
        .args(["write", i, "/x/f"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    ok(&["mv", i, "/x/f", "/x/y"]);
    ok(&["ln", "-s", i, "/etc/nowhere", "/x/s"]);
    ok(&["ln", i, "/x/y/f", "/x/g"]);
    ok(&["chmod", i, "600", "/x/g"]);
    ok(&["chown", i, "5:6", "/x/g"]);
    ok(&["touch", i, "/new"]);
    let before = std::fs::read(&img).unwrap();
    let plan = ok(&["rm", "--dry-run", "-r", i, "/x"]);
    assert!(
        plan.contains("rm /x/g") && plan.contains("rmdir /x"),
        "{plan}"
    );
    assert!(
        std::fs::read(&img).unwrap() == before,
        "--dry-run changed the image"
    );
    assert!(
        !uml_fs(&["rm", i, "/x"]).status.success(),
        "rm of a directory without -r"
    );
    ok(&["rm", "-r", i, "/t/sub"]);
    common::fsck_clean(&img);
    assert_eq!(ok(&["cat", i, "/x/g"]), "from stdin\n");
    assert_eq!(ok(&["cat", i, "/t/h"]), "hello\n");
    let ls = ok(&["ls", "-l", i, "/x"]);
    assert!(ls.contains("-rw-------   2     5     6"), "{ls}");
    assert!(ls.contains("s -> /etc/nowhere"), "{ls}");
    let out = common::run("debugfs", ["-R", "stat /t/h", i]);
    assert!(
        common::stdout(&out).contains("Links: 2"),
        "{}",
        common::stdout(&out)
    );
    assert!(!ok(&["ls", i, "/t"]).contains("sub"));
}

#[test]
fn editing_a_cow_view_changes_only_the_cow_file() {
    if !common::have_peers(
        "editing_a_cow_view_changes_only_the_cow_file",
        &["mke2fs", "e2fsck"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("root_fs");
    common::run_ok(
        "mke2fs",
        ["-q", "-F", "-t", "ext3", base.to_str().unwrap(), "32M"],
    );
    let before = std::fs::read(&base).unwrap();
    let cow = dir.path().join("a.cow");
    let spec = format!("{},{}", cow.display(), base.display());
    let host = dir.path().join("hostname");
    std::fs::write(&host, b"edited\n").unwrap();
    ok(&["mkdir", &spec, "/etc"]);
    ok(&["put", &spec, host.to_str().unwrap(), "/etc/hostname"]);
    assert!(cow.exists());
    assert!(
        std::fs::read(&base).unwrap() == before,
        "the backing file changed"
    );
    assert_eq!(
        ok(&["cat", cow.to_str().unwrap(), "/etc/hostname"]),
        "edited\n"
    );
    let merged = dir.path().join("merged");
    common::run_ok(
        common::bin("uml_moo"),
        [cow.to_str().unwrap(), merged.to_str().unwrap()],
    );
    common::fsck_clean(&merged);
}
