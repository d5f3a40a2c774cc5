//! The guest's `/proc/meminfo`: `MemTotal` is `mem=`, as `free` shows it
//! on the kernel; the rest follows the guest's real use where the host
//! counts it cheaply, in the memory cgroup all guest processes share
//! ([`super::cgroup`]): its usage and `memory.stat`.
//!
//! ```text
//!   memory.current / memory.usage_in_bytes ─┐
//!   memory.stat (v2 or v1 names) ───────────┴─> Usage ──> text(mem, usage)
//!                                                              │
//!   every second, while the boot lasts:  pwrite into the file bound over
//!   the guest's /proc/meminfo (fixed-width rows: a reader never sees a
//!   shorter file), and into what mconsole's `proc meminfo` answers
//! ```
//!
//! Without such a cgroup the numbers are those of a freshly booted small
//! system, fixed for the boot. Either way there is no swap and no huge
//! pages.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a live `/proc/meminfo` is rewritten.
pub const REFRESH: Duration = Duration::from_secs(1);

/// What the guest's memory cgroup says it uses, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1).
    pub current: u64,
    /// Anonymous memory (`anon`; v1 `rss`).
    pub anon: u64,
    /// The page cache, shmem included (`file`; v1 `cache`).
    pub file: u64,
    /// Of it, mapped (`file_mapped`; v1 `mapped_file`).
    pub mapped: u64,
    /// tmpfs and shared memory (`shmem`).
    pub shmem: u64,
    /// `active_anon`.
    pub active_anon: u64,
    /// `inactive_anon`.
    pub inactive_anon: u64,
    /// `active_file`.
    pub active_file: u64,
    /// `inactive_file`.
    pub inactive_file: u64,
    /// `unevictable`.
    pub unevictable: u64,
    /// `file_dirty` (v1 `dirty`).
    pub dirty: u64,
    /// `file_writeback` (v1 `writeback`).
    pub writeback: u64,
    /// `slab_reclaimable` (v2 only).
    pub slab_reclaimable: u64,
    /// `slab_unreclaimable` (v2 only).
    pub slab_unreclaimable: u64,
    /// `kernel_stack` (v2 only).
    pub kernel_stack: u64,
    /// `pagetables` (v2 only).
    pub pagetables: u64,
}

impl Usage {
    /// Reads a `memory.stat` text (v1 or v2 names; unknown keys are
    /// ignored) with the usage `current`. A v2 group's numbers cover its
    /// children; a v1 group's plain ones are its own only (the guest's
    /// processes are in its child `root`), so v1's `total_*` hierarchy
    /// sums are taken when present.
    pub fn parse(current: u64, stat: &str) -> Usage {
        let mut u = Usage {
            current,
            ..Usage::default()
        };
        let hierarchical = stat.lines().any(|l| l.starts_with("total_"));
        for line in stat.lines() {
            let mut f = line.split_whitespace();
            let (Some(key), Some(Ok(n))) = (f.next(), f.next().map(str::parse::<u64>)) else {
                continue;
            };
            let key = match (hierarchical, key.strip_prefix("total_")) {
                (true, Some(k)) => k,
                (true, None) => continue,
                (false, _) => key,
            };
            let slot = match key {
                "anon" | "rss" => &mut u.anon,
                "file" | "cache" => &mut u.file,
                "file_mapped" | "mapped_file" => &mut u.mapped,
                "shmem" => &mut u.shmem,
                "active_anon" => &mut u.active_anon,
                "inactive_anon" => &mut u.inactive_anon,
                "active_file" => &mut u.active_file,
                "inactive_file" => &mut u.inactive_file,
                "unevictable" => &mut u.unevictable,
                "file_dirty" | "dirty" => &mut u.dirty,
                "file_writeback" | "writeback" => &mut u.writeback,
                "slab_reclaimable" => &mut u.slab_reclaimable,
                "slab_unreclaimable" => &mut u.slab_unreclaimable,
                "kernel_stack" => &mut u.kernel_stack,
                "pagetables" => &mut u.pagetables,
                _ => continue,
            };
            *slot = n;
        }
        u
    }
}

/// The guest's memory cgroup's usage and `memory.stat`, opened while the
/// monitor still sees the host's cgroup filesystem.
#[derive(Debug)]
pub struct MemoryUse {
    current: File,
    stat: File,
}

impl MemoryUse {
    /// The files of the guest group `dir`, if it is a memory cgroup (v2
    /// with the memory controller, or v1 `memory`); `None` otherwise.
    pub fn open(dir: &Path) -> Option<MemoryUse> {
        let current = ["memory.current", "memory.usage_in_bytes"]
            .iter()
            .find_map(|f| File::open(dir.join(f)).ok())?;
        let stat = File::open(dir.join("memory.stat")).ok()?;
        Some(MemoryUse { current, stat })
    }

    /// What the group uses now.
    pub fn read(&self) -> io::Result<Usage> {
        let current = read_at_start(&self.current)?;
        let current = current
            .trim()
            .parse()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        Ok(Usage::parse(current, &read_at_start(&self.stat)?))
    }
}

/// The whole of a (small) cgroup file, read again from its start.
fn read_at_start(f: &File) -> io::Result<String> {
    let mut buf = vec![0u8; 16 << 10];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        let n = f.read_at(&mut buf[len..], u64::try_from(len).unwrap_or(u64::MAX))?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// `/proc/meminfo` for a guest of `mem` bytes using `usage` (bytes), or,
/// without one, a freshly booted small system's proportions. Every row
/// is the kernel's fixed width, so the text's length depends on `mem`
/// only (up to 95 GiB).
pub fn text(mem: u64, usage: Option<&Usage>) -> String {
    let total = mem / 1024;
    let rows = match usage {
        Some(u) => live_rows(total, u),
        None => fresh_rows(total),
    };
    let mut out = String::new();
    for (name, kb) in rows {
        out.push_str(&format!("{:<16}{kb:>8} kB\n", format!("{name}:")));
    }
    for (name, n) in [("HugePages_Total", 0), ("HugePages_Free", 0)] {
        out.push_str(&format!("{:<16}{n:>8}\n", format!("{name}:")));
    }
    out.push_str(&format!("{:<16}{:>8} kB\n", "Hugepagesize:", 2048));
    out
}

type Rows = [(&'static str, u64); 24];

/// A freshly booted small system of `total` kB.
fn fresh_rows(total: u64) -> Rows {
    let pct = |p: u64| total * p / 100;
    [
        ("MemTotal", total),
        ("MemFree", pct(82)),
        ("MemAvailable", pct(88)),
        ("Buffers", pct(1)),
        ("Cached", pct(6)),
        ("SwapCached", 0),
        ("Active", pct(4)),
        ("Inactive", pct(5)),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", pct(3)),
        ("Mapped", pct(2)),
        ("Shmem", pct(1)),
        ("Slab", pct(3)),
        ("SReclaimable", pct(1)),
        ("SUnreclaim", pct(2)),
        ("KernelStack", pct(1) / 4),
        ("PageTables", pct(1) / 4),
        ("CommitLimit", total / 2),
        ("Committed_AS", pct(5)),
    ]
}

/// `total` kB of which the cgroup's `u` is in use: free is the rest,
/// available adds what the kernel could reclaim (the file LRU lists and
/// reclaimable slab), as `si_mem_available` does. Each row is at most
/// `total`.
fn live_rows(total: u64, u: &Usage) -> Rows {
    let kb = |b: u64| (b / 1024).min(total);
    let free = total - kb(u.current);
    let available = free
        .saturating_add(kb(u.active_file))
        .saturating_add(kb(u.inactive_file))
        .saturating_add(kb(u.slab_reclaimable))
        .min(total);
    [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", available),
        ("Buffers", 0),
        ("Cached", kb(u.file)),
        ("SwapCached", 0),
        ("Active", kb(u.active_anon.saturating_add(u.active_file))),
        (
            "Inactive",
            kb(u.inactive_anon.saturating_add(u.inactive_file)),
        ),
        ("Unevictable", kb(u.unevictable)),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", kb(u.dirty)),
        ("Writeback", kb(u.writeback)),
        ("AnonPages", kb(u.anon)),
        ("Mapped", kb(u.mapped)),
        ("Shmem", kb(u.shmem)),
        (
            "Slab",
            kb(u.slab_reclaimable.saturating_add(u.slab_unreclaimable)),
        ),
        ("SReclaimable", kb(u.slab_reclaimable)),
        ("SUnreclaim", kb(u.slab_unreclaimable)),
        ("KernelStack", kb(u.kernel_stack)),
        ("PageTables", kb(u.pagetables)),
        ("CommitLimit", total / 2),
        ("Committed_AS", kb(u.anon.saturating_add(u.shmem))),
    ]
}

/// Rewrites `file` (the source of the guest's `/proc/meminfo` bind) with
/// the cgroup's use every [`REFRESH`], handing each new text to `also`,
/// until `generation` moves on from `mine` (the next boot has its own
/// file) or the cgroup cannot be read. Runs on its own thread.
pub fn follow(
    file: File,
    mem: u64,
    source: Arc<MemoryUse>,
    generation: Arc<AtomicU64>,
    mine: u64,
    also: impl Fn(&str),
) {
    let mut last = String::new();
    while generation.load(Ordering::Acquire) == mine {
        let Ok(usage) = source.read() else {
            return;
        };
        let now = text(mem, Some(&usage));
        if now != last {
            // In place, same length: a reader sees whole rows of either
            // text (or, torn within a row, still a well-formed number).
            if file.write_all_at(now.as_bytes(), 0).is_err() {
                return;
            }
            if now.len() < last.len() && file.set_len(now.len() as u64).is_err() {
                return;
            }
            also(&now);
            last = now;
        }
        std::thread::sleep(REFRESH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(m: &str, name: &str) -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().strip_suffix(" kB"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {m}"))
    }

    #[test]
    fn meminfo_totals_mem_and_keeps_the_kernels_layout() {
        let m = text(96 << 20, None);
        assert!(m.starts_with("MemTotal:          98304 kB\n"), "{m}");
        let free = row(&m, "MemFree");
        assert!(free > 0 && free < 98304);
        assert!(m.contains("\nSwapTotal:             0 kB\n"), "{m}");
    }

    const V2_STAT: &str = "anon 10485760\nfile 20971520\nkernel 4194304\nkernel_stack 524288\n\
pagetables 262144\nshmem 8388608\nfile_mapped 4194304\nfile_dirty 4096\nfile_writeback 0\n\
inactive_anon 9437184\nactive_anon 9437184\ninactive_file 6291456\nactive_file 6291456\n\
unevictable 0\nslab_reclaimable 1048576\nslab_unreclaimable 2097152\nslab 3145728\n";

    #[test]
    fn a_v2_memory_stat_gives_free_cached_and_available_from_the_groups_use() {
        let u = Usage::parse(40 << 20, V2_STAT);
        assert_eq!(u.file, 20 << 20);
        assert_eq!(u.shmem, 8 << 20);
        let m = text(96 << 20, Some(&u));
        assert_eq!(row(&m, "MemTotal"), 98304);
        assert_eq!(row(&m, "MemFree"), 98304 - 40960);
        assert_eq!(row(&m, "Cached"), 20480);
        assert_eq!(row(&m, "Shmem"), 8192);
        // Free plus the file LRU lists plus reclaimable slab.
        assert_eq!(row(&m, "MemAvailable"), 98304 - 40960 + 12288 + 1024);
        assert_eq!(row(&m, "Slab"), 3072);
    }

    #[test]
    fn v1_names_count_from_the_hierarchy_totals() {
        let stat = "cache 0\nrss 0\nmapped_file 0\nshmem 0\n\
hierarchical_memory_limit 100663296\ntotal_cache 2097152\ntotal_rss 1048576\n\
total_mapped_file 4096\ntotal_shmem 8192\n";
        let u = Usage::parse(3 << 20, stat);
        assert_eq!(
            (u.file, u.anon, u.mapped, u.shmem),
            (2 << 20, 1 << 20, 4096, 8192)
        );
    }

    #[test]
    fn a_live_meminfo_never_passes_mem_and_keeps_its_length() {
        let fresh = text(64 << 20, None);
        let over = Usage {
            current: 1 << 40,
            file: 1 << 40,
            active_file: 1 << 40,
            ..Usage::default()
        };
        let m = text(64 << 20, Some(&over));
        assert_eq!(row(&m, "MemFree"), 0);
        assert_eq!(row(&m, "MemAvailable"), 65536);
        assert_eq!(row(&m, "Cached"), 65536);
        assert_eq!(m.len(), fresh.len());
        assert_eq!(text(64 << 20, Some(&Usage::default())).len(), fresh.len());
    }
}
