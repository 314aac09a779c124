//! Argon2's working memory, taken from the OS for a hashing thread and
//! given back to it when the thread goes idle.
//!
//! Each argon2id hash needs `m_cost` KiB (19 MiB by default) of blocks.
//! Left to the argon2 crate, every hash allocates them and frees them. With
//! glibc that is a leak in all but name: the first free of an mmapped chunk
//! raises malloc's dynamic mmap threshold above it, so every later 19 MiB
//! buffer comes from the heap, where freed buffers stay (the trim threshold
//! rises too) and fragment between other allocations. RSS went from 26 MB
//! to 435 MB after 76 sequential logins and stayed there.
//!
//! So a hashing thread owns one [`HashMemory`]: an anonymous mapping of its
//! own (on Linux with glibc; elsewhere a plain allocation), grown to the
//! largest cost it has needed, reused from job to job while jobs keep
//! coming, and unmapped as soon as the queue is empty. The invariant: the
//! memory hashing holds is at most `--auth-threads` x the largest cost in
//! use, and none of it outlives a burst of logins.

use argon2::Block;

/// One thread's argon2 blocks (see the module docs).
#[derive(Default)]
pub(crate) struct HashMemory {
    region: Option<Region>,
}

impl HashMemory {
    /// No memory yet; the first hash takes it.
    pub(crate) fn new() -> HashMemory {
        HashMemory::default()
    }

    /// At least `count` blocks (zeroed the first time, stale after). `None`
    /// if the OS has no memory to give.
    pub(crate) fn blocks(&mut self, count: usize) -> Option<&mut [Block]> {
        if self.region.as_ref().is_none_or(|r| r.len() < count) {
            // Unmap the old one first: never two at once.
            self.region = None;
            self.region = Some(Region::new(count)?);
        }
        self.region.as_mut().map(Region::as_mut_slice)
    }

    /// Gives the memory back to the OS.
    pub(crate) fn release(&mut self) {
        self.region = None;
    }

    /// Blocks held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.region.as_ref().map_or(0, Region::len)
    }
}

/// An anonymous private mapping of `len` blocks, unmapped on drop.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
struct Region {
    ptr: std::ptr::NonNull<Block>,
    len: usize,
}

// SAFETY: the region is owned memory like a `Box<[Block]>`; nothing else
// refers to it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe impl Send for Region {}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
impl Region {
    fn new(len: usize) -> Option<Region> {
        let bytes = len.checked_mul(Block::SIZE).filter(|&b| b > 0)?;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // Page-aligned, so aligned for `Block` (64 bytes); zero-filled, and
        // all-zero bytes are a valid `Block` (it is an array of u64).
        std::ptr::NonNull::new(ptr.cast()).map(|ptr| Region { ptr, len })
    }

    fn len(&self) -> usize {
        self.len
    }

    fn as_mut_slice(&mut self) -> &mut [Block] {
        // SAFETY: `ptr` points to `len` initialized blocks owned by `self`,
        // borrowed mutably for as long as `self` is.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`, unmapped once; no
        // borrow of it outlives `self`. munmap of a valid mapping does not
        // fail.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len * Block::SIZE);
        }
    }
}

/// Elsewhere, a plain allocation: other allocators give large blocks back
/// to the OS when they are freed.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
struct Region(Vec<Block>);

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
impl Region {
    fn new(len: usize) -> Option<Region> {
        let mut v = Vec::new();
        v.try_reserve_exact(len).ok()?;
        v.resize(len, Block::default());
        Some(Region(v))
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn as_mut_slice(&mut self) -> &mut [Block] {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_grows_to_the_largest_need_and_is_released_on_request() {
        let mut m = HashMemory::new();
        assert_eq!(m.held(), 0);
        assert_eq!(m.blocks(64).map(|b| b.len()), Some(64));
        // A smaller need reuses the same blocks.
        assert_eq!(m.blocks(8).map(|b| b.len()), Some(64));
        assert_eq!(m.blocks(128).map(|b| b.len()), Some(128));
        m.release();
        assert_eq!(m.held(), 0);
    }

    #[test]
    fn fresh_memory_is_writable_throughout() {
        let mut m = HashMemory::new();
        let blocks = m.blocks(300).expect("memory");
        for b in blocks.iter_mut() {
            *b = Block::default();
        }
        assert_eq!(blocks.len(), 300);
    }
}
