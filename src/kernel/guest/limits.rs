//! What `mem=` bounds (issue 12, spec kernel-cmdline.md §3). A UML guest
//! can never use more memory than `mem=`; the guest's programs here run on
//! the host kernel, so the monitor bounds them with what the host offers:
//!
//! - the guest's tmpfs mounts (`/dev`, `/dev/shm`, `/tmp`) get the
//!   kernel's tmpfs defaults computed from `mem=` instead of the host's
//!   RAM: half of it, and half as many inodes as it has pages
//!   ([`tmpfs_options`], [K mm/shmem.c `shmem_default_max_blocks`]);
//! - where the invoking user has a cgroup delegated ([`super::cgroup`]),
//!   all guest processes together get `mem=` bytes of memory (no swap)
//!   and as many tasks as the `RLIMIT_NPROC` the kernel gives init for
//!   that much RAM: half its `max_threads` ([`pids_max`], [K kernel/fork.c
//!   `set_max_threads`, `fork_init`]);
//! - where none is, one boot line says so and the guest runs anyway.
//!
//! The numbers and the boot line are pure; [`Limits::setup`] is the I/O.

use super::cgroup::{self, CgroupError, Controller, GuestGroup, Numbers, ProcCgroup, V2};
use super::cgroupns;
use super::meminfo::MemoryUse;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The guest kernel's page size.
pub const PAGE_SIZE: u64 = 4096;
/// `THREAD_SIZE` of UML on x86_64: `CONFIG_KERNEL_STACK_ORDER=2` pages
/// (Debian's build, per `linux.uml --showconfig`).
pub const THREAD_SIZE: u64 = 4 * PAGE_SIZE;
/// The kernel's `MIN_THREADS`.
pub const MIN_THREADS: u64 = 20;
/// The kernel's `MAX_THREADS` (`FUTEX_TID_MASK`).
pub const MAX_THREADS: u64 = 0x3fff_ffff;
/// The largest `pids.max` the host accepts (`PID_MAX_LIMIT` on 64-bit);
/// beyond it the limit is `max`.
pub const PID_MAX_LIMIT: u64 = 4 << 20;

/// The kernel's `max_threads` for `mem` bytes of RAM: one task per eight
/// kernel stacks' worth of memory, at least [`MIN_THREADS`]. (The kernel
/// counts the pages left after its own image; here the guest's programs
/// get all of `mem=`.)
pub fn max_threads(mem: u64) -> u64 {
    (mem / (8 * THREAD_SIZE)).clamp(MIN_THREADS, MAX_THREADS)
}

/// `pids.max` for `mem`: half of [`max_threads`], the `RLIMIT_NPROC`
/// the kernel sets for init (`fork_init`), or `None` (`max`) beyond what
/// the host accepts. Each guest task costs the host about 140 KiB (kernel
/// stack and structures, page tables, a busybox process's own pages), so
/// with one task per 256 KiB of `mem=` a fork bomb meets this limit
/// before the memory limit, whose OOM kills could hit init.
pub fn pids_max(mem: u64) -> Option<u64> {
    Some(max_threads(mem) / 2).filter(|&t| t <= PID_MAX_LIMIT)
}

/// The size and inode options the kernel's tmpfs defaults give with `mem`
/// bytes of RAM: half the RAM, and half as many inodes as RAM pages.
pub fn tmpfs_options(mem: u64) -> String {
    let size = (mem / 2).max(PAGE_SIZE);
    let inodes = (mem / PAGE_SIZE / 2).max(1);
    format!("size={size},nr_inodes={inodes}")
}

/// `mem=`'s value in the largest unit that divides it (`64M`).
pub fn size_text(bytes: u64) -> String {
    for (unit, shift) in [('T', 40), ('G', 30), ('M', 20), ('K', 10)] {
        if bytes != 0 && bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// What became of one controller: where it is enforced, or why not.
pub type Outcome = (Controller, Result<String, NotEnforced>);

/// Why a controller's limit is not enforced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotEnforced {
    /// The guest's cgroup could not be made.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The host has no hierarchy with this controller.
    #[error("no {0} controller")]
    NoController(&'static str),
    /// Nothing was tried (no v2 directory and no v1 attempt).
    #[error("none")]
    Untried,
}

/// Why the guest gets no cgroup v2 tree of its own.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoNamespace {
    /// The guest's cgroup could not be made.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// This process has no cgroup v2 directory.
    #[error(transparent)]
    NoV2Dir(#[from] cgroupns::NoV2Dir),
    /// The v2 arrangement has no guest group (make_v2 always sets one).
    #[error("no guest group")]
    NoGuestGroup,
}

/// The one boot line about the limits.
pub fn describe(mem: u64, outcomes: &[Outcome]) -> String {
    let n = numbers(mem);
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    let mut bad_names = Vec::new();
    for (c, r) in outcomes {
        match (c, r) {
            (Controller::Memory, Ok(w)) => ok.push(format!("{} bytes of memory ({w})", n.memory)),
            (Controller::Pids, Ok(w)) => ok.push(match n.pids {
                Some(p) => format!("{p} tasks ({w})"),
                None => format!("unlimited tasks ({w})"),
            }),
            (c, Err(why)) => {
                bad.push(format!("{}: {why}", c.name()));
                bad_names.push(match c {
                    Controller::Memory => "memory",
                    Controller::Pids => "tasks",
                });
            }
        }
    }
    let mem = size_text(mem);
    match (ok.is_empty(), bad.is_empty()) {
        (true, _) => format!(
            "mem={mem}: not enforced (no delegated cgroup: {})",
            bad.join("; ")
        ),
        (false, true) => format!("mem={mem}: guest limited to {}", ok.join(" and ")),
        (false, false) => format!(
            "mem={mem}: guest limited to {}; {} not enforced (no delegated cgroup: {})",
            ok.join(" and "),
            bad_names.join(" and "),
            bad.join("; ")
        ),
    }
}

/// The limits for `mem`.
pub fn numbers(mem: u64) -> Numbers {
    Numbers {
        memory: mem,
        pids: pids_max(mem),
    }
}

/// The guest's cgroups, removed when dropped (after the guest has ended).
#[derive(Debug)]
pub struct Limits {
    /// Closed before the groups are removed.
    memory: Option<Arc<MemoryUse>>,
    v2: Option<V2>,
    v1: Vec<GuestGroup>,
    line: String,
    namespace: Result<PathBuf, NoNamespace>,
}

impl Limits {
    /// Makes the guest's cgroups for `mem` where this user may. Call
    /// before the monitor unshares its namespaces. Never fails: what
    /// could not be done is in [`Limits::line`].
    pub fn setup(mem: u64) -> Limits {
        let pc =
            ProcCgroup::parse(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
        let mounts = cgroup::parse_mountinfo(
            &std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(),
        );
        let n = numbers(mem);
        let pid = std::process::id();
        let (leaf, guest) = (format!("linux-{pid}"), format!("linux-{pid}-guest"));
        let mut found: Vec<(Controller, Option<Result<String, NotEnforced>>)> =
            Controller::ALL.iter().map(|c| (*c, None)).collect();
        let mut v2 = None;
        let namespace = match cgroup::v2_dir(&pc, &mounts) {
            Some(dir) => {
                let wanted = cgroup::v2_controllers(&dir);
                let made = cgroup::make_v2(&dir, &leaf, &guest, &wanted, n);
                for (c, r) in &mut found {
                    if wanted.contains(c) {
                        *r = Some(match &made {
                            Ok(g) => Ok(g.guest.as_ref().map_or_else(String::new, |g| {
                                format!("cgroup v2 {}", g.dir.display())
                            })),
                            Err(e) => Err(e.clone().into()),
                        });
                    }
                }
                // Without the limits (another process in the delegated
                // cgroup keeps its controllers off), the guest still gets
                // a tree of its own.
                let made = match made {
                    Err(_) if !wanted.is_empty() => cgroup::make_v2(&dir, &leaf, &guest, &[], n),
                    m => m,
                };
                let root = match &made {
                    Ok(g) => g
                        .guest
                        .as_ref()
                        .map(GuestGroup::root)
                        .ok_or(NoNamespace::NoGuestGroup),
                    Err(e) => Err(e.clone().into()),
                };
                v2 = made.ok();
                root
            }
            None => Err(cgroupns::no_v2_dir(&pc, &mounts).into()),
        };
        let mut v1 = Vec::new();
        for (c, r) in &mut found {
            if matches!(r, Some(Ok(_))) {
                continue;
            }
            match cgroup::v1_dir(&pc, &mounts, c.name()) {
                Some(dir) => match cgroup::make_v1(&dir, &guest, *c, n) {
                    Ok(g) => {
                        *r = Some(Ok(format!("cgroup v1 {}", g.dir.display())));
                        v1.push(g);
                    }
                    Err(e) => *r = Some(r.take().unwrap_or(Err(e.into()))),
                },
                None => {
                    if r.is_none() {
                        *r = Some(Err(NotEnforced::NoController(c.name())));
                    }
                }
            }
        }
        let outcomes: Vec<Outcome> = found
            .into_iter()
            .map(|(c, r)| (c, r.unwrap_or(Err(NotEnforced::Untried))))
            .collect();
        // The guest's use, for its /proc/meminfo: the v2 group's when it
        // has the memory controller, else the v1 memory group's.
        let memory = v2
            .iter()
            .filter_map(|v| v.guest.as_ref())
            .chain(&v1)
            .find_map(|g| MemoryUse::open(&g.dir))
            .map(Arc::new);
        Limits {
            v2,
            v1,
            line: describe(mem, &outcomes),
            namespace,
            memory,
        }
    }

    /// The boot line saying what is enforced.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The host directory of the guest's own cgroup v2 tree (the root of
    /// its cgroup namespace), or why it has none.
    pub fn namespace(&self) -> Result<&Path, &NoNamespace> {
        match &self.namespace {
            Ok(p) => Ok(p),
            Err(e) => Err(e),
        }
    }

    /// The guest's memory cgroup's usage files, when it has one.
    pub fn memory_use(&self) -> Option<Arc<MemoryUse>> {
        self.memory.clone()
    }

    /// The guest groups' open `cgroup.procs` files, for the guest's init.
    pub fn procs_fds(&self) -> Vec<RawFd> {
        self.v2
            .iter()
            .filter_map(|v| v.guest.as_ref())
            .chain(&self.v1)
            .map(GuestGroup::procs_fd)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_threads_is_ram_over_eight_kernel_stacks_with_a_floor_of_20() {
        assert_eq!(max_threads(64 << 20), 512);
        assert_eq!(max_threads(32 << 20), 256);
        assert_eq!(max_threads(1 << 30), 8192);
        assert_eq!(max_threads(1 << 20), 20);
        assert_eq!(max_threads(0), 20);
        assert_eq!(max_threads(u64::MAX), MAX_THREADS);
    }

    #[test]
    fn pids_max_is_half_of_max_threads_and_unlimited_beyond_what_the_host_accepts() {
        assert_eq!(pids_max(64 << 20), Some(256));
        assert_eq!(pids_max(32 << 20), Some(128));
        assert_eq!(pids_max(1 << 20), Some(10));
        assert_eq!(pids_max(1 << 40), Some(PID_MAX_LIMIT));
        assert_eq!(pids_max(2 << 40), None);
    }

    #[test]
    fn tmpfs_gets_half_of_mem_and_half_as_many_inodes_as_pages() {
        assert_eq!(tmpfs_options(64 << 20), "size=33554432,nr_inodes=8192");
        assert_eq!(tmpfs_options(32 << 20), "size=16777216,nr_inodes=4096");
        assert_eq!(tmpfs_options(0), "size=4096,nr_inodes=1");
    }

    #[test]
    fn sizes_print_in_the_largest_whole_unit() {
        assert_eq!(size_text(64 << 20), "64M");
        assert_eq!(size_text(2 << 30), "2G");
        assert_eq!(size_text(1536 << 10), "1536K");
        assert_eq!(size_text(100), "100");
        assert_eq!(size_text(0), "0");
    }

    #[test]
    fn the_boot_line_says_plainly_when_nothing_is_enforced() {
        let line = describe(
            32 << 20,
            &[
                (
                    Controller::Memory,
                    Err(CgroupError::NotWritable("/sys/fs/cgroup/memory/x".into()).into()),
                ),
                (Controller::Pids, Err(NotEnforced::NoController("pids"))),
            ],
        );
        assert_eq!(
            line,
            "mem=32M: not enforced (no delegated cgroup: memory: /sys/fs/cgroup/memory/x: \
             not writable; pids: no pids controller)"
        );
    }

    #[test]
    fn the_boot_line_names_each_limit_and_where_it_lives() {
        let all = describe(
            32 << 20,
            &[
                (Controller::Memory, Ok("cgroup v2 /cg/linux-1-guest".into())),
                (Controller::Pids, Ok("cgroup v2 /cg/linux-1-guest".into())),
            ],
        );
        assert_eq!(
            all,
            "mem=32M: guest limited to 33554432 bytes of memory (cgroup v2 /cg/linux-1-guest) \
             and 128 tasks (cgroup v2 /cg/linux-1-guest)"
        );
        let part = describe(
            64 << 20,
            &[
                (Controller::Memory, Ok("cgroup v1 /m/g".into())),
                (
                    Controller::Pids,
                    Err(CgroupError::NotWritable("/p".into()).into()),
                ),
            ],
        );
        assert_eq!(
            part,
            "mem=64M: guest limited to 67108864 bytes of memory (cgroup v1 /m/g); tasks not \
             enforced (no delegated cgroup: pids: /p: not writable)"
        );
    }
}
