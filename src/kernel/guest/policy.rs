//! What the guest may ask of the host kernel: the seccomp filter every
//! guest process runs under (see the THREAT MODEL section of `linux(1)`).
//!
//! The guest's programs make their system calls to the host kernel, with
//! all capabilities of the monitor's user namespace. Real UML guests call
//! only UML's own kernel; this filter narrows the difference:
//!
//! - calls no guest needs, and whose host implementation is a known
//!   attack surface, fail ([`DENIED`]): module loading, kexec, BPF,
//!   userfaultfd, perf events, io_uring, swap, process accounting,
//!   handles that reach outside the guest's tree;
//! - new user namespaces fail unless the command line asked for them
//!   (`clone`/`unshare` with `CLONE_NEWUSER`; `clone3`, whose flags a
//!   filter cannot see, answers ENOSYS so that libc falls back to `clone`);
//! - other architectures' calling conventions (i386 through `int 0x80`,
//!   x32) fail: a UML x86_64 guest runs 64-bit programs only;
//! - `sync`, `syncfs` and remounts are held ([`Action::Notify`]) until the
//!   monitor has committed the journal and flushed the COW file, because
//!   the host kernel never tells a FUSE server of them (the durability
//!   contract of ext3 on UML); every other `mount` is held too, so that the
//!   monitor answers `mount -t hostfs` (`kernel::hostfs`) and lets the
//!   rest run;
//! - `syslog` is answered by the monitor from its own boot log
//!   (`kernel::console::kmsg`), so `dmesg` shows the guest's kernel, not the
//!   host's.
//!
//! The program is built here as data ([`program`]) and checked by running
//! it through a small BPF interpreter ([`run`]) in the unit tests; only
//! its installation is a system call (`sys::seccomp`).
#![forbid(unsafe_code)]

/// `AUDIT_ARCH_X86_64`.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// The x32 ABI's bit in the system-call number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `struct seccomp_data` offsets.
mod data {
    pub const NR: u32 = 0x00;
    pub const ARCH: u32 = 0x04;
    /// Low 32 bits of argument `i` (little endian) at 0x10 + 8 * i.
    pub const fn arg_lo(i: u32) -> u32 {
        0x10 + 8 * i
    }
}

/// One BPF instruction, as `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// `code`.
    pub code: u16,
    /// `jt`.
    pub jt: u8,
    /// `jf`.
    pub jf: u8,
    /// `k`.
    pub k: u32,
}

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

/// `SECCOMP_RET_ALLOW`.
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ERRNO`, with the errno in the low 16 bits.
pub const RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// What the filter does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run it.
    Allow,
    /// Fail it with this errno.
    Errno(i32),
    /// Hold it until the monitor answers.
    Notify,
}

impl Action {
    fn ret(self) -> u32 {
        match self {
            Action::Allow => RET_ALLOW,
            Action::Errno(e) => RET_ERRNO | (u32::try_from(e).unwrap_or(1) & 0xffff),
            Action::Notify => RET_USER_NOTIF,
        }
    }

    fn from_ret(ret: u32) -> Action {
        match ret & 0xffff_0000 {
            RET_ALLOW => Action::Allow,
            RET_USER_NOTIF => Action::Notify,
            _ => Action::Errno(i32::from(u16::try_from(ret & 0xffff).unwrap_or(0))),
        }
    }
}

/// A system call the guest may not make, and why (for the man page).
#[derive(Debug, Clone, Copy)]
pub struct Denied {
    /// The x86_64 system-call number.
    pub nr: i64,
    /// Its name.
    pub name: &'static str,
    /// The errno the guest sees.
    pub errno: i32,
}

const fn deny(nr: i64, name: &'static str, errno: i32) -> Denied {
    Denied { nr, name, errno }
}

/// The calls no guest gets.
pub const DENIED: &[Denied] = &[
    deny(libc::SYS_init_module, "init_module", libc::EPERM),
    deny(libc::SYS_finit_module, "finit_module", libc::EPERM),
    deny(libc::SYS_delete_module, "delete_module", libc::EPERM),
    deny(libc::SYS_kexec_load, "kexec_load", libc::EPERM),
    deny(libc::SYS_kexec_file_load, "kexec_file_load", libc::EPERM),
    deny(libc::SYS_bpf, "bpf", libc::EPERM),
    deny(libc::SYS_userfaultfd, "userfaultfd", libc::EPERM),
    deny(libc::SYS_perf_event_open, "perf_event_open", libc::EPERM),
    deny(libc::SYS_io_uring_setup, "io_uring_setup", libc::ENOSYS),
    deny(libc::SYS_io_uring_enter, "io_uring_enter", libc::ENOSYS),
    deny(
        libc::SYS_io_uring_register,
        "io_uring_register",
        libc::ENOSYS,
    ),
    deny(libc::SYS_swapon, "swapon", libc::EPERM),
    deny(libc::SYS_swapoff, "swapoff", libc::EPERM),
    deny(libc::SYS_acct, "acct", libc::EPERM),
    deny(
        libc::SYS_open_by_handle_at,
        "open_by_handle_at",
        libc::EPERM,
    ),
    deny(libc::SYS_lookup_dcookie, "lookup_dcookie", libc::EPERM),
    deny(libc::SYS_iopl, "iopl", libc::EPERM),
    deny(libc::SYS_ioperm, "ioperm", libc::EPERM),
    deny(libc::SYS_uselib, "uselib", libc::ENOSYS),
    deny(libc::SYS_quotactl, "quotactl", libc::EPERM),
    deny(libc::SYS_quotactl_fd, "quotactl_fd", libc::EPERM),
    deny(libc::SYS_fanotify_init, "fanotify_init", libc::EPERM),
    deny(libc::SYS_clone3, "clone3", libc::ENOSYS),
];

/// What the command line allows beyond the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Let the guest make user namespaces of its own.
    pub nested_userns: bool,
}

/// A program under construction: a list of instructions whose jumps are
/// all forward and short (the list is small).
struct Builder(Vec<Insn>);

impl Builder {
    fn stmt(&mut self, code: u16, k: u32) {
        self.0.push(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        });
    }

    fn jump(&mut self, code: u16, k: u32, jt: u8, jf: u8) {
        self.0.push(Insn { code, jt, jf, k });
    }

    fn ret(&mut self, action: Action) {
        self.stmt(BPF_RET_K, action.ret());
    }

    /// `if nr == value { return action }`, with the number in A.
    fn on_nr(&mut self, nr: i64, action: Action) {
        self.jump(BPF_JEQ_K, nr_k(nr), 0, 1);
        self.ret(action);
    }

    /// `if nr == value { return (arg & bit) ? hit : miss }`, keeping the
    /// number in A for the next test.
    fn on_arg_bit(&mut self, nr: i64, arg: u32, bit: u32, hit: Action, miss: Action) {
        self.jump(BPF_JEQ_K, nr_k(nr), 0, 4);
        self.stmt(BPF_LD_W_ABS, data::arg_lo(arg));
        self.jump(BPF_JSET_K, bit, 0, 1);
        self.ret(hit);
        self.ret(miss);
    }
}

fn nr_k(nr: i64) -> u32 {
    u32::try_from(nr).unwrap_or(u32::MAX)
}

#[cfg(test)]
fn bit(flag: libc::c_ulong) -> u32 {
    u32::try_from(flag).unwrap_or(0)
}

/// The guest's filter.
pub fn program(opts: Options) -> Vec<Insn> {
    let mut b = Builder(Vec::new());
    b.stmt(BPF_LD_W_ABS, data::ARCH);
    b.jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0);
    b.ret(Action::Errno(libc::ENOSYS));
    b.stmt(BPF_LD_W_ABS, data::NR);
    b.jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1);
    b.ret(Action::Errno(libc::ENOSYS));
    // The calls the host kernel never tells a FUSE server of.
    b.on_nr(libc::SYS_sync, Action::Notify);
    b.on_nr(libc::SYS_syncfs, Action::Notify);
    // The guest's kernel log is the monitor's boot log, not the host's.
    b.on_nr(libc::SYS_syslog, Action::Notify);
    // Every mount: remounts wait for a commit, `hostfs` mounts are the
    // monitor's (kernel::hostfs), the others are let run.
    b.on_nr(libc::SYS_mount, Action::Notify);
    // A forced unmount wants the initial namespace's CAP_SYS_ADMIN: the
    // monitor does it (durable.rs).
    b.on_arg_bit(
        libc::SYS_umount2,
        1,
        u32::try_from(libc::MNT_FORCE).unwrap_or(0),
        Action::Notify,
        Action::Allow,
    );
    for d in DENIED {
        b.on_nr(d.nr, Action::Errno(d.errno));
    }
    if !opts.nested_userns {
        let newuser = u32::try_from(libc::CLONE_NEWUSER).unwrap_or(0);
        let deny = Action::Errno(libc::EPERM);
        b.on_arg_bit(libc::SYS_clone, 0, newuser, deny, Action::Allow);
        b.on_arg_bit(libc::SYS_unshare, 0, newuser, deny, Action::Allow);
    }
    b.ret(Action::Allow);
    b.0
}

/// What `program` answers for a call, by interpreting it (the subset of
/// classic BPF that [`program`] emits). `None` for a malformed program.
pub fn run(prog: &[Insn], arch: u32, nr: i64, args: [u64; 6]) -> Option<Action> {
    let mut bytes = [0u8; 64];
    bytes[0..4].copy_from_slice(&nr_k(nr).to_le_bytes());
    bytes[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        let at = 16 + 8 * i;
        bytes[at..at + 8].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    while let Some(insn) = prog.get(pc) {
        pc += 1;
        match insn.code {
            BPF_LD_W_ABS => {
                let at = usize::try_from(insn.k).ok()?;
                let w = bytes.get(at..at + 4)?;
                acc = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
            BPF_JEQ_K | BPF_JGE_K | BPF_JSET_K => {
                let taken = match insn.code {
                    BPF_JEQ_K => acc == insn.k,
                    BPF_JGE_K => acc >= insn.k,
                    _ => acc & insn.k != 0,
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
            BPF_RET_K => return Some(Action::from_ret(insn.k)),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(nr: i64, args: [u64; 6]) -> Action {
        run(&program(Options::default()), AUDIT_ARCH_X86_64, nr, args).unwrap()
    }

    #[test]
    fn ordinary_calls_run() {
        for nr in [
            libc::SYS_read,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_keyctl,
            libc::SYS_ptrace,
        ] {
            assert_eq!(call(nr, [0; 6]), Action::Allow, "nr {nr}");
        }
    }

    #[test]
    fn sync_syncfs_remounts_and_mounts_wait_for_the_monitor() {
        assert_eq!(call(libc::SYS_sync, [0; 6]), Action::Notify);
        assert_eq!(call(libc::SYS_syncfs, [3, 0, 0, 0, 0, 0]), Action::Notify);
        assert_eq!(call(libc::SYS_syslog, [3, 0, 0, 0, 0, 0]), Action::Notify);
        let remount = u64::from(bit(libc::MS_REMOUNT) | bit(libc::MS_RDONLY));
        assert_eq!(
            call(libc::SYS_mount, [1, 2, 3, remount, 0, 0]),
            Action::Notify
        );
        // Every mount is seen by the monitor (hostfs is its own).
        let bind = u64::from(bit(libc::MS_BIND));
        assert_eq!(call(libc::SYS_mount, [1, 2, 3, bind, 0, 0]), Action::Notify);
        assert_eq!(call(libc::SYS_mount, [1, 2, 3, 0, 0, 0]), Action::Notify);
        assert_eq!(call(libc::SYS_umount2, [1, 1, 0, 0, 0, 0]), Action::Notify);
        assert_eq!(call(libc::SYS_umount2, [1, 2, 0, 0, 0, 0]), Action::Allow);
    }

    #[test]
    fn every_denied_call_fails_with_its_errno() {
        for d in DENIED {
            assert_eq!(call(d.nr, [0; 6]), Action::Errno(d.errno), "{}", d.name);
        }
    }

    #[test]
    fn new_user_namespaces_only_when_asked_for() {
        let newuser = u64::try_from(libc::CLONE_NEWUSER).unwrap();
        let newns = u64::try_from(libc::CLONE_NEWNS).unwrap();
        assert_eq!(
            call(libc::SYS_unshare, [newuser, 0, 0, 0, 0, 0]),
            Action::Errno(libc::EPERM)
        );
        assert_eq!(
            call(libc::SYS_clone, [newuser | newns, 0, 0, 0, 0, 0]),
            Action::Errno(libc::EPERM)
        );
        assert_eq!(
            call(libc::SYS_unshare, [newns, 0, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(call(libc::SYS_clone, [17, 0, 0, 0, 0, 0]), Action::Allow);
        let open = program(Options {
            nested_userns: true,
        });
        assert_eq!(
            run(
                &open,
                AUDIT_ARCH_X86_64,
                libc::SYS_unshare,
                [newuser, 0, 0, 0, 0, 0]
            ),
            Some(Action::Allow)
        );
    }

    #[test]
    fn other_abis_are_refused() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        let prog = program(Options::default());
        assert_eq!(
            run(&prog, AUDIT_ARCH_I386, 36, [0; 6]),
            Some(Action::Errno(libc::ENOSYS))
        );
        assert_eq!(
            run(&prog, AUDIT_ARCH_X86_64, 0x4000_0000 | 2, [0; 6]),
            Some(Action::Errno(libc::ENOSYS))
        );
    }

    #[test]
    fn the_program_fits_the_kernel_limit_and_ends_in_a_return() {
        let prog = program(Options::default());
        assert!(prog.len() < 4096);
        assert_eq!(prog.last().map(|i| i.code), Some(BPF_RET_K));
    }
}
