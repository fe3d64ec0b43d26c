//! What the tests of modules on their own share.

use std::future::Future;

/// Runs `work` to its end on a current-thread runtime with a `LocalSet`,
/// where modules run (their futures are not `Send`).
pub fn on_one_thread<F: Future>(work: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    tokio::task::LocalSet::new().block_on(&runtime, work)
}
