//! Fuzz the lab parsers: `lab.conf`, `lab.dep` and a directory listing
//! (the input split at NUL bytes: conf, dep, then directory names one a
//! line) are assembled into a lab or refused with one line naming the
//! problem, never a panic; an accepted lab's names are usable and its
//! dependencies acyclic.
#![no_main]

use std::path::Path;
use umlkit::lab::model::{Lab, Listing};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let conf = parts.next().unwrap_or("");
    let dep = parts.next();
    let listing = Listing {
        dirs: parts
            .next()
            .map(|d| d.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        ..Listing::default()
    };
    let dir = Path::new("/lab");
    let _ = umlkit::lab::conf::parse(conf, &dir.join("lab.conf"));
    match Lab::assemble(dir, conf, dep, &listing) {
        Ok(lab) => {
            for m in &lab.machines {
                assert!(umlkit::lab::valid_name(&m.name), "{:?}", m.name);
                assert!(m.ifaces.keys().all(|n| *n <= 15));
            }
            umlkit::lab::dep::check_acyclic(&lab.deps, &dir.join("lab.dep")).unwrap();
            let _ = lab.dot();
        }
        Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
    }
});
