use super::*;
use crate::engine::ops::gradcheck::{assert_close, gradcheck, random_values};

/// Random EMA parameters in the paper's terms, (K, H, N) each: α, δ ∈ (0, 1), β, η free.
struct Paper {
    alpha: Vec<f64>,
    delta: Vec<f64>,
    beta: Vec<f64>,
    eta: Vec<f64>,
}

impl Paper {
    fn random(n: usize, seed: u64) -> Self {
        let unit = |s| random_values(n, s).iter().map(|v| 0.5 + 0.45 * v).collect();
        Paper {
            alpha: unit(seed),
            delta: unit(seed + 1),
            beta: random_values(n, seed + 2),
            eta: random_values(n, seed + 3),
        }
    }

    /// The op's parameters: log q = log(1 − α⊙δ), w = η⊙α⊙β.
    fn op_params(&self) -> (Vec<f64>, Vec<f64>) {
        let log_q = (self.alpha.iter().zip(&self.delta))
            .map(|(a, d)| (1.0 - a * d).ln())
            .collect();
        let w = (self.eta.iter().zip(&self.alpha).zip(&self.beta))
            .map(|((e, a), b)| e * a * b)
            .collect();
        (log_q, w)
    }

    /// Eq. 2–3 unrolled: h_t = α⊙β·x_t + (1 − α⊙δ)⊙h_{t−1}, y_t = Σ_n η_n·h_t,n; the
    /// reversed EMA runs from the end and reaches t through h_{t+1} (the reference's shift).
    fn recurrence(
        &self,
        x: &[f64],
        (b, l, h): (usize, usize, usize),
        n: usize,
        bidirectional: bool,
    ) -> Vec<f64> {
        let mut y = vec![0.0; b * l * h];
        let kernels = if bidirectional { 2 } else { 1 };
        for k in 0..kernels {
            for bi in 0..b {
                for hi in 0..h {
                    let mut state = vec![0.0; n];
                    let times: Vec<usize> = if k == 0 {
                        (0..l).collect()
                    } else {
                        (0..l).rev().collect()
                    };
                    for t in times {
                        let at = |i: usize| (k * h + hi) * n + i;
                        if k == 1 {
                            // Output before this step's input: only later positions count.
                            y[(bi * l + t) * h + hi] += (0..n)
                                .map(|i| {
                                    self.eta[at(i)]
                                        * (1.0 - self.alpha[at(i)] * self.delta[at(i)])
                                        * state[i]
                                })
                                .sum::<f64>();
                        }
                        let xt = x[(bi * l + t) * h + hi];
                        for (i, s) in state.iter_mut().enumerate() {
                            let (a, d, be) =
                                (self.alpha[at(i)], self.delta[at(i)], self.beta[at(i)]);
                            *s = a * be * xt + (1.0 - a * d) * *s;
                        }
                        if k == 0 {
                            y[(bi * l + t) * h + hi] +=
                                (0..n).map(|i| self.eta[at(i)] * state[i]).sum::<f64>();
                        }
                    }
                }
            }
        }
        y
    }
}

type Traced3 = Cube<f64, Cpu, OwnedTape<f64, Cpu>>;

fn params(log_q: &[f64], w: &[f64], dims: (usize, usize, usize)) -> EmaParams<f64, Cpu, NoneTape> {
    let dev = Cpu::default();
    EmaParams {
        log_q: dev.tensor_from_vec(log_q.to_vec(), dims),
        w: dev.tensor_from_vec(w.to_vec(), dims),
    }
}

#[test]
fn the_convolution_and_the_scan_equal_the_unrolled_recurrence() {
    let dev = Cpu::default();
    for (shape, n, bidirectional) in [
        ((2, 9, 3), 4, false),
        ((2, 9, 3), 4, true),
        ((1, 40, 2), 2, true),
    ] {
        let (b, l, h) = shape;
        let kernels = if bidirectional { 2 } else { 1 };
        let paper = Paper::random(kernels * h * n, 10);
        let (log_q, w) = paper.op_params();
        let x = random_values(b * l * h, 1);
        let want = paper.recurrence(&x, shape, n, bidirectional);
        let xt = dev.tensor_from_vec(x.clone(), shape);
        let conv = ema_cpu(
            xt.clone(),
            params(&log_q, &w, (kernels, h, n)),
            bidirectional,
        )
        .unwrap();
        assert_close(&conv.as_vec(), &want, 1e-10, "convolution");
        let scan = ema_composed(xt, params(&log_q, &w, (kernels, h, n)), bidirectional);
        assert_close(&scan.as_vec(), &want, 1e-10, "scan");
    }
}

#[test]
fn the_causal_ema_never_reads_the_future() {
    let dev = Cpu::default();
    let (b, l, h, n) = (1, 12, 2, 3);
    let (log_q, w) = Paper::random(h * n, 20).op_params();
    let x = random_values(b * l * h, 2);
    let run = |x: Vec<f64>| {
        ema_cpu(
            dev.tensor_from_vec(x, (b, l, h)),
            params(&log_q, &w, (1, h, n)),
            false,
        )
        .unwrap()
        .as_vec()
    };
    let base = run(x.clone());
    let mut later = x;
    later[7 * h] += 5.0;
    let moved = run(later);
    // Up to the FFT's rounding (a leak from the future would be of order one).
    assert_close(&base[..7 * h], &moved[..7 * h], 1e-12, "positions before 7");
    assert!(
        (base[7 * h] - moved[7 * h]).abs() > 1e-3,
        "position 7 sees its own input"
    );
}

#[test]
fn gradient_matches_finite_differences() {
    for bidirectional in [false, true] {
        let (b, l, h, n) = (2, 7, 2, 3);
        let kernels = if bidirectional { 2 } else { 1 };
        let (log_q, w) = Paper::random(kernels * h * n, 30).op_params();
        gradcheck(
            &[random_values(b * l * h, 4), log_q, w],
            |mut xs| {
                let dims = (kernels, h, n);
                let w: Traced3 = xs.pop().unwrap().reshape_like(&dims);
                let log_q: Traced3 = xs.pop().unwrap().reshape_like(&dims);
                let x: Traced3 = xs.pop().unwrap().reshape_like(&(b, l, h));
                ema_cpu(x, EmaParams { log_q, w }, bidirectional)
                    .unwrap()
                    .reshape_like(&(b * l * h,))
            },
            1e-6,
        );
    }
}

#[test]
fn kernel_gradient_matches_finite_differences() {
    let (h, n, len) = (2, 3, 20);
    let (log_q, w) = Paper::random(2 * h * n, 40).op_params();
    gradcheck(
        &[log_q, w],
        |mut xs| {
            let w: Traced3 = xs.pop().unwrap().reshape_like(&(2, h, n));
            let log_q: Traced3 = xs.pop().unwrap().reshape_like(&(2, h, n));
            ema_kernel_cpu(EmaParams { log_q, w }, len, true)
                .unwrap()
                .reshape_like(&(2 * h * len,))
        },
        1e-6,
    );
}

#[test]
fn fused_and_composed_gradients_agree() {
    let dev = Cpu::default();
    let (b, l, h, n) = (2, 11, 3, 2);
    let (log_q, w) = Paper::random(2 * h * n, 50).op_params();
    let x = dev.tensor_from_vec(random_values(b * l * h, 5), (b, l, h));
    let (lq, wt) = (
        dev.tensor_from_vec(log_q, (2, h, n)),
        dev.tensor_from_vec(w, (2, h, n)),
    );
    let weights = dev.tensor_from_vec(random_values(b * l * h, 6), (b, l, h));
    let grads = |fused: bool| {
        let p = EmaParams {
            log_q: lq.leaky_trace(),
            w: wt.leaky_trace(),
        };
        let y = if fused {
            ema_cpu(x.leaky_trace(), p, true).unwrap()
        } else {
            ema_composed(x.leaky_trace(), p, true)
        };
        let g = (y * weights.clone()).sum().backward();
        [g.get(&x).as_vec(), g.get(&lq).as_vec(), g.get(&wt).as_vec()]
    };
    for (f, c) in grads(true).iter().zip(grads(false).iter()) {
        assert_close(f, c, 1e-9, "gradient");
    }
}
