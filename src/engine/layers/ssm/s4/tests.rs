//! The layer against S4 written out as its discretised recurrence in f64: the convolution
//! kernel of Algorithm 1 (Cauchy kernel, Woodbury identity, inverse FFT, learned C̃) must equal
//! x_k = Ā x_{k−1} + B̄ u_k, y_k = C x_k with C = C̃ (I − Ā^L)⁻¹, for both modes, several
//! channels, both directions and inputs shorter than the kernel.

use num_complex::Complex64;

use super::dense::{bilinear, truncation, with_conjugates};
use super::*;
use crate::engine::layers::ssm::testing::{assert_causal, output};
use crate::engine::ops::with_composed_ops;
use crate::engine::params::DEFAULT_GROUP;

const H: usize = 3;
const KERNEL_LEN: usize = 32;

fn build(
    mode: S4Mode,
    init: S4Init,
    channels: usize,
    bidirectional: bool,
) -> (ParamStore<Cpu>, S4) {
    build_for(mode, init, channels, bidirectional, KERNEL_LEN)
}

fn build_for(
    mode: S4Mode,
    init: S4Init,
    channels: usize,
    bidirectional: bool,
    kernel_len: usize,
) -> (ParamStore<Cpu>, S4) {
    let mut store = ParamStore::new(Cpu::default(), 7);
    let config = S4Config {
        d_state: 8,
        mode,
        init,
        dt_min: 1e-2,
        dt_max: 2e-1,
        channels,
        bidirectional,
        kernel_len,
    };
    let layer = S4::build(&mut Scope::root(&mut store), H, config, DEFAULT_GROUP).unwrap();
    (store, layer)
}

/// The row vector c with c·M = target.
fn solve_row(m: &Matrix, target: &[Complex64]) -> Vec<Complex64> {
    let n = m.n;
    let rhs = Matrix::from_fn(n, |i, j| if j == 0 { target[i] } else { 0.0.into() });
    let x = m.transpose().solve(&rhs).expect("I − Ā^L is invertible");
    (0..n).map(|i| x.at(i, 0)).collect()
}

/// y[b, t, c·H + h] by the recurrence and, for the reversed half, the state after t.
fn reference(store: &ParamStore<Cpu>, s4: &S4, u: &[f32], batch: usize, len: usize) -> Vec<f64> {
    let values = s4.values(store);
    let d: Vec<f64> = store.values(s4.d).iter().map(|&v| v as f64).collect();
    let cfg = &s4.config;
    let (m, channels) = (cfg.modes(), cfg.channels);
    let mut y = vec![0.0; batch * len * channels * H];
    for h in 0..H {
        let system = values.channel(h);
        let discrete = bilinear(&system.lambda, system.p.as_deref(), &system.b, system.dt);
        let correction = truncation(&discrete.a, KERNEL_LEN);
        // C = C̃ (I − Ā^L)⁻¹ for kernel k.
        let readout = |k: usize| {
            let row = (k * H + h) * m;
            solve_row(&correction, &with_conjugates(&values.c[row..row + m]))
        };
        let step = |x: &[Complex64], input: f64| -> Vec<Complex64> {
            discrete
                .a
                .mul_vec(x)
                .iter()
                .zip(&discrete.b)
                .map(|(ax, b)| ax + b * input)
                .collect()
        };
        let read = |c: &[Complex64], x: &[Complex64]| -> f64 {
            let value: Complex64 = c.iter().zip(x).map(|(c, x)| c * x).sum();
            assert!(value.im.abs() < 1e-9 * (1.0 + value.re.abs()), "y is real");
            value.re
        };
        for ch in 0..channels {
            let c_forward = readout(ch);
            let c_backward = cfg.bidirectional.then(|| readout(channels + ch));
            for b in 0..batch {
                let input = |t: usize| u[(b * len + t) * H + h] as f64;
                let out = |t: usize| (b * len + t) * channels * H + ch * H + h;
                let mut x = vec![Complex64::default(); 2 * m];
                for t in 0..len {
                    x = step(&x, input(t));
                    y[out(t)] = read(&c_forward, &x) + d[ch * H + h] * input(t);
                }
                if let Some(c_backward) = &c_backward {
                    let mut x = vec![Complex64::default(); 2 * m];
                    for t in (0..len).rev() {
                        y[out(t)] += read(c_backward, &x);
                        x = step(&x, input(t));
                    }
                }
            }
        }
    }
    y
}

#[test]
fn the_convolution_kernel_is_the_recurrence() {
    let batch = 2;
    for (mode, init, channels, bidirectional) in [
        (S4Mode::Nplr, S4Init::Legs, 1, false),
        (S4Mode::Nplr, S4Init::Legs, 2, true),
        (S4Mode::Diag, S4Init::Legs, 1, true),
        (S4Mode::Diag, S4Init::Lin, 1, false),
        (S4Mode::Diag, S4Init::Inv, 2, false),
    ] {
        let (store, s4) = build(mode, init, channels, bidirectional);
        for len in [KERNEL_LEN, 21] {
            let u: Vec<f32> = (0..batch * len * H)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 5.0)
                .collect();
            let y = output(&store, &s4, &u, (batch, len, H));
            let expected = reference(&store, &s4, &u, batch, len);
            let scale = expected.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            for (i, (a, b)) in y.iter().zip(&expected).enumerate() {
                assert!(
                    (*a as f64 - b).abs() < 1e-4 * (1.0 + scale),
                    "{mode:?} {init:?} c={channels} bidirectional={bidirectional} L={len}, \
                     element {i}: {a} vs {b}"
                );
            }
        }
    }
}

/// C = C̃ (I − Ā^L)⁻¹ for every kernel and channel.
fn uncorrected(store: &ParamStore<Cpu>, s4: &S4) -> Vec<Complex64> {
    let values = s4.values(store);
    let m = s4.config.modes();
    let mut c = Vec::new();
    for k in 0..s4.config.kernels() {
        for h in 0..H {
            let system = values.channel(h);
            let discrete = bilinear(&system.lambda, system.p.as_deref(), &system.b, system.dt);
            let correction = truncation(&discrete.a, s4.config.kernel_len);
            let row = (k * H + h) * m;
            c.extend(
                solve_row(&correction, &with_conjugates(&values.c[row..row + m]))[..m].to_vec(),
            );
        }
    }
    c
}

#[test]
fn the_learned_c_tilde_is_the_random_c_corrected_for_the_kernel_length() {
    // The same seed draws the same C for two kernel lengths; the stored C̃ differ (slow modes
    // remember past L), but undoing each length's correction gives back the same C.
    let (short_store, short) = build_for(S4Mode::Nplr, S4Init::Legs, 2, true, KERNEL_LEN);
    let (long_store, long) = build_for(S4Mode::Nplr, S4Init::Legs, 2, true, 3 * KERNEL_LEN);
    let (short_c, long_c) = (
        uncorrected(&short_store, &short),
        uncorrected(&long_store, &long),
    );
    let stored_difference = short
        .values(&short_store)
        .c
        .iter()
        .zip(&long.values(&long_store).c)
        .fold(0.0f64, |d, (a, b)| d.max((a - b).norm()));
    assert!(
        stored_difference > 1e-2,
        "C̃ must depend on L: {stored_difference}"
    );
    for (i, (a, b)) in short_c.iter().zip(&long_c).enumerate() {
        assert!(
            (a - b).norm() < 1e-4 * (1.0 + b.norm()),
            "C[{i}]: {a} vs {b}"
        );
    }
}

#[test]
fn a_unidirectional_layer_is_causal() {
    let (store, s4) = build(S4Mode::Nplr, S4Init::Legs, 2, false);
    assert_causal(&store, &s4, H);
}

#[test]
fn the_composed_path_computes_the_same_layer() {
    let (batch, len) = (2, 27);
    let u: Vec<f32> = (0..batch * len * H)
        .map(|i| ((i * 13 % 7) as f32 - 3.0) / 3.0)
        .collect();
    for (mode, bidirectional) in [(S4Mode::Nplr, true), (S4Mode::Diag, false)] {
        let (store, s4) = build(mode, S4Init::Legs, 1, bidirectional);
        let fused = output(&store, &s4, &u, (batch, len, H));
        let composed = with_composed_ops(|| output(&store, &s4, &u, (batch, len, H)));
        for (i, (a, b)) in fused.iter().zip(&composed).enumerate() {
            assert!(
                (a - b).abs() < 1e-3 * (1.0 + b.abs()),
                "{mode:?} element {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn nplr_mode_needs_legs() {
    let mut store = ParamStore::new(Cpu::default(), 0);
    let config = S4Config {
        d_state: 8,
        mode: S4Mode::Nplr,
        init: S4Init::Lin,
        dt_min: 1e-3,
        dt_max: 1e-1,
        channels: 1,
        bidirectional: false,
        kernel_len: 16,
    };
    let err = S4::build(&mut Scope::root(&mut store), 2, config, DEFAULT_GROUP).unwrap_err();
    assert!(err.to_string().contains("legs"), "{err}");
}
