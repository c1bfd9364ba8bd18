//! This process's open descriptors, listed from the directory the kernel
//! keeps of them: `/proc/self/fd` on Linux, `/dev/fd` on macOS and the
//! BSDs (where it is a per-process view too). `process_open_fds` counts
//! them, and the HTTP layer's connection lookup walks them to find its
//! sockets.

#[cfg(target_os = "linux")]
const FD_DIR: &std::ffi::CStr = c"/proc/self/fd";
#[cfg(not(target_os = "linux"))]
const FD_DIR: &std::ffi::CStr = c"/dev/fd";

/// How many descriptors are open; `None` when the directory cannot be read.
pub(crate) fn count_open_fds() -> Option<usize> {
    let mut count = 0;
    for_each_open_fd(|_| count += 1).then_some(count)
}

/// Calls `f` with every open descriptor of this process, except the one used
/// to list them; false when the descriptor directory cannot be read.
pub(crate) fn for_each_open_fd(mut f: impl FnMut(i32)) -> bool {
    // SAFETY: the path is NUL-terminated; the DIR pointer is checked for null,
    // used only by dirfd/readdir, and closed once; d_name is NUL-terminated.
    unsafe {
        let dir = libc::opendir(FD_DIR.as_ptr());
        if dir.is_null() {
            return false;
        }
        let own = libc::dirfd(dir);
        loop {
            let entry = libc::readdir(dir);
            if entry.is_null() {
                break;
            }
            let name = std::ffi::CStr::from_ptr((*entry).d_name.as_ptr());
            if let Some(fd) = name.to_str().ok().and_then(|s| s.parse::<i32>().ok()) {
                if fd != own {
                    f(fd);
                }
            }
        }
        libc::closedir(dir);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_file_just_opened_is_listed() {
        let f = std::fs::File::open("/").unwrap();
        let mut found = false;
        assert!(for_each_open_fd(|fd| found |= fd == f.as_raw_fd()));
        assert!(found);
        assert!(count_open_fds().unwrap() >= 1);
    }
}
