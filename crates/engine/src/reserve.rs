//! `FdReserve`: spare file descriptors held back so a server (the daemon API, `serve`'s
//! listener) can still accept and answer after guests together used up the process's
//! descriptor limit (EMFILE). Each guest is bounded by its own handle budget (`Limits`); this
//! is the reserve for the case where many guests reach theirs at once.

use std::fs::File;
use std::sync::Mutex;

pub struct FdReserve {
    spare: Mutex<Vec<File>>,
    size: usize,
}

impl FdReserve {
    /// Holds `size` descriptors (of `/dev/null`) until [`FdReserve::release`].
    pub fn new(size: usize) -> FdReserve {
        let reserve = FdReserve { spare: Mutex::new(Vec::with_capacity(size)), size };
        reserve.refill();
        reserve
    }

    /// Gives the spare descriptors back to the process, so the next accept (and the request
    /// it brings) can get one. Returns how many were released.
    pub fn release(&self) -> usize {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let n = spare.len();
        spare.clear();
        n
    }

    /// Takes spare descriptors again, as many as are free up to the reserve's size.
    pub fn refill(&self) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        while spare.len() < self.size {
            match File::open("/dev/null") {
                Ok(f) => spare.push(f),
                Err(_) => break,
            }
        }
    }

    /// Is `e` the process (or system) being out of descriptors?
    pub fn is_exhaustion(e: &std::io::Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_refill() {
        let r = FdReserve::new(4);
        assert_eq!(r.release(), 4);
        assert_eq!(r.release(), 0);
        r.refill();
        assert_eq!(r.release(), 4);
        assert!(FdReserve::is_exhaustion(&std::io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!FdReserve::is_exhaustion(&std::io::Error::from_raw_os_error(libc::ENOENT)));
    }
}
