//! One sequence's large recurrent product shared between two cores.
//!
//! A 256-unit LSTM's recurrent kernel is 1 MiB: more than one core's L2 cache,
//! so a single generation streams it from L3 at every step and waits on that
//! rather than on the arithmetic. Split by output columns, each core reads
//! half of it, which nearly stays in its own L2. Every column is summed by the
//! same kernel in the same order as the whole product, so the bits (and every
//! pinned song) stay the same.
//!
//! One helper thread serves the whole process, one product at a time: a
//! product that finds it busy (another generation is splitting) or runs on a
//! thread that already has a core of its own in a batch of lanes is computed
//! whole where it is. Steps come a few microseconds apart, far less than it
//! takes to wake a sleeping thread, so the helper spins between them for a
//! short while ([`SPIN`]) and only then parks: it costs a core only while a
//! generation runs, as the variations that already share the cores do.
//!
//! A process that also draws a UI and plays audio (the app) splits only
//! where that leaves them a core ([`leave_a_core_for_the_ui`]): on two cores
//! a spinning helper, the generation and the UI thread would take turns and
//! a slider's generation came 25% slower, not faster.
//!
//! The caller never waits on a helper that has not started: when its own
//! half is done and the helper has not taken the other (no core was free
//! for it, say the UI thread was drawing), the caller takes it back and
//! computes it too. So with more threads than cores a generation is no
//! slower than unsplit.

use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::native::Dense;

/// How long the helper waits for the next product before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// Products whose panels take at least this many bytes are split: below it
/// the weights fit one core's L2 cache and the hand-over costs more than it
/// saves.
const SPLIT_FROM_BYTES: usize = 512 * 1024;

/// Whether one sequence's products with `dense` are large enough to split
/// (whether the cores allow it is asked at each product).
pub(super) fn worth_splitting(dense: &Dense) -> bool {
    dense.panel_bytes() >= SPLIT_FROM_BYTES && dense.panel_pairs() >= 2
}

/// Cores a split needs: two, or three once the process has a UI.
static CORES_NEEDED: AtomicUsize = AtomicUsize::new(2);

/// From now on, splits only where a core is left for the UI and the audio.
pub(crate) fn leave_a_core_for_the_ui() {
    CORES_NEEDED.store(3, Ordering::Relaxed);
}

fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

thread_local! {
    /// Set on threads that already share the cores with others (a lane of
    /// variations): their products stay whole.
    static ALONE_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's products kept whole: for work that already
/// spreads over every core.
pub(crate) fn without_splitting<T>(f: impl FnOnce() -> T) -> T {
    let before = ALONE_HERE.with(|alone| alone.replace(true));
    let result = f();
    ALONE_HERE.with(|alone| alone.set(before));
    result
}

/// `out = bias + x W` for one sequence `x`: the last half of the columns on
/// the helper thread when it is free, else everything here. The same bits
/// either way.
pub(super) fn apply_one(dense: &Arc<Dense>, x: &[f32], out: &mut [f32]) {
    let helper = if ALONE_HERE.with(Cell::get)
        || cores() < CORES_NEEDED.load(Ordering::Relaxed)
        || !dense.panels_fit(x)
    {
        None
    } else {
        helper().filter(|helper| helper.claim())
    };
    match helper {
        Some(helper) => {
            helper.apply(dense, x, out);
            helper.busy.store(false, Ordering::Release);
        }
        None => dense.apply_many(x, out),
    }
}

/// [`apply_one`] on the helper whatever the cores (waiting while another
/// product holds it), for tests of the hand-over; false if no thread starts.
#[cfg(test)]
pub(super) fn apply_on_the_helper(dense: &Arc<Dense>, x: &[f32], out: &mut [f32]) -> bool {
    let Some(helper) = helper() else {
        return false;
    };
    while !helper.claim() {
        std::thread::yield_now();
    }
    helper.apply(dense, x, out);
    helper.busy.store(false, Ordering::Release);
    true
}

/// The process's helper, started on first use (none if no thread starts).
fn helper() -> Option<&'static Helper> {
    static HELPER: OnceLock<Option<Helper>> = OnceLock::new();
    HELPER.get_or_init(Helper::start).as_ref()
}

struct Helper {
    /// Held by the product being split.
    busy: AtomicBool,
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

/// What the caller and the helper share: the product asked for, and
/// counters that hand it over and back.
struct Shared {
    /// Products asked for so far.
    posted: AtomicU64,
    /// The last product someone took on: the helper when it starts one, or
    /// the caller when it takes the helper's half back.
    taken: AtomicU64,
    /// Products the helper has finished.
    done: AtomicU64,
    request: Mutex<Request>,
}

#[derive(Default)]
struct Request {
    dense: Option<Arc<Dense>>,
    input: Vec<f32>,
    pairs: Range<usize>,
    /// A whole output row; the helper writes the columns of its pairs.
    output: Vec<f32>,
}

impl Shared {
    fn request(&self) -> MutexGuard<'_, Request> {
        // Each request is written whole before it is read, so a panic
        // elsewhere cannot leave a half-valid one behind.
        self.request.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Helper {
    fn start() -> Option<Self> {
        let shared = Arc::new(Shared {
            posted: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            done: AtomicU64::new(0),
            request: Mutex::new(Request::default()),
        });
        let thread = std::thread::Builder::new()
            .name("cadenza-split-product".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || serve(&shared)
            })
            .ok()?;
        Some(Self {
            busy: AtomicBool::new(false),
            shared,
            thread,
        })
    }

    fn claim(&self) -> bool {
        !self.thread.is_finished()
            && self
                .busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Splits the product; the caller holds `busy`.
    fn apply(&self, dense: &Arc<Dense>, x: &[f32], out: &mut [f32]) {
        let pairs = dense.panel_pairs();
        let split = pairs / 2;
        {
            let mut request = self.shared.request();
            // The helper lets go of the weights after each product, so a
            // model the app has closed is not kept alive here.
            request.dense = Some(Arc::clone(dense));
            request.input.clear();
            request.input.extend_from_slice(x);
            request.pairs = split..pairs;
            request.output.resize(dense.d_output(), 0.0);
        }
        let ticket = self.shared.posted.fetch_add(1, Ordering::Release) + 1;
        self.thread.thread().unpark();
        dense.apply_one_pairs(x, 0..split, out);
        if self
            .shared
            .taken
            .compare_exchange(ticket - 1, ticket, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // The helper has not started: its half is done here, and the
            // weights are let go as the helper would have.
            dense.apply_one_pairs(x, split..pairs, out);
            self.shared.request().dense = None;
            return;
        }
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) != ticket {
            if self.thread.is_finished() {
                // The helper is gone (its arithmetic cannot panic, but a
                // generation must never hang on it): its half is done here.
                dense.apply_one_pairs(x, split..pairs, out);
                return;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let columns = dense.pair_columns(split..pairs);
        out[columns.clone()].copy_from_slice(&self.shared.request().output[columns]);
    }
}

/// The helper's loop: waits for each posted product and computes its pairs
/// into the request's output row.
fn serve(shared: &Shared) {
    let mut input = Vec::new();
    let mut output = Vec::new();
    let mut seen = 0u64;
    loop {
        let waiting = Instant::now();
        let mut spins = 0u32;
        loop {
            let posted = shared.posted.load(Ordering::Acquire);
            if posted != seen {
                seen = posted;
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && waiting.elapsed() >= SPIN {
                std::thread::park();
            } else {
                std::hint::spin_loop();
            }
        }
        if shared
            .taken
            .compare_exchange(seen - 1, seen, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // The caller took this one back.
            continue;
        }
        let (dense, pairs) = {
            let mut request = shared.request();
            input.clone_from(&request.input);
            (request.dense.take(), request.pairs.clone())
        };
        if let Some(dense) = dense {
            output.resize(dense.d_output(), 0.0);
            dense.apply_one_pairs(&input, pairs.clone(), &mut output);
            let columns = dense.pair_columns(pairs);
            shared.request().output[columns.clone()].copy_from_slice(&output[columns]);
        }
        shared.done.store(seen, Ordering::Release);
    }
}
