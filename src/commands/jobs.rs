//! Several experiments at once (`lra run --jobs N`): small models use a few cores poorly, so
//! on a machine with few cores two one-thread runs finish sooner than the same two runs one
//! after the other on two threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// How a file's experiments share the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Workers {
    /// Experiments in flight at once.
    pub jobs: usize,
    /// Threads each of them computes with.
    pub threads_per_job: usize,
}

impl Workers {
    /// `threads` cores shared by `jobs` workers (never more workers than experiments, never
    /// fewer than one thread each).
    pub fn new(jobs: usize, threads: usize, experiments: usize) -> Self {
        let jobs = jobs.clamp(1, experiments.max(1));
        Workers {
            jobs,
            threads_per_job: (threads / jobs).max(1),
        }
    }
}

/// Runs `work` on each item, `workers.jobs` at a time, each worker in a thread pool of its own.
/// Results come back in the items' order; an item that never started (`stop` was set before a
/// worker reached it) gets `None`.
pub(crate) fn run_all<T: Sync, R: Send>(
    items: &[T],
    workers: Workers,
    stop: &AtomicBool,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let worker = || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers.threads_per_job)
            .build()
            .expect("a worker's thread pool starts");
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(i) else { break };
            let result = pool.install(|| work(item));
            *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.jobs {
            scope.spawn(worker);
        }
    });
    results
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_never_outnumber_experiments_or_get_no_thread() {
        assert_eq!(
            Workers::new(2, 2, 3),
            Workers {
                jobs: 2,
                threads_per_job: 1
            }
        );
        assert_eq!(Workers::new(4, 8, 2).jobs, 2);
        assert_eq!(Workers::new(4, 8, 2).threads_per_job, 4);
        assert_eq!(Workers::new(3, 2, 5).threads_per_job, 1);
        assert_eq!(Workers::new(0, 2, 5).jobs, 1);
    }

    #[test]
    fn every_item_runs_once_in_its_own_pool_and_results_keep_their_order() {
        let items: Vec<usize> = (0..7).collect();
        let workers = Workers::new(3, 6, items.len());
        let results = run_all(&items, workers, &AtomicBool::new(false), |&i| {
            (i * 10, rayon::current_num_threads())
        });
        let values: Vec<usize> = results.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(values, vec![0, 10, 20, 30, 40, 50, 60]);
        assert!(results.iter().all(|r| r.unwrap().1 == 2));
    }

    #[test]
    fn a_stop_leaves_the_remaining_items_unstarted() {
        let items: Vec<usize> = (0..5).collect();
        let stop = AtomicBool::new(false);
        let results = run_all(&items, Workers::new(1, 1, 5), &stop, |&i| {
            if i == 1 {
                stop.store(true, Ordering::SeqCst);
            }
            i
        });
        assert_eq!(results, vec![Some(0), Some(1), None, None, None]);
    }
}
