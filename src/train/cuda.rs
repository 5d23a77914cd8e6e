//! Opening a CUDA device, and what to tell the user when the driver cannot.
//!
//! dfdx reports a failed open as the driver's (or cuBLAS's) error value, such as
//! `Driver(DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"))`. The user
//! needs the reason in words and what to do, so the error's name is looked up here; the lookup
//! works on the error's text, so it is compiled and tested in CPU-only builds too.

#[cfg(any(feature = "cuda", test))]
use super::error::RunError;

/// The first `CUDA_ERROR_…` or `CUBLAS_STATUS_…` name in a rendered CUDA error.
#[cfg(any(feature = "cuda", test))]
fn error_name(rendered: &str) -> Option<&str> {
    let start = ["CUDA_ERROR_", "CUBLAS_STATUS_"]
        .iter()
        .filter_map(|prefix| rendered.find(prefix))
        .min()?;
    let rest = &rendered[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The error for a CUDA build that could not open GPU `ordinal`; `rendered` is the device
/// error in words that hold its name (`Driver(CUDA_ERROR_NO_DEVICE)`).
#[cfg(any(feature = "cuda", test))]
pub(crate) fn unavailable(ordinal: usize, rendered: &str) -> RunError {
    let name = error_name(rendered);
    let (cause, what_to_do) = match name {
        Some("CUDA_ERROR_NO_DEVICE") => (
            "the NVIDIA driver finds no GPU on this machine".to_string(),
            "run on a machine with an NVIDIA GPU, or use `--device cpu`".to_string(),
        ),
        Some("CUDA_ERROR_INVALID_DEVICE") => (
            format!("there is no GPU {ordinal}"),
            "`nvidia-smi` lists the GPUs, numbered from 0 (`cuda` is `cuda:0`); or use `--device cpu`"
                .to_string(),
        ),
        Some("CUDA_ERROR_STUB_LIBRARY") => (
            "the CUDA driver library found is the toolkit's link stub, not an NVIDIA driver".to_string(),
            "install the NVIDIA driver, and take the toolkit's `stubs` folder out of LD_LIBRARY_PATH; or use `--device cpu`"
                .to_string(),
        ),
        Some("CUDA_ERROR_INSUFFICIENT_DRIVER" | "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE") => (
            "the NVIDIA driver is older than the CUDA this lra was built with".to_string(),
            "update the NVIDIA driver, or build lra with the CUDA toolkit the driver supports (`nvidia-smi` shows its CUDA version)"
                .to_string(),
        ),
        Some("CUDA_ERROR_NO_BINARY_FOR_GPU" | "CUDA_ERROR_UNSUPPORTED_PTX_VERSION") => (
            "the GPU kernels were compiled for another GPU or a newer driver".to_string(),
            "rebuild on this machine (or set CUDA_COMPUTE_CAP to its compute capability, `nvidia-smi --query-gpu=compute_cap --format=csv`)"
                .to_string(),
        ),
        Some("CUDA_ERROR_OUT_OF_MEMORY" | "CUBLAS_STATUS_ALLOC_FAILED") => (
            "the GPU has no memory left to start on".to_string(),
            "free the GPU (`nvidia-smi` shows what runs on it), or use another with `--device cuda:N`"
                .to_string(),
        ),
        _ => (
            format!("the CUDA driver failed to open it ({rendered})"),
            "check the GPU and its driver with `nvidia-smi`, or use `--device cpu`".to_string(),
        ),
    };
    RunError::CudaUnavailable {
        ordinal,
        cause,
        what_to_do,
    }
}

/// The error for GPU `ordinal` on a machine whose driver shows `count` GPUs.
#[cfg(any(feature = "cuda", test))]
pub(crate) fn no_such_gpu(ordinal: usize, count: usize) -> RunError {
    RunError::CudaUnavailable {
        ordinal,
        cause: match count {
            0 => "the NVIDIA driver finds no GPU on this machine".to_string(),
            1 => format!("there is no GPU {ordinal}: the driver shows 1, GPU 0"),
            n => format!(
                "there is no GPU {ordinal}: the driver shows {n}, GPUs 0 to {}",
                n - 1
            ),
        },
        what_to_do: "`nvidia-smi` lists the GPUs (`cuda` is `cuda:0`); or use `--device cpu`"
            .to_string(),
    }
}

/// Opens GPU `ordinal` with dfdx's generator seeded by `seed`.
///
/// The driver is asked first whether it starts and how many GPUs it has: cudarc 0.9's
/// `CudaDevice::new` unwraps both answers, so a machine without a GPU would panic inside it
/// (and abort, with a stub library, whose error message cannot even be read).
#[cfg(feature = "cuda")]
pub fn open(ordinal: usize, seed: u64) -> Result<dfdx::tensor::Cuda, RunError> {
    use cudarc::driver::result;
    let driver = |e: result::DriverError| unavailable(ordinal, &format!("Driver({:?})", e.0));
    result::init().map_err(driver)?;
    let count = result::device::get_count().map_err(driver)?;
    if ordinal >= count.max(0) as usize {
        return Err(no_such_gpu(ordinal, count.max(0) as usize));
    }
    dfdx::tensor::Cuda::try_build(ordinal, seed).map_err(|e| unavailable(ordinal, &rendered(&e)))
}

/// The error's name and value. Not `{:?}` of the whole error: cudarc's `DriverError` asks the
/// driver for its message there and panics when the driver cannot answer, which is the case
/// this error is about (a stub library answers every call with an error).
#[cfg(feature = "cuda")]
fn rendered(e: &dfdx::tensor::CudaError) -> String {
    use dfdx::tensor::CudaError;
    match e {
        CudaError::Driver(driver) => format!("Driver({:?})", driver.0),
        CudaError::Blas(blas) => format!("Blas({:?})", blas.0),
        CudaError::Cpu(cpu) => format!("Cpu({cpu:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(rendered: &str) -> (String, String) {
        match unavailable(1, rendered) {
            RunError::CudaUnavailable {
                ordinal: 1,
                cause,
                what_to_do,
            } => (cause, what_to_do),
            other => panic!("{other:?}"),
        }
    }

    /// Renderings as `rendered` gives them, and as dfdx's own `{:?}` does with a driver that
    /// answers (the name comes first either way).
    #[test]
    fn driver_errors_say_what_is_missing_and_what_to_do() {
        let (cause, help) = parts(
            r#"Driver(DriverError(CUDA_ERROR_NO_DEVICE, "no CUDA-capable device is detected"))"#,
        );
        assert_eq!(cause, "the NVIDIA driver finds no GPU on this machine");
        assert!(help.contains("--device cpu"), "{help}");
        let (cause, _) =
            parts(r#"Driver(DriverError(CUDA_ERROR_INVALID_DEVICE, "invalid device ordinal"))"#);
        assert_eq!(cause, "there is no GPU 1");
        let (cause, help) = parts("Driver(CUDA_ERROR_STUB_LIBRARY)");
        assert!(cause.contains("stub"), "{cause}");
        assert!(help.contains("install the NVIDIA driver"), "{help}");
        let (cause, _) = parts(r#"Driver(DriverError(CUDA_ERROR_INSUFFICIENT_DRIVER, "..."))"#);
        assert!(cause.contains("driver is older"), "{cause}");
        let (cause, _) = parts("Blas(CublasError(CUBLAS_STATUS_ALLOC_FAILED))");
        assert!(cause.contains("no memory"), "{cause}");
    }

    #[test]
    fn a_missing_ordinal_names_the_gpus_there_are() {
        let cause = |ordinal, count| match no_such_gpu(ordinal, count) {
            RunError::CudaUnavailable { cause, .. } => cause,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            cause(0, 0),
            "the NVIDIA driver finds no GPU on this machine"
        );
        assert_eq!(cause(1, 1), "there is no GPU 1: the driver shows 1, GPU 0");
        assert_eq!(
            cause(4, 2),
            "there is no GPU 4: the driver shows 2, GPUs 0 to 1"
        );
    }

    #[test]
    fn an_unknown_error_is_shown_as_it_is() {
        let (cause, help) = parts("Driver(DriverError(CUDA_ERROR_UNKNOWN, \"unknown error\"))");
        assert!(cause.contains("CUDA_ERROR_UNKNOWN"), "{cause}");
        assert!(help.contains("nvidia-smi"), "{help}");
    }

    #[test]
    fn the_name_is_read_up_to_its_end() {
        assert_eq!(
            error_name("X(CUDA_ERROR_NO_DEVICE, …)"),
            Some("CUDA_ERROR_NO_DEVICE")
        );
        assert_eq!(
            error_name("CUBLAS_STATUS_NOT_INITIALIZED"),
            Some("CUBLAS_STATUS_NOT_INITIALIZED")
        );
        assert_eq!(error_name("no name here"), None);
    }
}
