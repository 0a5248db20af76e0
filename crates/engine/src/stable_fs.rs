//! `--deterministic` directories: listings in name order (by bytes) and file times fixed, for
//! preview 1 modules and WASI 0.2 components alike.
//!
//! wasmtime-wasi lists a directory in the host filesystem's order (hash order on ext4, creation
//! order on tmpfs) and reports the host's access/modify/change times and inode numbers, so the
//! same tree gives other answers on another machine. Here its answers are taken and reordered
//! or normalized before the guest sees them: every time reads as [`FIXED_TIME_NS`]
//! (2000-01-01T00:00:00Z, where the deterministic clock starts), a preview 1 entry's inode is
//! a hash of its name, and device numbers read 0. Sizes, types and contents are the tree's own.

use std::collections::HashMap;

use wasmtime::component::{Linker as ComponentLinker, Resource};
use wasmtime::{Caller, Linker};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::{WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::types as p1;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as p2, DescriptorStat, DirectoryEntry, DirectoryEntryStream, HostDescriptor, HostDirectoryEntryStream,
};
use wiggle::{GuestMemory, GuestPtr};

/// Every file time a deterministic guest sees, in nanoseconds since the Unix epoch.
pub const FIXED_TIME_NS: u64 = crate::determinism::WALL_START_SECS * 1_000_000_000;

/// preview 1 errno `fault`: a buffer outside the guest's memory.
const ERRNO_FAULT: i32 = 21;
/// A listing larger than this is refused (`nomem`) rather than buffered.
const MAX_LISTING_BYTES: usize = 64 << 20;
const ERRNO_NOMEM: i32 = 48;
const DIRENT_LEN: usize = 24;

/// Replaces the preview 1 calls that reveal host order and times.
pub(crate) fn shadow_p1<T: Send + 'static>(
    linker: &mut Linker<T>,
    wasi: fn(&mut T) -> &mut WasiP1Ctx,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_readdir",
        move |mut caller: Caller<'_, T>, (fd, buf, len, cookie, used_at): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                let entries = match sorted_listing(wasi(caller.data_mut()), fd).await? {
                    Ok(entries) => entries,
                    Err(errno) => return Ok(errno),
                };
                let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                    return Ok(ERRNO_FAULT);
                };
                let data = memory.data_mut(&mut caller);
                let Some(used) = write_dirents(data, buf as u32, len as u32, cookie as u64, &entries) else {
                    return Ok(ERRNO_FAULT);
                };
                Ok(if put(data, used_at as u32, &used.to_le_bytes()) { 0 } else { ERRNO_FAULT })
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_filestat_get",
        move |mut caller: Caller<'_, T>, (fd, stat_at): (i32, i32)| {
            Box::new(async move {
                let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                    return Ok(ERRNO_FAULT);
                };
                let (data, host) = memory.data_and_store_mut(&mut caller);
                let got = wasi(host).fd_filestat_get(&mut GuestMemory::Unshared(data), p1::Fd::from(fd)).await;
                finish_stat(data, stat_at, got)
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "path_filestat_get",
        move |mut caller: Caller<'_, T>, (fd, flags, path, path_len, stat_at): (i32, i32, i32, i32, i32)| {
            Box::new(async move {
                let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
                    return Ok(ERRNO_FAULT);
                };
                let Ok(flags) = p1::Lookupflags::try_from(flags) else {
                    return Ok(p1::Errno::Inval as i32);
                };
                let (data, host) = memory.data_and_store_mut(&mut caller);
                let path = GuestPtr::new((path as u32, path_len as u32));
                let got =
                    wasi(host).path_filestat_get(&mut GuestMemory::Unshared(data), p1::Fd::from(fd), flags, path).await;
                finish_stat(data, stat_at, got)
            })
        },
    )?;
    Ok(())
}

/// Writes a preview 1 filestat with fixed times (or returns the call's errno).
fn finish_stat(data: &mut [u8], stat_at: i32, got: Result<p1::Filestat, p1::Error>) -> wasmtime::Result<i32> {
    let stat = match got {
        Ok(stat) => stat,
        Err(e) => return errno(e),
    };
    let mut out = [0u8; 64];
    // dev 0 (not the host's); the inode stays: without a name there is nothing stable to
    // derive it from, and guests use it only to compare files within one run.
    out[8..16].copy_from_slice(&stat.ino.to_le_bytes());
    out[16] = stat.filetype as u8;
    out[24..32].copy_from_slice(&stat.nlink.to_le_bytes());
    out[32..40].copy_from_slice(&stat.size.to_le_bytes());
    for at in [40, 48, 56] {
        out[at..at + 8].copy_from_slice(&FIXED_TIME_NS.to_le_bytes());
    }
    Ok(if put(data, stat_at as u32, &out) { 0 } else { ERRNO_FAULT })
}

fn errno(e: p1::Error) -> wasmtime::Result<i32> {
    match e.downcast() {
        Ok(errno) => Ok(errno as i32),
        Err(trap) => Err(trap),
    }
}

/// One preview 1 directory entry as wasmtime-wasi reported it.
struct Dirent {
    ino: u64,
    kind: u8,
    name: Vec<u8>,
}

/// The whole listing of `fd` in wasmtime-wasi's own encoding, read into a scratch buffer,
/// then `.` and `..` first and the rest sorted by name.
async fn sorted_listing(wasi: &mut WasiP1Ctx, fd: i32) -> wasmtime::Result<Result<Vec<Dirent>, i32>> {
    let mut size = 64 << 10;
    let (scratch, used) = loop {
        let mut scratch = vec![0u8; size];
        let got = wasi
            .fd_readdir(&mut GuestMemory::Unshared(&mut scratch), p1::Fd::from(fd), GuestPtr::new(0), size as u32, 0)
            .await;
        let used = match got {
            Ok(used) => used as usize,
            Err(e) => return Ok(Err(errno(e)?)),
        };
        // A full buffer may have been cut short: read again with room to spare.
        if used < size {
            break (scratch, used);
        }
        if size >= MAX_LISTING_BYTES {
            return Ok(Err(ERRNO_NOMEM));
        }
        size *= 4;
    };
    let mut entries = Vec::new();
    let mut at = 0;
    while at + DIRENT_LEN <= used {
        let h = &scratch[at..at + DIRENT_LEN];
        let namlen = u32::from_le_bytes(h[16..20].try_into().unwrap()) as usize;
        let name = scratch[at + DIRENT_LEN..(at + DIRENT_LEN + namlen).min(used)].to_vec();
        entries.push(Dirent { ino: u64::from_le_bytes(h[8..16].try_into().unwrap()), kind: h[20], name });
        at += DIRENT_LEN + namlen;
    }
    let dots = entries.iter().take_while(|e| e.name == b"." || e.name == b"..").count();
    entries[dots..].sort_by(|a, b| a.name.cmp(&b.name));
    for e in &mut entries[dots..] {
        e.ino = name_inode(&e.name);
    }
    Ok(Ok(entries))
}

/// A stable stand-in for an inode number: FNV-1a of the name, never 0.
fn name_inode(name: &[u8]) -> u64 {
    let h = name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    h.max(1)
}

/// Encodes `entries` from `cookie` on into `buf` the way wasmtime-wasi does (the last entry cut
/// at the end of the buffer); returns the bytes used, or `None` for a buffer outside memory.
fn write_dirents(data: &mut [u8], buf: u32, len: u32, cookie: u64, entries: &[Dirent]) -> Option<u32> {
    let start = buf as usize;
    let end = start.checked_add(len as usize)?;
    let out = data.get_mut(start..end)?;
    let mut at = 0;
    for (i, e) in entries.iter().enumerate().skip(cookie.min(usize::MAX as u64) as usize) {
        let mut header = [0u8; DIRENT_LEN];
        header[0..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        header[8..16].copy_from_slice(&e.ino.to_le_bytes());
        header[16..20].copy_from_slice(&(e.name.len() as u32).to_le_bytes());
        header[20] = e.kind;
        for part in [&header[..], &e.name[..]] {
            let n = part.len().min(out.len() - at);
            out[at..at + n].copy_from_slice(&part[..n]);
            at += n;
            if at == out.len() {
                return Some(len);
            }
        }
    }
    Some(at as u32)
}

fn put(data: &mut [u8], at: u32, bytes: &[u8]) -> bool {
    let at = at as usize;
    match data.get_mut(at..at.saturating_add(bytes.len())) {
        Some(dst) if dst.len() == bytes.len() => {
            dst.copy_from_slice(bytes);
            true
        }
        _ => false,
    }
}

/// The version of `wasi:filesystem` wasmtime-wasi 48 provides; its linker answers imports of
/// every 0.2.x through semver matching, and so do these replacements.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Sorted listings a component has opened but not yet read to the end, by stream handle.
#[derive(Default)]
pub struct Listings(HashMap<u32, std::vec::IntoIter<DirectoryEntry>>);

/// Store data of a component that can run deterministically.
pub(crate) trait HasListings: WasiView {
    fn listings(&mut self) -> &mut Listings;
}

fn fs<T: WasiView>(host: &mut T) -> WasiFilesystemCtxView<'_> {
    host.filesystem()
}

/// Listings kept for streams the guest dropped unread are forgotten once this many are held.
const MAX_LISTINGS: usize = 64;

/// Keeps `entries` for stream `rep`, first forgetting listings of streams no longer open (so
/// a guest that opens and drops listings cannot make the host hold them all).
fn keep_listing<T: HasListings>(host: &mut T, rep: u32, entries: Vec<DirectoryEntry>) {
    if host.listings().0.len() >= MAX_LISTINGS {
        let keys: Vec<u32> = host.listings().0.keys().copied().collect();
        for key in keys {
            let open = host.ctx().table.get_any_mut(key).is_ok_and(|any| any.is::<DirectoryEntryStream>());
            if !open {
                host.listings().0.remove(&key);
            }
        }
    }
    host.listings().0.insert(rep, entries.into_iter());
}

/// Replaces the WASI 0.2 calls that reveal host order and times.
pub(crate) fn shadow_p2<T: HasListings + Send + 'static>(linker: &mut ComponentLinker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async("[method]descriptor.read-directory", |mut store, (fd,): (Resource<p2::Descriptor>,)| {
        Box::new(async move {
            let host = store.data_mut();
            let stream = match HostDescriptor::read_directory(&mut fs(host), fd).await {
                Ok(stream) => stream,
                Err(e) => return Ok((Err(e.downcast()?),)),
            };
            let (mut entries, mut bytes) = (Vec::new(), 0usize);
            loop {
                let borrowed = Resource::<DirectoryEntryStream>::new_borrow(stream.rep());
                match HostDirectoryEntryStream::read_directory_entry(&mut fs(host), borrowed).await {
                    Ok(Some(entry)) => {
                        // The same bound as a preview 1 listing: the host buffers it whole.
                        bytes += entry.name.len() + DIRENT_LEN;
                        if bytes > MAX_LISTING_BYTES {
                            HostDirectoryEntryStream::drop(&mut fs(host), stream)?;
                            return Ok((Err(p2::ErrorCode::InsufficientMemory),));
                        }
                        entries.push(entry);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        HostDirectoryEntryStream::drop(&mut fs(host), stream)?;
                        return Ok((Err(e.downcast()?),));
                    }
                }
            }
            entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            keep_listing(host, stream.rep(), entries);
            Ok((Ok(stream),))
        })
    })?;
    types.func_wrap_async(
        "[method]directory-entry-stream.read-directory-entry",
        |mut store, (stream,): (Resource<DirectoryEntryStream>,)| {
            Box::new(async move {
                let host = store.data_mut();
                let rep = stream.rep();
                // Every stream this guest can hold was made by the replacement above.
                let next = host.listings().0.get_mut(&rep).and_then(Iterator::next);
                if next.is_none() {
                    host.listings().0.remove(&rep);
                }
                Ok((Ok::<_, p2::ErrorCode>(next),))
            })
        },
    )?;
    types.func_wrap_async("[method]descriptor.stat", |mut store, (fd,): (Resource<p2::Descriptor>,)| {
        Box::new(async move {
            let got = HostDescriptor::stat(&mut fs(store.data_mut()), fd).await;
            Ok((match got {
                Ok(stat) => Ok(fixed_times(stat)),
                Err(e) => Err(e.downcast()?),
            },))
        })
    })?;
    types.func_wrap_async(
        "[method]descriptor.stat-at",
        |mut store, (fd, flags, path): (Resource<p2::Descriptor>, p2::PathFlags, String)| {
            Box::new(async move {
                let got = HostDescriptor::stat_at(&mut fs(store.data_mut()), fd, flags, path).await;
                Ok((match got {
                    Ok(stat) => Ok(fixed_times(stat)),
                    Err(e) => Err(e.downcast()?),
                },))
            })
        },
    )?;
    Ok(())
}

fn fixed_times(mut stat: DescriptorStat) -> DescriptorStat {
    let fixed = Some(p2::Datetime { seconds: crate::determinism::WALL_START_SECS, nanoseconds: 0 });
    stat.data_access_timestamp = fixed;
    stat.data_modification_timestamp = fixed;
    stat.status_change_timestamp = fixed;
    stat
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Dirent {
        Dirent { ino: 7, kind: 4, name: name.as_bytes().to_vec() }
    }

    #[test]
    fn dirents_are_encoded_from_the_cookie_and_cut_at_the_buffer_end() {
        let entries = [entry("."), entry(".."), entry("a"), entry("bb")];
        let mut mem = vec![0u8; 200];
        let used = write_dirents(&mut mem, 10, 190, 2, &entries).unwrap();
        assert_eq!(used as usize, 2 * DIRENT_LEN + 3);
        assert_eq!(u64::from_le_bytes(mem[10..18].try_into().unwrap()), 3, "d_next of the 3rd entry");
        assert_eq!(&mem[10 + DIRENT_LEN..11 + DIRENT_LEN], b"a");
        // A buffer that ends inside an entry is filled completely (the guest asks again).
        assert_eq!(write_dirents(&mut mem, 0, 30, 0, &entries), Some(30));
        assert_eq!(write_dirents(&mut mem, 190, 20, 0, &entries), None, "beyond memory");
    }

    struct Host {
        ctx: wasmtime_wasi::WasiCtx,
        table: wasmtime::component::ResourceTable,
        listings: Listings,
    }

    impl WasiView for Host {
        fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
            wasmtime_wasi::WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
        }
    }

    impl HasListings for Host {
        fn listings(&mut self) -> &mut Listings {
            &mut self.listings
        }
    }

    #[test]
    fn listings_of_streams_no_longer_open_are_forgotten() {
        let mut host = Host {
            ctx: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: wasmtime::component::ResourceTable::new(),
            listings: Listings::default(),
        };
        // Something else (not a listing stream) is open in the table at the first handle.
        let other = host.table.push(42u32).unwrap().rep();
        let entry = || DirectoryEntry { type_: p2::DescriptorType::RegularFile, name: "f".into() };
        for rep in 0..MAX_LISTINGS as u32 {
            keep_listing(&mut host, rep + other, vec![entry()]);
        }
        assert_eq!(host.listings.0.len(), MAX_LISTINGS, "kept while below the cap");
        keep_listing(&mut host, 9999, vec![entry()]);
        assert_eq!(host.listings.0.len(), 1, "none of those streams is open: all forgotten but the new one");
        assert!(host.listings.0.contains_key(&9999));
    }

    #[test]
    fn name_inodes_are_stable_and_never_zero() {
        assert_eq!(name_inode(b"x"), name_inode(b"x"));
        assert_ne!(name_inode(b"x"), name_inode(b"y"));
        assert_ne!(name_inode(b""), 0);
    }
}
