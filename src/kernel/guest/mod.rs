//! The guest's world as the host kernel sees it: its processes (found
//! through the pid namespace of pid 1), its user and group ids, the
//! seccomp policy every guest process runs under, what `mem=` bounds
//! (cgroups, rlimits, tmpfs sizes) and its small `/dev` and `/proc` files.

pub mod cgroup;
pub mod cgroupns;
pub mod dev;
pub mod idmap;
pub mod limits;
pub mod meminfo;
pub mod policy;
pub mod processes;
pub mod tmpfs;
