//! One of tiny_http's connection sockets, held through our own duplicate.
//!
//! tiny_http owns its sockets and closes them when it likes; the descriptor
//! number we find in /proc/self/fd can be closed and handed to a new
//! connection at any moment. So nothing here acts on a number it found.
//! [`ConnSocket::dup`] first duplicates the descriptor (`F_DUPFD_CLOEXEC`).
//! The duplicate refers to the open socket the number named at that instant,
//! and it keeps that socket alive until it is dropped, whatever tiny_http
//! does with its own descriptors. Every reading (its inode, addresses,
//! `TCP_INFO`) and every action (`shutdown`) then goes through the
//! duplicate, so they all concern the one socket that was inspected.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `TCP_ESTABLISHED` from the kernel's tcp_states.h (not exported by libc).
#[cfg(target_os = "linux")]
pub(crate) const TCP_ESTABLISHED: u8 = 1;

/// A duplicate of a socket descriptor; closed on drop.
pub(crate) struct ConnSocket {
    fd: OwnedFd,
    /// The socket's inode: the identity of the socket itself, shared by
    /// every descriptor that refers to it.
    pub(crate) inode: u64,
}

impl ConnSocket {
    /// Duplicates `fd` if it is a socket. `None` when it is not, or was
    /// closed in the meantime.
    pub(crate) fn dup(fd: i32) -> Option<ConnSocket> {
        // SAFETY: F_DUPFD_CLOEXEC on any number is harmless: it fails with
        // EBADF when the number is not open, and otherwise returns a new
        // descriptor that we alone own, so OwnedFd may close it.
        let fd = unsafe {
            let new = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0);
            if new < 0 {
                return None;
            }
            OwnedFd::from_raw_fd(new)
        };
        // SAFETY: an all-zero `stat` is a valid value of the plain C struct,
        // and fstat writes at most its size into it.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) != 0 {
                return None;
            }
            st
        };
        ((st.st_mode & libc::S_IFMT) == libc::S_IFSOCK).then_some(ConnSocket {
            fd,
            inode: st.st_ino,
        })
    }

    /// The local address.
    pub(crate) fn local(&self) -> Option<SocketAddr> {
        self.addr(libc::getsockname)
    }

    /// The peer's address; `None` for a listener or a closed connection.
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        self.addr(libc::getpeername)
    }

    fn addr(
        &self,
        get: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
    ) -> Option<SocketAddr> {
        // SAFETY: an all-zero sockaddr_storage is valid; `get` (getsockname
        // or getpeername) writes at most `len` bytes into it and sets `len`;
        // the family then says which sockaddr type the bytes hold, and
        // sockaddr_storage is large and aligned enough for either.
        unsafe {
            let mut addr: libc::sockaddr_storage = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if get(
                self.fd.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            ) != 0
            {
                return None;
            }
            match i32::from(addr.ss_family) {
                libc::AF_INET => {
                    let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                        u16::from_be(a.sin_port),
                    )))
                }
                libc::AF_INET6 => {
                    let a = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        Ipv6Addr::from(a.sin6_addr.s6_addr),
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }
    }

    /// True for an accepted connection of the server listening on `port`,
    /// connected or not any more: local port `port`, and not the listener.
    pub(crate) fn is_server_connection(&self, port: u16) -> bool {
        self.local().is_some_and(|a| a.port() == port) && !self.is_listening()
    }

    fn is_listening(&self) -> bool {
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_ACCEPTCONN writes one c_int into the live local `on`,
        // whose size `len` states.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        rc != 0 || on != 0
    }

    /// `TCP_INFO`, when the connection is established. Linux only: macOS
    /// has a different struct under another option, and the guard that
    /// reads this runs on Linux alone.
    #[cfg(target_os = "linux")]
    pub(crate) fn tcp_info(&self) -> Option<libc::tcp_info> {
        self.tcp_info_in_any_state()
            .filter(|info| info.tcpi_state == TCP_ESTABLISHED)
    }

    /// `TCP_INFO` whatever the connection's state (a client that has closed
    /// its side, say).
    #[cfg(target_os = "linux")]
    pub(crate) fn tcp_info_in_any_state(&self) -> Option<libc::tcp_info> {
        // SAFETY: an all-zero tcp_info is a valid value of the C struct; the
        // kernel writes at most `len` bytes into it.
        unsafe {
            let mut info: libc::tcp_info = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
            let rc = libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            );
            (rc == 0).then_some(info)
        }
    }

    /// Bytes the connection has received that nobody has read yet.
    #[cfg(target_os = "linux")]
    pub(crate) fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int into the live `n`; on a socket
        // that is not connected it fails or reports 0.
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc == 0 {
            n.max(0) as usize
        } else {
            0
        }
    }

    /// Shuts down the reading side only: reads of data not yet received end
    /// with end-of-file instead of waiting. Writes still work.
    pub(crate) fn shutdown_read(&self) {
        // SAFETY: shutdown(2) on a descriptor we own; at worst ENOTCONN.
        unsafe {
            libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RD);
        }
    }

    /// Shuts the connection down both ways. tiny_http's blocked read wakes
    /// with end-of-file and its thread closes its descriptors; a response
    /// still being written fails with EPIPE. Writes nothing.
    pub(crate) fn shutdown(&self) {
        // SAFETY: shutdown(2) on a descriptor we own; at worst ENOTCONN.
        unsafe {
            libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

/// Calls `f` with a [`ConnSocket`] for every socket of this process that is
/// an accepted connection of the listener on `port`, including ones no
/// longer connected that are still open. tiny_http holds two
/// descriptors per connection (a read and a write half); each socket is
/// reported once.
pub(crate) fn for_each_connection(port: u16, mut f: impl FnMut(ConnSocket)) {
    let mut seen: Vec<u64> = Vec::new();
    crate::process::fds::for_each_open_fd(|fd| {
        let Some(sock) = ConnSocket::dup(fd) else {
            return;
        };
        if seen.contains(&sock.inode) || !sock.is_server_connection(port) {
            return;
        }
        seen.push(sock.inode);
        f(sock);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_duplicate_keeps_naming_the_inspected_socket_after_the_number_is_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let first = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (served, _) = listener.accept().unwrap();
        let number = served.as_raw_fd();
        let held = ConnSocket::dup(number).unwrap();
        assert!(held.is_server_connection(port));
        assert_eq!(held.peer(), Some(first.local_addr().unwrap()));

        // tiny_http closes its descriptor; a new connection gets the number.
        drop(served);
        let second = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (reused, _) = listener.accept().unwrap();
        // Usually the same number (the kernel hands out the lowest free
        // one), unless another test's descriptor took it first.
        let now = ConnSocket::dup(reused.as_raw_fd()).unwrap();
        assert_ne!(now.inode, held.inode);
        assert_eq!(now.peer(), Some(second.local_addr().unwrap()));

        // Acting through the old duplicate touches only the first connection.
        held.shutdown();
        let mut buf = [0u8; 1];
        first
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        assert_eq!(
            std::io::Read::read(&mut &first, &mut buf).unwrap(),
            0,
            "first got EOF"
        );
        second.set_nonblocking(true).unwrap();
        let r = std::io::Read::read(&mut &second, &mut buf);
        assert_eq!(
            r.unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "second untouched"
        );
        assert!(now.tcp_info().is_some());
    }

    #[test]
    fn connections_are_listed_once_each() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let served: Vec<TcpStream> = (0..3).map(|_| listener.accept().unwrap().0).collect();
        // A second descriptor of the same socket, as tiny_http keeps.
        let _clone = served[0].try_clone().unwrap();
        let mut peers = Vec::new();
        for_each_connection(port, |s| peers.push(s.peer().unwrap()));
        peers.sort();
        let mut want: Vec<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        want.sort();
        assert_eq!(peers, want);
        assert!(
            ConnSocket::dup(listener.as_raw_fd()).is_some_and(|l| !l.is_server_connection(port))
        );
    }
}
