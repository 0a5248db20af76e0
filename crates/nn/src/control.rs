//! The backend process's control socket (its stdin): a `SOCK_SEQPACKET` pair over which the
//! host hands the backend one end of each new connection (`SCM_RIGHTS`) and tells it which
//! models it may forget. Fixed 33-byte messages: a tag, then a digest (zeros for `CONNECT`).
//!
//! Why connections and not one multiplexed pipe: with its own stream per computation, the
//! thread that asks is the thread that reads the answer and the backend thread that reads the
//! request computes it — two wake-ups per inference instead of four, which is most of the cost
//! of crossing processes for a small model.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::wire::Digest;

/// A new connection: the message carries the backend's end of a stream socket.
pub const CONNECT: u8 = 1;
/// The host holds no model with this digest any more.
pub const RELEASE: u8 = 4;

const LEN: usize = 33;

/// A connected `SOCK_SEQPACKET` pair, both ends close-on-exec.
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array on success; we own them after.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one message, with `fd` attached when given.
pub fn send(sock: BorrowedFd, tag: u8, digest: &Digest, fd: Option<BorrowedFd>) -> io::Result<()> {
    let mut msg = [0u8; LEN];
    msg[0] = tag;
    msg[1..].copy_from_slice(digest);
    let mut iov = libc::iovec { iov_base: msg.as_mut_ptr().cast(), iov_len: LEN };
    // Room for one descriptor, aligned as cmsghdr requires.
    let mut cmsg_buf = [0u64; 4];
    // SAFETY: msghdr is plain data; every pointer in it refers to live locals above, and the
    // control buffer is large enough for one descriptor (CMSG_SPACE(4) = 24 bytes on 64-bit).
    unsafe {
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
            hdr.msg_control = cmsg_buf.as_mut_ptr().cast();
            hdr.msg_controllen = space;
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
        }
        if libc::sendmsg(sock.as_raw_fd(), &hdr, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one message: its tag, digest and the descriptor it carried. `None` at the end.
pub fn recv(sock: BorrowedFd) -> io::Result<Option<(u8, Digest, Option<OwnedFd>)>> {
    let mut msg = [0u8; LEN];
    let mut iov = libc::iovec { iov_base: msg.as_mut_ptr().cast(), iov_len: LEN };
    let mut cmsg_buf = [0u64; 8];
    // SAFETY: as in `send`; the kernel writes at most msg_controllen bytes of control data, and
    // a descriptor is taken only from a well-formed SCM_RIGHTS message it produced.
    unsafe {
        let mut hdr: libc::msghdr = std::mem::zeroed();
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cmsg_buf.as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of_val(&cmsg_buf);
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let mut fd = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
        if n != LEN {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short control message"));
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&msg[1..]);
        Ok(Some((msg[0], digest, fd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_stream_travels_with_its_message() {
        let (a, b) = pair().unwrap();
        let (mut mine, theirs) = UnixStream::pair().unwrap();
        send(a.as_fd(), CONNECT, &[7; 32], Some(theirs.as_fd())).unwrap();
        drop(theirs);
        send(a.as_fd(), RELEASE, &[9; 32], None).unwrap();
        let (tag, digest, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!((tag, digest), (CONNECT, [7; 32]));
        let mut got = UnixStream::from(fd.expect("the descriptor arrived"));
        mine.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        got.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        let (tag, digest, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!((tag, digest, fd.is_none()), (RELEASE, [9; 32], true));
        drop(a);
        assert!(recv(b.as_fd()).unwrap().is_none(), "the end");
    }
}
