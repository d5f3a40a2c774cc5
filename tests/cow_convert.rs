//! `uml_cow convert` between UML COW files, qcow2 overlays and raw images,
//! checked with the real `qemu-img`: the qcow2 files we write pass
//! `qemu-img check`, and every conversion reads back equal to the merged
//! image (`qemu-img compare`, `cmp`); bad inputs are one-line errors.

mod common;

use std::path::Path;

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

fn ok(tool: &str, args: &[&str]) -> String {
    let out = common::umlkit(tool, args);
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

fn qemu_ok(args: &[&str]) -> String {
    let out = common::run("qemu-img", args);
    assert!(
        out.status.success(),
        "qemu-img {args:?}: {}{}",
        common::stdout(&out),
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// A 32 MiB backing file of a pattern, a COW over it with some sectors
/// written (through `uml_fs`-free means: the kernel's format written by
/// converting a qemu overlay), and the merged image.
#[test]
fn a_cow_and_a_qcow2_overlay_convert_both_ways_and_to_raw_equal_to_the_merge() {
    let t = "a_cow_and_a_qcow2_overlay_convert_both_ways_and_to_raw_equal_to_the_merge";
    if !common::have_peers(t, &["qemu-img", "qemu-io"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("base.img"), common::pattern(5, 32 << 20)).unwrap();
    // A qemu overlay with data, a zeroed range, a partial cluster and the last cluster.
    qemu_ok(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &p(d, "base.img"),
        "-F",
        "raw",
        &p(d, "ov.qcow2"),
    ]);
    let out = common::run(
        "qemu-io",
        [
            "-c",
            "write -P 0x55 1M 100k",
            "-c",
            "write -z 5M 128k",
            "-c",
            "write -P 7 3584 1024",
            "-c",
            "write -P 9 31M 1M",
            &p(d, "ov.qcow2"),
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    // qcow2 -> COW; the COW merged by uml_moo equals the overlay.
    ok(
        "uml_cow",
        &["convert", "-O", "cow", &p(d, "ov.qcow2"), &p(d, "ov.cow")],
    );
    ok("uml_cow", &["check", &p(d, "ov.cow")]);
    ok("uml_moo", &[&p(d, "ov.cow"), &p(d, "merged.img")]);
    qemu_ok(&[
        "compare",
        "-f",
        "qcow2",
        "-F",
        "raw",
        &p(d, "ov.qcow2"),
        &p(d, "merged.img"),
    ]);
    assert_ne!(
        std::fs::read(d.join("merged.img")).unwrap(),
        std::fs::read(d.join("base.img")).unwrap()
    );
    // COW -> qcow2 over the same backing: check clean, equal to the merge.
    ok(
        "uml_cow",
        &[
            "convert",
            "-O",
            "qcow2",
            &p(d, "ov.cow"),
            &p(d, "back.qcow2"),
        ],
    );
    let check = qemu_ok(&["check", &p(d, "back.qcow2")]);
    assert!(check.contains("No errors were found"), "{check}");
    let info = qemu_ok(&["info", "--output=json", &p(d, "back.qcow2")]);
    assert!(
        info.contains(&format!("\"backing-filename\": \"{}\"", p(d, "base.img"))),
        "{info}"
    );
    assert!(info.contains("\"cluster-size\": 65536"), "{info}");
    assert!(info.contains("\"compat\": \"1.1\""), "{info}");
    qemu_ok(&[
        "compare",
        "-f",
        "qcow2",
        "-F",
        "raw",
        &p(d, "back.qcow2"),
        &p(d, "merged.img"),
    ]);
    // Only the dirty clusters are in the file.
    let size = std::fs::metadata(d.join("back.qcow2")).unwrap().len();
    assert!(size < 4 << 20, "{size} bytes");
    // Either -> raw: the merged image, sparse.
    for src in ["back.qcow2", "ov.cow"] {
        let raw = format!("{src}.raw");
        ok(
            "uml_cow",
            &["convert", "-O", "raw", &p(d, src), &p(d, &raw)],
        );
        assert_eq!(
            std::fs::read(d.join(&raw)).unwrap(),
            std::fs::read(d.join("merged.img")).unwrap(),
            "{src} -> raw"
        );
    }
    // raw -> standalone qcow2.
    ok(
        "uml_cow",
        &[
            "convert",
            "-O",
            "qcow2",
            &p(d, "merged.img"),
            &p(d, "all.qcow2"),
        ],
    );
    assert!(qemu_ok(&["check", &p(d, "all.qcow2")]).contains("No errors were found"));
    qemu_ok(&[
        "compare",
        "-f",
        "qcow2",
        "-F",
        "raw",
        &p(d, "all.qcow2"),
        &p(d, "merged.img"),
    ]);
    // No temporary files are left beside the outputs.
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unsupported_and_broken_inputs_are_one_line_errors_and_write_nothing() {
    let t = "unsupported_and_broken_inputs_are_one_line_errors_and_write_nothing";
    if !common::have_peers(t, &["qemu-img"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("base.img"), common::pattern(6, 4 << 20)).unwrap();
    std::fs::write(d.join("text.img"), b"compressible ".repeat(4 << 18)).unwrap();
    qemu_ok(&[
        "convert",
        "-c",
        "-f",
        "raw",
        "-O",
        "qcow2",
        &p(d, "text.img"),
        &p(d, "comp.qcow2"),
    ]);
    qemu_ok(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        &p(d, "comp.qcow2"),
        "-F",
        "qcow2",
        &p(d, "chain.qcow2"),
    ]);
    qemu_ok(&["create", "-q", "-f", "qcow2", &p(d, "alone.qcow2"), "4M"]);
    let mut bad = std::fs::read(d.join("alone.qcow2")).unwrap();
    bad[7] = 9; // version 9
    std::fs::write(d.join("v9.qcow2"), &bad).unwrap();
    std::fs::write(d.join("short.qcow2"), b"QFI\xfb\0\0\0\x03").unwrap();
    for (args, want) in [
        (vec!["-O", "raw", "comp.qcow2"], "compressed"),
        (vec!["-O", "cow", "chain.qcow2"], "backing format qcow2"),
        (vec!["-O", "cow", "alone.qcow2"], "without a backing file"),
        (vec!["-O", "raw", "v9.qcow2"], "unsupported qcow2 version 9"),
        (vec!["-O", "raw", "short.qcow2"], "header truncated"),
        (
            vec!["-O", "cow", "base.img"],
            "converting raw to cow is not supported",
        ),
        (vec!["-O", "raw", "missing.img"], "missing.img"),
    ] {
        let mut argv = vec!["convert".to_string()];
        argv.extend(args.iter().take(2).map(|s| s.to_string()));
        argv.push(p(d, args[2]));
        argv.push(p(d, "out"));
        let out = common::umlkit("uml_cow", &argv);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("uml_cow: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert!(!d.join("out").exists(), "{args:?} wrote the output");
    }
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
