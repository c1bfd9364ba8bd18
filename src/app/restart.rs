//! Restarting in place: what `serve` does when the server hands back a
//! [`Stopped::Restart`](tinymon::http::Stopped), and what the next process
//! picks up.
//!
//! Why `exec`: the threads and descriptors tiny_http leaks on an HTTP/2.0
//! request line cannot be freed from inside the process, but `exec` ends
//! every thread and closes every close-on-exec descriptor at once, and
//! keeps the PID (so it works as a container's PID 1, and a supervisor sees
//! no exit). The listening socket is the one descriptor passed on: the
//! kernel keeps its port and backlog, so clients that connect meanwhile
//! wait a few milliseconds instead of being refused.
//!
//! The next process learns three things from its environment, which it
//! reads and removes before it starts any thread:
//! - `TINYMON_LISTEN_FD`: the inherited listening socket;
//! - `TINYMON_RESTARTS`: restarts so far, so `tinymon_restarts_total`
//!   keeps counting across them (every other counter starts again from 0,
//!   which Prometheus's `rate` treats as a reset, and
//!   `process_start_time_seconds` moves);
//! - `TINYMON_RESTART_BEGAN_NS`: when the drain began (Unix time, ns), to
//!   log what the restart cost.

use std::ffi::{CString, OsString};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tinymon::metrics::{Counter, Family, MetricError, Registry};

const LISTEN_FD: &str = "TINYMON_LISTEN_FD";
const RESTARTS: &str = "TINYMON_RESTARTS";
const BEGAN: &str = "TINYMON_RESTART_BEGAN_NS";

/// The only reason there is today, as the metric's label value.
pub(crate) const UNRELEASED: &str = "unreleased_connections";

/// What a previous process of this PID handed over (nothing on a first
/// start).
#[derive(Debug, Default)]
pub(crate) struct Inherited {
    pub(crate) listener: Option<TcpListener>,
    pub(crate) restarts: u64,
    /// How long ago the previous process began to drain.
    pub(crate) since_drain_began: Option<Duration>,
}

/// Reads and removes the restart variables. Call it before any thread
/// exists: it changes the environment.
pub(crate) fn take_inherited() -> Result<Inherited, String> {
    let mut inherited = Inherited::default();
    if let Some(v) = take(RESTARTS) {
        inherited.restarts = v
            .parse()
            .map_err(|_| format!("{RESTARTS}={v:?} is not a count"))?;
    }
    if let Some(v) = take(BEGAN) {
        let began: u64 = v
            .parse()
            .map_err(|_| format!("{BEGAN}={v:?} is not a time"))?;
        inherited.since_drain_began = SystemTime::now()
            .duration_since(UNIX_EPOCH + Duration::from_nanos(began))
            .ok();
    }
    if let Some(v) = take(LISTEN_FD) {
        let fd: i32 = v
            .parse()
            .ok()
            .filter(|fd| *fd > 2)
            .ok_or_else(|| format!("{LISTEN_FD}={v:?} is not a descriptor number above 2"))?;
        if !is_listening_socket(fd) {
            return Err(format!("{LISTEN_FD}={fd} is not a listening socket"));
        }
        // SAFETY: `fd` is open and a listening socket (checked above), and
        // nothing in this process owns it yet: it was inherited through
        // exec, and only this function, called once before any thread,
        // reads the variable that names it.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        set_cloexec(fd, true).map_err(|e| format!("{LISTEN_FD}={fd}: {e}"))?;
        inherited.listener = Some(listener);
    }
    Ok(inherited)
}

fn take(key: &str) -> Option<String> {
    let v = std::env::var(key).ok();
    std::env::remove_var(key);
    v
}

/// Whether `fd` is an open socket in the listening state.
fn is_listening_socket(fd: i32) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the live `on`; on
    // a descriptor that is closed or not a socket it only fails.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            &mut on as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    rc == 0 && on == 1
}

fn set_cloexec(fd: i32, on: bool) -> io::Result<()> {
    let flag = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD only changes the descriptor's flags; `fd` is open.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flag) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `tinymon_restarts_total{reason}`, starting from what was inherited.
pub(crate) fn register(
    registry: &Registry,
    restarts: u64,
) -> Result<Arc<Family<Counter, 1>>, MetricError> {
    let family = registry.register(Family::<Counter, 1>::new(
        "tinymon_restarts_total",
        "Times the server restarted in place (exec, same PID and listening socket), by reason.",
        ["reason"],
    )?)?;
    family.get_or_create(&[UNRELEASED]).inc_by(restarts);
    Ok(family)
}

/// Replaces this process with the same binary, arguments and environment,
/// plus the restart variables, passing `listener` on. Returns only on
/// failure.
pub(crate) fn exec_self(listener: TcpListener, restarts: u64, began: SystemTime) -> io::Error {
    let fd = listener.as_raw_fd();
    if let Err(e) = set_cloexec(fd, false) {
        return e;
    }
    let began_ns = began
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| ![LISTEN_FD, RESTARTS, BEGAN].iter().any(|v| k == v))
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    env.push(format!("{LISTEN_FD}={fd}").into());
    env.push(format!("{RESTARTS}={restarts}").into());
    env.push(format!("{BEGAN}={began_ns}").into());
    let Some(env) = c_strings(env) else {
        return io::Error::other("an environment variable holds a NUL byte");
    };
    let Some(args) = c_strings(std::env::args_os().collect()) else {
        return io::Error::other("an argument holds a NUL byte");
    };
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // Linux: the running binary itself, even if its file was replaced.
    #[cfg(target_os = "linux")]
    let self_exe = c"/proc/self/exe".to_owned();
    #[cfg(not(target_os = "linux"))]
    let self_exe = match std::env::current_exe()
        .ok()
        .and_then(|p| CString::new(p.into_os_string().into_vec()).ok())
    {
        Some(p) => p,
        None => return io::Error::other("cannot name this binary to exec it"),
    };
    // The socket must stay open for exec: give up ownership of it.
    let _ = listener.into_raw_fd();
    // SAFETY: the path is NUL-terminated; `argv` and `envp` are
    // NULL-terminated arrays of pointers into `args` and `env`, which live
    // until this call returns (it only returns on failure).
    unsafe {
        libc::execve(self_exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    let e = io::Error::last_os_error();
    // SAFETY: exec failed, so `fd` is still ours; close it rather than leak.
    unsafe { libc::close(fd) };
    e
}

fn c_strings(list: Vec<OsString>) -> Option<Vec<CString>> {
    list.into_iter()
        .map(|s| CString::new(s.into_vec()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_listening_socket_counts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening_socket(listener.as_raw_fd()));
        let conn = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!is_listening_socket(conn.as_raw_fd()));
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!is_listening_socket(file.as_raw_fd()));
    }
}
