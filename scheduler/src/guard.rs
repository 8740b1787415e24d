//! Containing bugs: a panic while a request (or a cross-shard job) runs
//! fails only that request; a panic anywhere else stops the process.
//!
//! A shard whose thread died would leave the node half alive: its sockets
//! still bound, its data unreachable. So the node installs
//! [`install_panic_hook`], which aborts the process on any panic outside a
//! guarded section (a supervisor restarts it and the commitlog replays),
//! while [`guarded`] marks the code whose panics are caught and turned
//! into an error for one caller. The mark is held only while the guarded
//! future is being polled, never across an await, so other tasks of the
//! shard are not covered by it.
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static GUARDED_POLLS: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is polling a guarded future right now.
pub fn in_guarded_section() -> bool {
    GUARDED_POLLS.with(|depth| depth.get() > 0)
}

/// What a guarded future yields: its output, or the panic's message.
pub type GuardedResult<T> = Result<T, String>;

/// Runs `future`; a panic inside it becomes `Err(message)`.
pub fn guarded<F: Future>(future: F) -> Guarded<F> {
    Guarded { inner: future }
}

/// See [`guarded`].
pub struct Guarded<F> {
    inner: F,
}

impl<F: Future> Future for Guarded<F> {
    type Output = GuardedResult<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `self`, and `Guarded` has no Drop impl or Unpin impl of its own.
        let inner = unsafe { self.map_unchecked_mut(|g| &mut g.inner) };
        GUARDED_POLLS.with(|depth| depth.set(depth.get() + 1));
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        GUARDED_POLLS.with(|depth| depth.set(depth.get() - 1));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic_message(panic.as_ref()))),
        }
    }
}

/// The text of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Makes a panic outside a guarded section abort the process (after the
/// usual report), so a shard can never die alone.
pub fn install_panic_hook() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        if !in_guarded_section() {
            eprintln!("tessera: fatal panic outside a request; aborting the process");
            std::process::abort();
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_guarded_future_is_an_error_and_the_mark_is_released() {
        let result = futures_lite::future::block_on(guarded(async {
            assert!(in_guarded_section());
            panic!("boom");
        }));
        assert_eq!(result, Err("boom".to_string()));
        assert!(!in_guarded_section());
        let fine = futures_lite::future::block_on(guarded(async { 7 }));
        assert_eq!(fine, Ok(7));
    }
}
