//! `lra data show`: a PNG grid of image samples, or text samples decoded from their ids.

use std::path::Path;

use super::error::DataError;
use super::store::{Inputs, Split};
use super::vocab::{Vocab, VocabKind};

/// Pixels between grid cells.
const GAP: usize = 2;
/// Characters of a text sample printed.
const TEXT_PREVIEW: usize = 300;

/// `n` positions spread evenly over a split of `len` examples, so a class-ordered release
/// still shows every class.
pub fn spread(len: usize, n: usize) -> Vec<usize> {
    let n = n.min(len);
    (0..n).map(|k| k * len / n).collect()
}

/// Writes `n` images spread over `split` as a grid PNG, each scaled up `zoom` times.
/// Returns their labels in grid order.
pub(crate) fn image_grid(
    split: &Split,
    n: usize,
    zoom: usize,
    out: &Path,
) -> Result<Vec<u8>, DataError> {
    let Inputs::Pixels(pixels) = &split.examples.inputs else {
        return Err(DataError::Config {
            reason: "this task has no images to draw".into(),
            hint: "`lra data show` prints text samples when --out is left out".into(),
        });
    };
    let n = n.min(split.len()).max(1);
    let side = (pixels.per_image as f64).sqrt() as usize;
    let cell = side * zoom;
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (width, height) = (cols * (cell + GAP) + GAP, rows * (cell + GAP) + GAP);
    // A mid-grey background separates the cells of dark images.
    let mut canvas = vec![96u8; width * height];
    let positions = spread(split.len(), n);
    for (k, &position) in positions.iter().enumerate() {
        let image = pixels.get(split.indices[position]);
        let (x0, y0) = (
            GAP + (k % cols) * (cell + GAP),
            GAP + (k / cols) * (cell + GAP),
        );
        for y in 0..cell {
            for x in 0..cell {
                canvas[(y0 + y) * width + x0 + x] = image[(y / zoom) * side + x / zoom];
            }
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DataError::write(dir, e))?;
    }
    image::GrayImage::from_raw(width as u32, height as u32, canvas)
        .expect("canvas size matches")
        .save(out)
        .map_err(|e| DataError::write(out, e))?;
    Ok(positions.iter().map(|&p| split.label(p)).collect())
}

/// The text of token ids (without padding or `<eos>`).
pub fn decode(vocab: &Vocab, ids: &[u16]) -> String {
    let tokens = ids
        .iter()
        .filter(|&&id| id as u32 != vocab.eos() && id as u32 != vocab.pad());
    match vocab.kind {
        VocabKind::Byte => {
            let bytes: Vec<u8> = tokens
                .map(|&id| (id as u32).saturating_sub(4) as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        VocabKind::Char => tokens
            .map(|&id| vocab.token(id as u32).unwrap_or("?"))
            .collect(),
        VocabKind::ListOps | VocabKind::Pixel => tokens
            .map(|&id| vocab.token(id as u32).unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn preview(text: &str) -> String {
    let mut short: String = text.chars().take(TEXT_PREVIEW).collect();
    if text.chars().count() > TEXT_PREVIEW {
        short.push_str(" ...");
    }
    short
}

/// `n` examples spread over a token split as printable lines.
pub(crate) fn text_samples(split: &Split, vocab: &Vocab, n: usize) -> Vec<String> {
    spread(split.len(), n)
        .into_iter()
        .map(|k| {
            let i = split.indices[k];
            let label = split.label(k);
            match &split.examples.inputs {
                Inputs::Tokens(seqs) => {
                    format!("[{label}] {}", preview(&decode(vocab, seqs.get(i))))
                }
                Inputs::Pairs(a, b) => format!(
                    "[{label}] {}\n    <-> {}",
                    preview(&decode(vocab, a.get(i))),
                    preview(&decode(vocab, b.get(i)))
                ),
                Inputs::Pixels(p) => format!("[{label}] image of {} pixels", p.per_image),
            }
        })
        .collect()
}
