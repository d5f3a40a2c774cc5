//! The guest's tmpfs mounts sized by `mem=`, as UML's kernel sizes them:
//! the host kernel reads `size=10%` (Debian's `/run`) as a tenth of the
//! host's RAM and gives a tmpfs without `size=` half of it, where the
//! guest's kernel would count its own `mem=`. The monitor, which holds
//! every guest `mount(2)`, rewrites those options in bytes and mounts in
//! the caller's place:
//!
//! ```text
//!   guest: mount("tmpfs", "/run", "tmpfs", flags, "mode=755,size=10%")
//!   monitor: "mode=755,size=6710886" (mem=64M), mounted in the caller's
//!            mount namespace, root and working directory; errno back
//! ```
//!
//! Only a caller with CAP_SYS_ADMIN in the guest's own user namespace is
//! answered this way; a mount from a nested user namespace runs as the
//! host kernel decides (it may not get more than its caller could).

use super::limits::PAGE_SIZE;
use crate::kernel::disk::durable::Caller;
use crate::sys::seccomp::{Held, Listener};
use std::ffi::CString;
use std::io;

/// `statfs.f_type` of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// `data` with a `size=N%` in bytes of `mem`, and for a new mount (not
/// `remount`) the kernel's defaults for `mem` where `size=` or
/// `nr_inodes=` is missing: half of `mem`, and half as many inodes as its
/// pages. None when nothing changes (or a percentage is malformed: the
/// host kernel then refuses it as the guest's would).
pub fn rewrite(data: Option<&[u8]>, mem: u64, remount: bool) -> Option<Vec<u8>> {
    let data = data.unwrap_or_default();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let (mut changed, mut has_size, mut has_inodes) = (false, false, false);
    for opt in data.split(|&b| b == b',').filter(|o| !o.is_empty()) {
        if let Some(v) = opt.strip_prefix(b"size=") {
            has_size = true;
            if let Some(pct) = v.strip_suffix(b"%") {
                let pct: u64 = std::str::from_utf8(pct).ok()?.parse().ok()?;
                out.push(format!("size={}", percent_of(mem, pct)).into_bytes());
                changed = true;
                continue;
            }
        }
        if opt.starts_with(b"nr_inodes=") {
            has_inodes = true;
        }
        out.push(opt.to_vec());
    }
    if !remount {
        if !has_size {
            out.push(format!("size={}", (mem / 2).max(PAGE_SIZE)).into_bytes());
            changed = true;
        }
        if !has_inodes {
            out.push(format!("nr_inodes={}", (mem / PAGE_SIZE / 2).max(1)).into_bytes());
            changed = true;
        }
    }
    changed.then(|| out.join(&b','))
}

/// `pct` percent of `mem`'s pages in bytes, rounded up to a page, as the
/// kernel computes it (0 stays 0: no limit; over 100 is allowed).
fn percent_of(mem: u64, pct: u64) -> u64 {
    let page = u128::from(PAGE_SIZE);
    let bytes = u128::from(mem / PAGE_SIZE) * page * u128::from(pct) / 100;
    let rounded = bytes.div_ceil(page) * page;
    u64::try_from(rounded).unwrap_or(u64::MAX / PAGE_SIZE * PAGE_SIZE)
}

/// Answers a held `mount(2)` of a tmpfs whose options need `mem=`: `None`
/// for other mounts (the caller lets them run).
pub fn handle(listener: &Listener, held: &Held, mem: u64) -> Option<Result<(), i32>> {
    let [source, target, fstype, flags, data, _] = held.args;
    let remount = flags & libc::MS_REMOUNT != 0;
    // A remount names no type; a bind, a move or a propagation change
    // makes no new tmpfs.
    const NO_NEW_FS: u64 = libc::MS_BIND
        | libc::MS_MOVE
        | libc::MS_SHARED
        | libc::MS_PRIVATE
        | libc::MS_SLAVE
        | libc::MS_UNBINDABLE;
    if !remount {
        if fstype == 0 || flags & NO_NEW_FS != 0 {
            return None;
        }
        let fstype = listener.read_string_from_caller(held, fstype, 64).ok()?;
        if fstype != b"tmpfs" {
            return None;
        }
    }
    let read = |addr: u64| match addr {
        0 => Ok(None),
        a => listener.read_string_from_caller(held, a, 4096).map(Some),
    };
    let options = read(data).ok()?;
    let new = rewrite(options.as_deref(), mem, remount)?;
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let caller = match Caller::of(held.pid) {
        Ok(c) => c,
        Err(e) => return Some(Err(errno(e))),
    };
    let target = match read(target) {
        Ok(Some(t)) => t,
        Ok(None) => return Some(Err(libc::EFAULT)),
        Err(e) => return Some(Err(errno(e))),
    };
    // A caller outside the guest's user namespace or without the
    // capability, or a path the monitor cannot follow for the caller:
    // the host decides.
    if !caller.is_guest_root() {
        return None;
    }
    let target = caller.path(target)?;
    let source = match read(source) {
        Ok(s) => s,
        Err(e) => return Some(Err(errno(e))),
    };
    let how = Mount {
        source,
        target,
        flags,
        data: new,
        remount,
    };
    Some(mount_as(listener, held, caller, how))
}

/// A tmpfs mount the monitor makes for a guest caller.
struct Mount {
    source: Option<Vec<u8>>,
    /// As the mounting thread resolves it ([`Caller::path`]).
    target: Vec<u8>,
    flags: u64,
    data: Vec<u8>,
    remount: bool,
}

fn mount_as(listener: &Listener, held: &Held, caller: Caller, how: Mount) -> Result<(), i32> {
    let cstring = |v: Vec<u8>| CString::new(v).map_err(|_| libc::EINVAL);
    let source = how.source.map(cstring).transpose()?;
    let target = cstring(how.target)?;
    let data = cstring(how.data)?;
    let (flags, remount) = (how.flags, how.remount);
    // Still held: the descriptors and the status were the caller's.
    if !listener.still_held(held.id) {
        return Err(libc::ESRCH);
    }
    let flags = nix::mount::MsFlags::from_bits_retain(flags & 0xffff_ffff);
    caller.run_inside("tmpfs", move || {
        // A remount's target must be a tmpfs for its size to be ours.
        if remount {
            let fs = nix::sys::statfs::statfs(target.as_c_str())?;
            if fs.filesystem_type().0 != TMPFS_MAGIC {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
        }
        nix::mount::mount(
            source.as_deref(),
            target.as_c_str(),
            Some("tmpfs"),
            flags,
            Some(data.as_c_str()),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Option<Vec<u8>>) -> Option<String> {
        v.map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn percentages_are_of_mem_in_whole_pages() {
        let mem = 64 << 20;
        assert_eq!(
            text(rewrite(Some(b"nosuid,size=10%,mode=755"), mem, true)),
            Some("nosuid,size=6713344,mode=755".into())
        );
        assert_eq!(percent_of(mem, 200), 128 << 20);
        assert_eq!(percent_of(mem, 0), 0);
        assert_eq!(
            percent_of(u64::MAX, u64::MAX),
            u64::MAX / PAGE_SIZE * PAGE_SIZE
        );
    }

    #[test]
    fn a_new_tmpfs_gets_the_kernels_defaults_for_mem_and_a_remount_keeps_its_own() {
        let mem = 64 << 20;
        assert_eq!(
            text(rewrite(None, mem, false)),
            Some("size=33554432,nr_inodes=8192".into())
        );
        assert_eq!(
            text(rewrite(Some(b"mode=1777,size=5M"), mem, false)),
            Some("mode=1777,size=5M,nr_inodes=8192".into())
        );
        assert_eq!(rewrite(Some(b"size=5M,nr_inodes=100"), mem, false), None);
        assert_eq!(rewrite(Some(b"mode=755"), mem, true), None);
        assert_eq!(rewrite(None, mem, true), None);
    }

    /// One mount option as guests write them, or bytes of any kind.
    fn option() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<u32>(), any::<bool>()).prop_map(|(n, pct)| {
                format!("size={n}{}", if pct { "%" } else { "" }).into_bytes()
            }),
            any::<u32>().prop_map(|n| format!("nr_inodes={n}").into_bytes()),
            Just(b"mode=1777".to_vec()),
            Just(b"size=%".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..12),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Whatever a guest passes: no panic; every option but `size=`
        /// stays, in order, with at most a default `nr_inodes=` added; and
        /// there is one `size=` per `size=` given, or one added.
        #[test]
        fn any_options_are_rewritten_without_panic_or_loss(
            opts in proptest::collection::vec(option(), 0..6),
            mem in proptest::prelude::any::<u64>(),
            remount in proptest::prelude::any::<bool>(),
        ) {
            let data = opts.join(&b',');
            if let Some(out) = rewrite(Some(&data), mem, remount) {
                let split = |v: &[u8]| -> (Vec<Vec<u8>>, usize) {
                    let all: Vec<&[u8]> = v.split(|&b| b == b',').filter(|o| !o.is_empty()).collect();
                    let sizes = all.iter().filter(|o| o.starts_with(b"size=")).count();
                    let rest = all.iter().filter(|o| !o.starts_with(b"size=")).map(|o| o.to_vec()).collect();
                    (rest, sizes)
                };
                let (before, sizes_before) = split(&data);
                let (after, sizes_after) = split(&out);
                proptest::prop_assert!(after.len() == before.len() || after.len() == before.len() + 1);
                proptest::prop_assert_eq!(&after[..before.len()], &before[..]);
                proptest::prop_assert!(after[before.len()..].iter().all(|o| o.starts_with(b"nr_inodes=")));
                let added = usize::from(sizes_before == 0 && !remount);
                proptest::prop_assert_eq!(sizes_after, sizes_before + added);
                let left = out.split(|&b| b == b',').any(|o| o.starts_with(b"size=") && o.ends_with(b"%"));
                proptest::prop_assert!(!left, "a percentage was left");
            }
        }
    }

    #[test]
    fn a_malformed_percentage_is_left_for_the_host_to_refuse() {
        assert_eq!(rewrite(Some(b"size=x%"), 64 << 20, true), None);
        assert_eq!(rewrite(Some(b"size=-1%"), 64 << 20, false), None);
    }
}
