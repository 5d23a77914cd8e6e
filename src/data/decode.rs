//! Image decoding to 8-bit grayscale, the form every image task stores.

use std::path::Path;

use super::error::DataError;

/// LRA's grayscale: `0.2989 R + 0.5870 G + 0.1140 B`, rounded half up (in exact integer
/// arithmetic; the weights sum to 0.9999, so white stays 255).
pub(crate) fn gray_from_rgb(r: u8, g: u8, b: u8) -> u8 {
    ((2989 * r as u32 + 5870 * g as u32 + 1140 * b as u32 + 5000) / 10000) as u8
}

/// Decodes a PNG or JPEG into `out` (row-major grayscale), checking it is `side` x `side`.
/// `path` only names the image in errors.
pub fn decode_gray_into(
    bytes: &[u8],
    path: &Path,
    side: usize,
    out: &mut [u8],
) -> Result<(), DataError> {
    let img = image::load_from_memory(bytes).map_err(|e| DataError::image(path, e))?;
    if img.width() as usize != side || img.height() as usize != side {
        return Err(DataError::image(
            path,
            format!(
                "it is {}x{}, expected {side}x{side}",
                img.width(),
                img.height()
            ),
        ));
    }
    match img {
        image::DynamicImage::ImageLuma8(luma) => out.copy_from_slice(luma.as_raw()),
        other => {
            let rgb = other.to_rgb8();
            for (o, p) in out.iter_mut().zip(rgb.pixels()) {
                *o = gray_from_rgb(p[0], p[1], p[2]);
            }
        }
    }
    Ok(())
}

/// The side of a square image, read from its header only.
pub fn square_side(bytes: &[u8], path: &Path) -> Result<usize, DataError> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::image(path, e))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| DataError::image(path, e))?;
    if w != h {
        return Err(DataError::image(
            path,
            format!("it is {w}x{h}, expected a square image"),
        ));
    }
    Ok(w as usize)
}
