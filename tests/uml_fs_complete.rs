//! `uml_fs` completes paths inside the disk on Tab through clap's dynamic
//! completion: the shell runs `COMPLETE=<shell> uml_fs -- uml_fs ...` and
//! gets the entries of the directory typed so far, read from the fixture
//! image named on that command line.

mod common;

use std::path::PathBuf;

fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/root_fs.ext3")
        .to_string_lossy()
        .into_owned()
}

/// The candidates `uml_fs` offers fish for the command line `words`.
fn complete(words: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(common::bin("uml_fs"))
        .env("COMPLETE", "fish")
        .arg("--")
        .args(words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stdout(&out)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .filter(|w| !w.starts_with('-'))
        .collect()
}

#[test]
fn tab_lists_the_entries_of_a_directory_inside_the_image() {
    let img = fixture();
    let got = complete(&["uml_fs", "ls", "-l", &img, "/"]);
    // What `uml_fs ls` lists there, directories marked with a slash.
    let listing = common::stdout(&common::umlkit("uml_fs", ["ls", "-l", &img, "/"]));
    let mut want: Vec<String> = listing
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().last()?;
            (name != "." && name != "..").then(|| {
                if l.starts_with('d') {
                    format!("/{name}/")
                } else {
                    format!("/{name}")
                }
            })
        })
        .collect();
    want.sort();
    assert!(want.contains(&"/etc/".to_owned()), "{listing}");
    assert_eq!(got, want);
}

#[test]
fn tab_completes_a_partial_name_in_a_subdirectory_for_cat_and_stat() {
    let img = fixture();
    assert_eq!(
        complete(&["uml_fs", "cat", &img, "/etc/ho"]),
        ["/etc/hostname"]
    );
    assert_eq!(complete(&["uml_fs", "stat", &img, "/e"]), ["/etc/"]);
    assert!(complete(&["uml_fs", "stat", &img, "/nothing/x"]).is_empty());
}

#[test]
fn tab_offers_nothing_when_the_disk_cannot_be_opened() {
    assert!(complete(&["uml_fs", "ls", "/no/such/disk.img", "/"]).is_empty());
}
