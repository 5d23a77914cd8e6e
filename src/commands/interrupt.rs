//! The process's stop flag: Ctrl-C, SIGTERM (what schedulers send before killing), SIGHUP (a
//! closed terminal) and SIGUSR1 (Slurm's warning before a time limit or a preemption, which
//! lra's sbatch scripts forward to the worker) set it; the training loop then saves a
//! checkpoint and stops after the step, and `--resume` (or a requeued batch task) continues
//! the run to the result an uninterrupted one reaches. `lra run` and the batch worker share it.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

/// The flag, with the signal handlers installed on the first call; every later call returns
/// the same flag (a process has one set of handlers).
pub fn flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let handler_flag = flag.clone();
        // Fails only if another handler was set through ctrlc, which nothing else in lra does.
        let _ = ctrlc::set_handler(move || {
            handler_flag.store(true, std::sync::atomic::Ordering::SeqCst)
        });
        #[cfg(unix)]
        {
            // Registering fails only for signals that cannot be caught; USR1 can.
            let _ = signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone());
        }
        flag
    })
    .clone()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn sigusr1_sets_the_flag_instead_of_killing_the_process() {
        let flag = flag();
        assert!(Arc::ptr_eq(&flag, &super::flag()), "one flag per process");
        // SIGUSR1's default action would end the test process; with the handler it sets the flag.
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR1).unwrap();
        assert!(flag.load(Ordering::SeqCst));
    }
}
