//! The instance directory a guest kernel makes for itself (spec §1.1,
//! §1.2), for our kernel to reuse: `<uml_dir><umid>/` with the `pid` file,
//! taken over when a crashed guest left it behind, and removed on a clean
//! exit. The mconsole socket is then bound inside it (see `server`).

use super::umid::{instance_dir, pid_state, valid_umid, PidState, MAX_UMID_LEN};
use super::Error;
use std::ffi::OsStr;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most entries removed from a stale instance directory (it normally
/// holds two: `mconsole` and `pid`).
const MAX_STALE_ENTRIES: usize = 1024;

/// Makes `<uml_dir><umid>/` (mode 0777 before umask) and writes `pid` in
/// it (`O_EXCL`, mode 0644, `"<pid>\n"`), as Linux 6.1 does. An existing
/// directory whose pid file names a live process is in use; otherwise it
/// is stale: its files are removed and it is made anew.
pub fn make_instance_dir(uml_dir: &Path, umid: &OsStr, pid: u32) -> Result<PathBuf, Error> {
    if !valid_umid(umid) {
        return Err(Error::BadUmid {
            umid: umid.to_string_lossy().into_owned(),
            max: MAX_UMID_LEN,
        });
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o777);
    builder
        .recursive(true)
        .create(uml_dir)
        .map_err(|e| Error::io("cannot make", uml_dir, e))?;
    builder.recursive(false);
    let dir = instance_dir(uml_dir, umid);
    match builder.create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            if let PidState::Alive(pid) = pid_state(&dir) {
                return Err(Error::UmidInUse {
                    umid: umid.to_string_lossy().into_owned(),
                    pid,
                });
            }
            remove_instance_dir(&dir)?;
            builder
                .create(&dir)
                .map_err(|e| Error::io("cannot make", &dir, e))?;
        }
        Err(e) => return Err(Error::io("cannot make", &dir, e)),
    }
    let pid_path = dir.join("pid");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&pid_path)
        .map_err(|e| Error::io("cannot create", &pid_path, e))?;
    file.write_all(format!("{pid}\n").as_bytes())
        .map_err(|e| Error::io("cannot write", &pid_path, e))?;
    Ok(dir)
}

/// Removes the files of an instance directory and the directory itself
/// (what the kernel does on a clean exit and before a stale takeover).
pub fn remove_instance_dir(dir: &Path) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    for entry in entries.take(MAX_STALE_ENTRIES) {
        let path = entry.map_err(|e| Error::io("cannot list", dir, e))?.path();
        std::fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
    }
    std::fs::remove_dir(dir).map_err(|e| Error::io("cannot remove", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_the_directory_and_pid_file_like_the_kernel() {
        let root = tempfile::tempdir().unwrap();
        let uml_dir = root.path().join("uml/");
        let dir = make_instance_dir(&uml_dir, OsStr::new("vm"), 3601).unwrap();
        assert_eq!(dir, root.path().join("uml/vm"));
        assert_eq!(std::fs::read(dir.join("pid")).unwrap(), b"3601\n");
        let mode = std::fs::metadata(dir.join("pid"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_live_pid_keeps_the_umid_and_a_dead_one_is_taken_over() {
        let root = tempfile::tempdir().unwrap();
        let uml_dir = root.path().join("uml/");
        let me = std::process::id();
        make_instance_dir(&uml_dir, OsStr::new("vm"), me).unwrap();
        let err = make_instance_dir(&uml_dir, OsStr::new("vm"), 1234).unwrap_err();
        assert!(
            matches!(err, Error::UmidInUse { pid, .. } if pid as u32 == me),
            "{err}"
        );
        assert!(err.to_string().contains("already in use by pid"), "{err}");

        std::fs::write(uml_dir.join("vm/pid"), "2000000000\n").unwrap();
        std::fs::write(uml_dir.join("vm/mconsole"), "").unwrap();
        let dir = make_instance_dir(&uml_dir, OsStr::new("vm"), 42).unwrap();
        assert_eq!(std::fs::read(dir.join("pid")).unwrap(), b"42\n");
        assert!(!dir.join("mconsole").exists());
        remove_instance_dir(&dir).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn an_overlong_umid_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let long = "x".repeat(64);
        let err = make_instance_dir(root.path(), OsStr::new(&long), 1).unwrap_err();
        assert!(matches!(err, Error::BadUmid { .. }), "{err}");
    }
}
