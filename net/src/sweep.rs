//! The sweep: wakes the connections whose deadline comes near.
//!
//! A connection's reader waits for a deadline of the hub's (the idle ping,
//! the auth deadline, a frame's completion, a rate-limit pause) with a timer
//! of its own only once it is [`NEAR`]: an idle connection's deadline is its
//! idle ping, tens of seconds away, and a timer per connection was ~110
//! bytes of every idle connection (the timer in its task, its entry in the
//! reactor's map; docs/PERFORMANCE.md, "Fourth step"). Instead, one task
//! visits every connection every [`ROUND`], a slice of them per step (a
//! short lock hold each), asks the hub for its deadline and wakes the task
//! if that is within [`NEAR`]; the reader then arms its timer, so deadlines
//! keep their precision as long as `ROUND` is shorter than `NEAR`.

use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;

use crate::shared::Shared;

/// How near a deadline is waited for with a timer of the reader's own.
pub(crate) const NEAR: Duration = Duration::from_secs(1);
/// How often the sweep visits each connection (less than [`NEAR`]).
const ROUND: Duration = Duration::from_millis(500);
/// Steps per round: each visits this fraction of the connection slots.
const STEPS: u32 = 8;

/// Runs the sweep until cancelled.
pub(crate) async fn sweep(shared: Arc<Shared>) {
    let mut next = 0;
    loop {
        Timer::after(ROUND / STEPS).await;
        let near = shared.with_core(|core, now| {
            let count = core.slots().div_ceil(STEPS as usize).max(1);
            core.near_deadlines(now + NEAR, &mut next, count)
        });
        for waker in near {
            waker.wake();
        }
    }
}
