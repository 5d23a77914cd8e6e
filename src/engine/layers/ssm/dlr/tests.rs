//! The layer against DLR written out as its recurrence in f64 from its parameters: the
//! parametrisation of λ, the parameter layout, the bidirectional form and causality.

use num_complex::Complex64;

use super::*;
use crate::engine::layers::ssm::testing::{assert_causal, assert_matches_reference, output};
use crate::engine::params::{ParamStore, DEFAULT_GROUP};

const H: usize = 3;

fn build(channels: usize, bidirectional: bool) -> (ParamStore<Cpu>, Dlr) {
    let mut store = ParamStore::new(Cpu::default(), 11);
    let config = DlrConfig {
        d_state: 5,
        dt_min: 1e-2,
        dt_max: 5e-1,
        channels,
        bidirectional,
    };
    let layer = Dlr::build(&mut Scope::root(&mut store), H, config, DEFAULT_GROUP).unwrap();
    (store, layer)
}

/// y[b, t, c·H + h] by x_t = λ x_{t−1} + u_t, y_t = Re(W x_t) + D u_t and, for the reversed
/// half, the state after t (exclusive).
fn reference(store: &ParamStore<Cpu>, dlr: &Dlr, u: &[f32], batch: usize, len: usize) -> Vec<f64> {
    let value = |id| -> Vec<f64> { store.values(id).iter().map(|&v| v as f64).collect() };
    let (rho, theta, w, d) = (
        value(dlr.lambda_rho),
        value(dlr.lambda_theta),
        value(dlr.w),
        value(dlr.d),
    );
    let cfg = &dlr.config;
    let (n, channels) = (cfg.d_state, cfg.channels);
    let lambda: Vec<Complex64> = (0..n)
        .map(|m| Complex64::new(-rho[m] * rho[m], theta[m]).exp())
        .collect();
    let half = cfg.kernels() * H * n;
    let weight = |k: usize, h: usize, m: usize| {
        let i = (k * H + h) * n + m;
        Complex64::new(w[i], w[half + i])
    };
    let mut y = vec![0.0; batch * len * channels * H];
    for b in 0..batch {
        for ch in 0..channels {
            for h in 0..H {
                let input = |t: usize| u[(b * len + t) * H + h] as f64;
                let out = |t: usize| (b * len + t) * channels * H + ch * H + h;
                let mut state = vec![Complex64::default(); n];
                for t in 0..len {
                    let mut acc = d[ch * H + h] * input(t);
                    for m in 0..n {
                        state[m] = lambda[m] * state[m] + input(t);
                        acc += (weight(ch, h, m) * state[m]).re;
                    }
                    y[out(t)] = acc;
                }
                if cfg.bidirectional {
                    let mut state = vec![Complex64::default(); n];
                    for t in (0..len).rev() {
                        for m in 0..n {
                            y[out(t)] += (weight(channels + ch, h, m) * state[m]).re;
                            state[m] = lambda[m] * state[m] + input(t);
                        }
                    }
                }
            }
        }
    }
    y
}

#[test]
fn the_convolution_is_the_recurrence() {
    let (batch, len) = (2, 23);
    let u: Vec<f32> = (0..batch * len * H)
        .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
        .collect();
    for (channels, bidirectional) in [(1, false), (2, true), (1, true)] {
        let (store, dlr) = build(channels, bidirectional);
        let y = output(&store, &dlr, &u, (batch, len, H));
        let expected = reference(&store, &dlr, &u, batch, len);
        let case = format!("c={channels} bidirectional={bidirectional}");
        assert_matches_reference(&y, &expected, &case);
    }
}

#[test]
fn initial_lambda_spreads_over_the_circle_and_decays_at_the_configured_rates() {
    let (store, dlr) = build(1, false);
    let (rho, theta) = (store.values(dlr.lambda_rho), store.values(dlr.lambda_theta));
    for (m, (&r, &t)) in rho.iter().zip(&theta).enumerate() {
        let dt = 2.0 * r * r;
        assert!(
            dt > 1e-2 * (1.0 - 1e-5) && dt < 5e-1 * (1.0 + 1e-5),
            "Δ {dt}"
        );
        assert!((t - std::f32::consts::TAU * m as f32 / 5.0).abs() < 1e-6);
    }
}

#[test]
fn a_unidirectional_layer_is_causal() {
    let (store, dlr) = build(2, false);
    assert_causal(&store, &dlr, H);
}
