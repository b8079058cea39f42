//! A hint to the processor to start reading memory a screen will need
//! soon, without waiting for it.
//!
//! A screen of a million entries waits on memory more than it computes: the
//! names it scores, their parts and the entries it returns are scattered
//! over half a gigabyte. Reading one ahead of time with an ordinary load
//! overlaps little, since the load must complete before it retires and the
//! processor stalls once its reorder window fills behind it; a prefetch
//! retires at once, so several misses proceed while the screen works on
//! what is already in cache (docs/ARCHITECTURE.md, "Screening in the
//! node").

/// Start bringing the cache line that holds the start of `value` into every
/// level of the cache. Only a hint: nothing is read into the program, and
/// on targets without the instruction it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_feature = "sse")]
    safe_arch::prefetch_t0(value);
    #[cfg(not(target_feature = "sse"))]
    let _ = value;
}

/// [`prefetch`] of the first of `values`, if any.
#[inline(always)]
pub(crate) fn prefetch_first<T>(values: &[T]) {
    if let Some(first) = values.first() {
        prefetch(first);
    }
}
