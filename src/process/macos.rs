//! process_* on macOS, through libc: the platform has no /proc.
//!
//! - CPU seconds: `getrusage(RUSAGE_SELF)`, user plus system time;
//! - resident and virtual memory, threads: `proc_pidinfo(PROC_PIDTASKINFO)`;
//! - start time: `proc_pidinfo(PROC_PIDTBSDINFO)`, seconds and microseconds;
//! - open descriptors: the entries of `/dev/fd`;
//! - the descriptor limit: `getrlimit(RLIMIT_NOFILE)`, the soft value.
//!
//! `process_virtual_memory_max_bytes` is left out: macOS does not enforce
//! `RLIMIT_AS`, so any number would mislead. This file is compiled for
//! aarch64-apple-darwin by `make test` but has not run on a Mac.

use std::mem::{size_of, zeroed};

use super::fds::count_open_fds;
use super::slot::{CPU, MAX_FDS, OPEN_FDS, RESIDENT, START_TIME, THREADS, VIRTUAL};
use super::Values;

/// Fills every slot it can read.
pub(super) fn read(values: &mut Values) {
    values[CPU] = cpu_seconds();
    if let Some(task) = pid_info::<libc::proc_taskinfo>(libc::PROC_PIDTASKINFO) {
        values[RESIDENT] = Some(task.pti_resident_size as f64);
        values[VIRTUAL] = Some(task.pti_virtual_size as f64);
        values[THREADS] = Some(f64::from(task.pti_threadnum));
    }
    if let Some(bsd) = pid_info::<libc::proc_bsdinfo>(libc::PROC_PIDTBSDINFO) {
        values[START_TIME] = Some(bsd.pbi_start_tvsec as f64 + bsd.pbi_start_tvusec as f64 / 1e6);
    }
    values[OPEN_FDS] = count_open_fds().map(|n| n as f64);
    values[MAX_FDS] = fd_limit();
}

fn cpu_seconds() -> Option<f64> {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct, and
    // getrusage writes at most its size into it.
    let usage = unsafe {
        let mut usage: libc::rusage = zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + f64::from(t.tv_usec) / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// One `proc_pidinfo` flavour for this process; `None` unless the kernel
/// filled the whole struct.
fn pid_info<T>(flavor: libc::c_int) -> Option<T> {
    let size = size_of::<T>() as libc::c_int;
    // SAFETY: T is one of libc's plain C structs for `flavor`, so all zeroes
    // is a valid value; proc_pidinfo writes at most `size` bytes into it and
    // returns how many it wrote, checked before the value is used.
    unsafe {
        let mut info: T = zeroed();
        let n = libc::proc_pidinfo(
            libc::getpid(),
            flavor,
            0,
            (&mut info as *mut T).cast(),
            size,
        );
        (n == size).then_some(info)
    }
}

/// The soft limit on open files; "unlimited" as 2^64 - 1, as on Linux.
fn fd_limit() -> Option<f64> {
    // SAFETY: getrlimit writes one rlimit into a local.
    let lim = unsafe {
        let mut lim: libc::rlimit = zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        lim
    };
    Some(if lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX as f64
    } else {
        lim.rlim_cur as f64
    })
}
