//! Custom ops: fused, multi-threaded CPU kernels plugged into dfdx's tape, each with a
//! composed version built from dfdx's own ops (used on CUDA and as the test oracle).
//!
//! Every op follows the pattern of dfdx 0.13's own ops (`tensor_ops/utilities/ops.rs`):
//! `split_tape` the inputs, run the forward kernel, register a backward closure with
//! `add_backward_op` that accumulates into the inputs' gradients, and `put_tape` on the
//! output. Kernels are generic over [`KernelFloat`] so the finite-difference checks run in f64.

pub mod adam;
pub mod attention;
pub mod cross_entropy;
pub mod ema_output;
pub mod embedding;
pub mod gated_residual;
pub mod gelu;
pub mod glu;
pub(crate) mod kernels;
pub mod laplace;
pub mod layer_norm;
pub(crate) mod layout;
pub mod linear;
pub mod mega_attention;
pub mod mega_gates;
pub mod pointwise;
pub mod product;
pub mod projection;
pub mod residual;
pub mod silu;
pub mod ssm;

mod avx512;
pub mod blas;
pub mod device;
pub mod simd;

#[cfg(test)]
pub(crate) mod gradcheck;

use dfdx::prelude::*;

pub use attention::{AttentionKind, AttentionSpec};
pub use device::{with_composed_ops, EngineDevice};
pub use mega_attention::{AttentionFunction, ChunkSpec};

/// The element types the composed (device-generic) ops run in.
pub trait ComposedFloat:
    Dtype + num_traits::Float + num_traits::FromPrimitive + std::iter::Sum
{
}

impl<E: Dtype + num_traits::Float + num_traits::FromPrimitive + std::iter::Sum> ComposedFloat
    for E
{
}

/// The element types the CPU kernels run in: f32 for training, f64 for gradient checks.
pub trait KernelFloat:
    num_traits::Float
    + num_traits::NumAssign
    + simd::RowOps
    + Dtype
    + Send
    + Sync
    + std::iter::Sum
    + std::fmt::Debug
    + 'static
{
    fn of(x: f64) -> Self;
}

impl KernelFloat for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl KernelFloat for f64 {
    fn of(x: f64) -> Self {
        x
    }
}

/// The values of a CPU tensor, read in place: the tensor is held (an `Arc` clone of its
/// buffer, no copy), so a kernel reads its inputs without a serial copy pass and keeps them
/// alive for its backward pass as cheaply as dfdx's own ops do. Several ops reading one tensor
/// (the q, k and v projections of one input) share its buffer.
pub(crate) struct HostValues<E: Unit> {
    flat: Tensor<(usize,), E, Cpu>,
}

impl<E: Unit> std::ops::Deref for HostValues<E> {
    type Target = [E];

    fn deref(&self) -> &[E] {
        let n = self.flat.shape().0;
        if n == 0 {
            return &[];
        }
        // dfdx's `Index` on a CPU tensor returns a reference into its buffer, bounds-checked
        // by the buffer's own indexing; a one-axis contiguous tensor keeps element i at offset i.
        let first: *const E = &self.flat[[0]];
        let last: *const E = &self.flat[[n - 1]];
        // SAFETY: both pointers come from the same buffer (one `Vec` behind the tensor's
        // `Arc`), so `offset_from` is defined; their distance being n − 1 means the n elements
        // from `first` are that buffer's, initialised, and alive while `self` is borrowed (the
        // tensor holds the buffer; nothing writes to a buffer shared by two handles, since
        // dfdx clones on write).
        unsafe {
            assert_eq!(
                last.offset_from(first),
                (n - 1) as isize,
                "a held tensor is laid out contiguously"
            );
            std::slice::from_raw_parts(first, n)
        }
    }
}

/// The values of a tensor in row-major order, held in place (see [`HostValues`]). Callers pass
/// tensors made contiguous first (`try_contiguous` is free for a contiguous tensor); a
/// reshape of a contiguous tensor shares its buffer.
pub(crate) fn host<S: Shape, E: Dtype, T>(
    t: &Tensor<S, E, Cpu, T>,
) -> Result<HostValues<E>, CpuError> {
    let n = t.shape().num_elements();
    let flat = t.retaped::<NoneTape>().try_reshape_like(&(n,))?;
    Ok(HostValues { flat })
}

/// The two inputs of an element-wise op on tensors of one shape, made contiguous: the tensors
/// without their tapes (for the output's device and the inputs' ghosts), their values held in
/// place, and the merged tape.
pub(crate) struct SameShapePair<S: Shape, E: Dtype, T> {
    pub x: Tensor<S, E, Cpu>,
    pub y: Tensor<S, E, Cpu>,
    pub xs: HostValues<E>,
    pub ys: HostValues<E>,
    pub tape: T,
}

/// Splits x and y for an element-wise op named `op`; panics (naming the op) when their shapes
/// differ, which the layers never ask for.
pub(crate) fn same_shape_pair<S: Shape, E: Dtype, T: Tape<E, Cpu> + Merge<T>>(
    x: Tensor<S, E, Cpu, T>,
    y: Tensor<S, E, Cpu, T>,
    op: &str,
) -> Result<SameShapePair<S, E, T>, CpuError> {
    assert_eq!(
        x.shape().concrete(),
        y.shape().concrete(),
        "{op}: the shapes differ"
    );
    let (x, tx) = x.try_contiguous()?.split_tape();
    let (y, ty) = y.try_contiguous()?.split_tape();
    let (xs, ys) = (host(&x)?, host(&y)?);
    Ok(SameShapePair {
        x,
        y,
        xs,
        ys,
        tape: tx.merge(ty),
    })
}

/// Buffers below this many elements are zeroed on the calling thread.
const PARALLEL_ZEROING: usize = 1 << 15;

/// A zeroed buffer of `n` elements for an op's output or gradient, filled by the thread pool
/// when large: `vec![0; n]` is a serial memset on the calling thread whenever the allocator
/// reuses memory, and the other cores wait for it between two parallel kernels.
pub(crate) fn zeroed<E: num_traits::Zero + Clone + Send + Sync>(n: usize) -> Vec<E> {
    if n < PARALLEL_ZEROING {
        return vec![E::zero(); n];
    }
    let mut v = Vec::with_capacity(n);
    rayon::iter::ParallelExtend::par_extend(&mut v, rayon::iter::repeat_n(E::zero(), n));
    v
}

/// dst += src, element-wise, on the calling thread: for small buffers (parameter gradients)
/// and inside tasks that are already parallel.
pub(crate) fn add_into<E: KernelFloat>(dst: &mut [E], src: &[E]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// The sum of two per-task partials (parameter gradients, reduction terms): the `reduce`
/// step after a parallel `fold` or `map`, as `.reduce(zeros, summed)`.
pub(crate) fn summed<E: KernelFloat>(mut a: Vec<E>, b: Vec<E>) -> Vec<E> {
    add_into(&mut a, &b);
    a
}

/// [`summed`] for pairs of partials.
pub(crate) fn summed_pairs<E: KernelFloat>(
    (a0, a1): (Vec<E>, Vec<E>),
    (b0, b1): (Vec<E>, Vec<E>),
) -> (Vec<E>, Vec<E>) {
    (summed(a0, b0), summed(a1, b1))
}

/// Elements per parallel task of [`add_into_parallel`].
const ADD_CHUNK: usize = 16 * 1024;

/// dst += src over parallel chunks: for whole activations and their gradients.
pub(crate) fn add_into_parallel<E: KernelFloat>(dst: &mut [E], src: &[E]) {
    use rayon::prelude::*;
    dst.par_chunks_mut(ADD_CHUNK)
        .zip(src.par_chunks(ADD_CHUNK))
        .for_each(|(d, s)| add_into(d, s));
}

/// Moves the gradient of `$t` (a tensor or its `ghost()`, which keeps no data alive) out of
/// `$grads`, allocating zeros if nothing flowed into it, so a backward closure can read it
/// while it writes the inputs' gradients. (dfdx's own two-borrow helpers are crate-private,
/// and its ghost type cannot be named outside dfdx, hence a macro.)
///
/// The buffer is not put back: an op's output gradient is complete once its backward runs
/// (consumers run first) and nothing reads it afterwards, so it is freed here rather than at
/// the end of the backward pass, where dfdx would drop it. This keeps the peak memory of a
/// training step near PyTorch's, which frees gradients as it goes. Reading an intermediate
/// gradient of one of these ops after `backward()` therefore gives an empty buffer.
macro_rules! take_grad {
    ($grads:expr, $t:expr) => {
        std::mem::take(&mut **$grads.get_or_alloc_mut($t)?)
    };
}

pub(crate) use take_grad;

/// The gradient buffer of `$t` (a tensor or its ghost), as `&mut [E]` to accumulate into.
macro_rules! grad_of {
    ($grads:expr, $t:expr) => {
        $grads.get_or_alloc_mut($t)?.as_mut_slice()
    };
}

pub(crate) use grad_of;
