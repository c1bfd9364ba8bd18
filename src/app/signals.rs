//! SIGTERM and SIGINT, received by a thread instead of a handler.
//!
//! [`ShutdownSignals::block`] blocks both signals in the calling thread before
//! any other thread exists, so every thread inherits the mask and the signals
//! stay pending until [`ShutdownSignals::wait`] takes one with `sigwait`. No
//! code runs in signal context, so the shutdown path can lock and allocate.
//!
//! This also works as PID 1 in a container: the kernel discards a signal
//! whose disposition is the default for a namespace's init process, but a
//! blocked signal is never discarded, it waits for `sigwait`.

use std::io;
use std::mem::MaybeUninit;

/// The blocked shutdown signals.
pub struct ShutdownSignals {
    set: libc::sigset_t,
}

impl ShutdownSignals {
    /// Blocks SIGTERM and SIGINT in this thread and the threads it starts.
    pub fn block() -> io::Result<Self> {
        // SAFETY: sigemptyset initialises the set before use; the pointers
        // are to live locals.
        unsafe {
            let mut set = MaybeUninit::<libc::sigset_t>::uninit();
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(ShutdownSignals { set })
        }
    }

    /// Blocks until one of the signals arrives and returns its name.
    pub fn wait(&self) -> &'static str {
        loop {
            let mut sig = 0;
            // SAFETY: `set` is initialised, `sig` is a live local.
            let rc = unsafe { libc::sigwait(&self.set, &mut sig) };
            if rc == 0 {
                return match sig {
                    libc::SIGTERM => "SIGTERM",
                    libc::SIGINT => "SIGINT",
                    _ => "signal",
                };
            }
        }
    }
}
