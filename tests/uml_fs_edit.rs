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

/// A merged-/usr style image: `bin -> usr/bin`, `lib -> usr/lib` (relative)
/// and `sbin -> /usr/sbin` (absolute), a few files below them, a symlink
/// loop, and a chain of links `c0 -> c1 -> ... -> c40 -> usr`.
fn merged_usr_image(test: &str) -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if !common::have_peers(test, &["mke2fs", "e2fsck"]) {
        return None;
    }
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for d in ["usr/bin", "usr/lib", "usr/sbin", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("usr/bin/sh"), b"shell\n").unwrap();
    std::fs::write(root.join("usr/lib/libc.so"), b"libc\n").unwrap();
    std::fs::write(root.join("usr/sbin/init"), b"old init\n").unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("usr/lib", root.join("lib")).unwrap();
    symlink("/usr/sbin", root.join("sbin")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    for i in 0..40 {
        symlink(format!("c{}", i + 1), root.join(format!("c{i}"))).unwrap();
    }
    symlink("usr", root.join("c40")).unwrap();
    let img = dir.path().join("root_fs");
    common::mkfs_ext3(&root, &img, 16);
    Some((dir, img))
}

/// The names `uml_fs ls` lists in `path`.
fn names(img: &str, path: &str) -> Vec<String> {
    ok(&["ls", img, path]).lines().map(str::to_string).collect()
}

/// `uml_fs stat` of `path` (not following a final symlink).
fn stat(img: &str, path: &str) -> String {
    ok(&["stat", img, path])
}

#[test]
fn chmod_chown_mkdir_and_rm_work_through_symlinked_directories() {
    let t = "chmod_chown_mkdir_and_rm_work_through_symlinked_directories";
    let Some((_dir, img)) = merged_usr_image(t) else {
        return;
    };
    let i = img.to_str().unwrap();
    ok(&["chmod", i, "700", "/lib/libc.so"]);
    ok(&["chmod", i, "711", "/sbin/init"]);
    ok(&["chown", i, "5:6", "/bin/sh"]);
    assert!(stat(i, "/usr/lib/libc.so").contains("Mode: 0700"));
    assert!(stat(i, "/usr/sbin/init").contains("Mode: 0711"));
    let sh = stat(i, "/usr/bin/sh");
    assert!(sh.contains("Uid: 5") && sh.contains("Gid: 6"), "{sh}");
    // `..` after a symlink is the parent of where the link led (/usr).
    ok(&["chmod", i, "640", "/bin/../lib/libc.so"]);
    assert!(stat(i, "/usr/lib/libc.so").contains("Mode: 0640"));
    // chmod follows a final symlink: the directory changes, not the link.
    ok(&["chmod", i, "750", "/lib"]);
    assert!(stat(i, "/usr/lib").contains("Mode: 0750"));
    ok(&["mkdir", i, "/lib/modules"]);
    ok(&["mkdir", "-p", i, "/sbin/a/b", "/lib", "/bin/"]);
    assert!(stat(i, "/usr/lib/modules").contains("Type: directory"));
    assert!(stat(i, "/usr/sbin/a/b").contains("Type: directory"));
    let out = uml_fs(&["mkdir", i, "/lib"]);
    assert!(!out.status.success(), "mkdir of an existing symlink");
    assert!(common::stderr(&out).contains("File exists"));
    ok(&["rm", i, "/lib/libc.so"]);
    ok(&["rm", "-r", i, "/sbin/a"]);
    let lib = names(i, "/usr/lib");
    assert!(!lib.contains(&"libc.so".to_string()), "{lib:?}");
    assert!(lib.contains(&"modules".to_string()), "{lib:?}");
    assert!(!names(i, "/usr/sbin").contains(&"a".to_string()));
    common::fsck_clean(&img);
}

#[test]
fn put_write_touch_and_ln_through_symlinked_directories() {
    let t = "put_write_touch_and_ln_through_symlinked_directories";
    let Some((dir, img)) = merged_usr_image(t) else {
        return;
    };
    let i = img.to_str().unwrap();
    let host = dir.path().join("init");
    std::fs::write(&host, b"new init\n").unwrap();
    // An existing file behind an absolute directory symlink is replaced.
    ok(&["put", i, host.to_str().unwrap(), "/sbin/init"]);
    assert_eq!(ok(&["cat", i, "/usr/sbin/init"]), "new init\n");
    // Into a symlinked directory under the host file's name.
    ok(&["put", i, host.to_str().unwrap(), "/lib"]);
    assert_eq!(ok(&["cat", i, "/usr/lib/init"]), "new init\n");
    // A host `bin` directory merges into /usr/bin through the link.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/sh"), b"new shell\n").unwrap();
    ok(&["put", i, tree.join("bin").to_str().unwrap(), "/"]);
    assert_eq!(ok(&["cat", i, "/usr/bin/sh"]), "new shell\n");
    assert!(stat(i, "/bin").contains("Type: symbolic link"));
    let mut child = std::process::Command::new(common::bin("uml_fs"))
        .args(["write", i, "/sbin/rc"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"rc\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(&["cat", i, "/usr/sbin/rc"]), "rc\n");
    ok(&["touch", i, "/lib/stamp"]);
    ok(&["ln", i, "/sbin/init", "/bin/init2"]);
    ok(&["ln", "-s", i, "../sbin/init", "/bin/init3"]);
    assert!(stat(i, "/usr/lib/stamp").contains("Type: regular"));
    assert!(stat(i, "/usr/sbin/init").contains("Links: 2"));
    assert_eq!(ok(&["cat", i, "/usr/bin/init3"]), "new init\n");
    // put replaces a symbolic link at PATH instead of writing through it.
    std::fs::write(&host, b"own file\n").unwrap();
    ok(&["put", i, host.to_str().unwrap(), "/bin/init3"]);
    assert!(stat(i, "/usr/bin/init3").contains("Type: regular file"));
    assert_eq!(ok(&["cat", i, "/usr/sbin/init"]), "new init\n");
    common::fsck_clean(&img);
}

#[test]
fn rm_mv_and_ln_act_on_a_final_symlink_itself() {
    let t = "rm_mv_and_ln_act_on_a_final_symlink_itself";
    let Some((_dir, img)) = merged_usr_image(t) else {
        return;
    };
    let i = img.to_str().unwrap();
    // mv into a symlinked directory, then rename the link itself.
    ok(&["mv", i, "/bin/sh", "/lib"]);
    assert_eq!(ok(&["cat", i, "/usr/lib/sh"]), "shell\n");
    ok(&["mv", i, "/lib", "/lib64"]);
    assert!(stat(i, "/lib64").contains("Link: usr/lib"));
    assert!(stat(i, "/usr/lib").contains("Type: directory"));
    // A hard link to a symlink links the symlink (ln -P, GNU's default).
    ok(&["ln", i, "/sbin", "/sbin.link"]);
    assert!(stat(i, "/sbin").contains("Links: 2"));
    // rm of a symlink to a directory removes the link, even with -r.
    ok(&["rm", "-r", i, "/sbin.link", "/bin"]);
    ok(&["rm", i, "/sbin/init"]);
    assert!(!names(i, "/").contains(&"bin".to_string()));
    assert!(stat(i, "/usr/bin").contains("Type: directory"));
    assert!(!names(i, "/usr/sbin").contains(&"init".to_string()));
    common::fsck_clean(&img);
}

/// One line on standard error, failing, naming the cause once.
fn one_line_error(args: &[&str]) -> String {
    let out = uml_fs(args);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "uml_fs {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "uml_fs {args:?}: {err}");
    assert!(err.starts_with("uml_fs: "), "{err}");
    err
}

#[test]
fn a_symlink_loop_is_eloop_in_one_line_and_40_links_resolve() {
    let t = "a_symlink_loop_is_eloop_in_one_line_and_40_links_resolve";
    let Some((_dir, img)) = merged_usr_image(t) else {
        return;
    };
    let i = img.to_str().unwrap();
    let host = img.with_file_name("hostname");
    std::fs::write(&host, b"guest\n").unwrap();
    let h = host.to_str().unwrap();
    for args in [
        &["chmod", i, "644", "/loop1/x"][..],
        &["mkdir", i, "/loop1/x"],
        &["rm", i, "/loop2/x"],
        &["touch", i, "/loop1"],
        &["put", i, h, "/loop1/x"],
    ] {
        let err = one_line_error(args);
        assert_eq!(
            err.matches("Too many levels of symbolic links").count(),
            1,
            "{args:?}: {err}"
        );
    }
    // A looping link as the last name of put is replaced, not followed.
    ok(&["put", i, h, "/loop1"]);
    assert!(stat(i, "/loop1").contains("Type: regular file"));
    // c1 -> ... -> c40 -> usr is 40 links, as many as Linux follows.
    ok(&["chmod", i, "700", "/c1/bin/sh"]);
    assert!(stat(i, "/usr/bin/sh").contains("Mode: 0700"));
    let err = one_line_error(&["chmod", i, "700", "/c0/bin/sh"]);
    assert!(err.contains("Too many levels of symbolic links"), "{err}");
    common::fsck_clean(&img);
}

#[test]
fn a_disk_that_cannot_be_opened_is_one_line_naming_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.img");
    let m = missing.to_str().unwrap();
    let err = one_line_error(&["chmod", m, "755", "/x"]);
    assert_eq!(
        err.trim_end(),
        format!("uml_fs: {m}: cannot open for writing: No such file or directory")
    );
    let err = one_line_error(&["rm", "--dry-run", m, "/x"]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn swapped_chmod_and_chown_arguments_are_one_line_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.cow");
    std::fs::write(&img, b"").unwrap();
    let i = img.to_str().unwrap();
    // chmod(1) order: mode first.
    let err = one_line_error(&["chmod", "755", i, "/path"]);
    assert!(
        err.contains(&format!("uml_fs chmod {i} 755 /path")),
        "{err}"
    );
    // Mode last.
    let err = one_line_error(&["chmod", i, "/path", "755"]);
    assert!(
        err.contains(&format!("uml_fs chmod {i} 755 /path")),
        "{err}"
    );
    let err = one_line_error(&["chown", "0:0", i, "/path"]);
    assert!(
        err.contains(&format!("uml_fs chown {i} 0:0 /path")),
        "{err}"
    );
    assert_eq!(
        std::fs::metadata(&img).unwrap().len(),
        0,
        "the disk was touched"
    );
}
