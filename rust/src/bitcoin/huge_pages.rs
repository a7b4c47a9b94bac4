//! Ask Linux to back a large vector's spare capacity with transparent huge
//! pages. The parser's columns are fresh memory written once from start to
//! end: on a 100 MB block they are some 90 MB, and faulting them in 4 KiB at
//! a time cost about a quarter of the parse (perf: the fault handler and the
//! page clearing), a 2 MiB page per fault far less. Only the 2 MiB-aligned
//! part of the capacity is advised; without THP in `madvise` or `always`
//! mode (or on other systems) this does nothing.

/// Vectors whose spare capacity is smaller than this are left alone (a huge
/// page needs 2 MiB of aligned room inside it).
const WORTH_IT: usize = 2 << 20;
const HUGE_PAGE: usize = 2 << 20;

pub fn advise_spare_capacity<T>(v: &mut Vec<T>) {
    let spare = v.spare_capacity_mut();
    let bytes = std::mem::size_of_val(spare);
    if bytes < WORTH_IT {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        advise(first, end - first);
    }
}

#[cfg(target_os = "linux")]
fn advise(at: usize, len: usize) {
    // SAFETY: the range lies inside the vector's own allocation and MADV_HUGEPAGE
    // only changes how it is backed, never its contents. A refusal (THP off,
    // an old kernel) leaves 4 KiB pages, so the result is ignored.
    unsafe {
        libc::madvise(at as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_at: usize, _len: usize) {}
