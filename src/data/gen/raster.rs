//! The raster operations the Pathfinder generator is built from, matching the libraries the
//! reference used: SciPy's `bytescale` + PIL's Lanczos resize (`scipy.misc.imresize`), PIL's
//! line drawing, OpenCV's dilation, and NumPy's disk masks.

/// A row-major grid of real values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Grid {
    pub(crate) fn zeros(height: usize, width: usize) -> Self {
        Grid {
            height,
            width,
            data: vec![0.0; height * width],
        }
    }

    pub fn at(&self, y: usize, x: usize) -> f32 {
        self.data[y * self.width + x]
    }

    pub fn set(&mut self, y: usize, x: usize, v: f32) {
        self.data[y * self.width + x] = v;
    }

    pub fn contains(&self, y: i64, x: i64) -> bool {
        y >= 0 && x >= 0 && (y as usize) < self.height && (x as usize) < self.width
    }

    /// Element-wise maximum with `other` (same shape).
    pub(crate) fn max_with(&mut self, other: &Grid) {
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a = a.max(b);
        }
    }
}

/// SciPy's `bytescale`: maps [min, max] onto [0, 255], rounding half up.
pub(crate) fn bytescale(values: &[f32]) -> Vec<u8> {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = if max - min == 0.0 { 1.0 } else { max - min };
    let scale = 255.0 / range;
    values
        .iter()
        .map(|&v| (((v - min) * scale).clamp(0.0, 255.0) + 0.5) as u8)
        .collect()
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

fn lanczos3(x: f64) -> f64 {
    if x.abs() < 3.0 {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

/// PIL's resampling coefficients for one axis: for each output position, the first input
/// index and the normalised weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = 3.0 * filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut weights: Vec<f64> = (lo..hi)
                .map(|x| lanczos3((x as f64 - center + 0.5) / filter_scale))
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            (lo, weights)
        })
        .collect()
}

fn round_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// PIL's Lanczos resize of an 8-bit image: horizontal pass, then vertical, each rounded to
/// 8 bits.
pub(crate) fn resize_lanczos(
    src: &[u8],
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<u8> {
    let horizontal = coefficients(width, out_w);
    let mut pass = vec![0u8; height * out_w];
    for y in 0..height {
        let row = &src[y * width..(y + 1) * width];
        for (x, (lo, weights)) in horizontal.iter().enumerate() {
            let v: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, w)| w * row[lo + k] as f64)
                .sum();
            pass[y * out_w + x] = round_u8(v);
        }
    }
    let vertical = coefficients(height, out_h);
    let mut out = vec![0u8; out_h * out_w];
    for (y, (lo, weights)) in vertical.iter().enumerate() {
        for x in 0..out_w {
            let v: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, w)| w * pass[(lo + k) * out_w + x] as f64)
                .sum();
            out[y * out_w + x] = round_u8(v);
        }
    }
    out
}

/// `scipy.misc.imresize(values, (out_h, out_w), interp='lanczos') / 255`.
pub(crate) fn imresize(values: &Grid, out_h: usize, out_w: usize) -> Grid {
    let bytes = bytescale(&values.data);
    let resized = resize_lanczos(&bytes, values.height, values.width, out_h, out_w);
    Grid {
        height: out_h,
        width: out_w,
        data: resized.iter().map(|&b| b as f32 / 255.0).collect(),
    }
}

/// Draws a line of `width` pixels from `(y0, x0)` to `(y1, x1)` with value 1, like PIL's
/// `ImageDraw.line`: a one-pixel line is rasterised Bresenham-style, a wider one is the filled
/// rectangle around the segment.
pub(crate) fn draw_line(grid: &mut Grid, from: (i64, i64), to: (i64, i64), width: usize) {
    let (y0, x0) = from;
    let (y1, x1) = to;
    if width <= 1 {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            if grid.contains(y, x) {
                grid.set(y as usize, x as usize, 1.0);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
        return;
    }
    let (fy, fx) = ((y1 - y0) as f64, (x1 - x0) as f64);
    let length = (fy * fy + fx * fx).sqrt();
    let (uy, ux) = if length > 0.0 {
        (fy / length, fx / length)
    } else {
        (0.0, 1.0)
    };
    let half = width as f64 / 2.0;
    let reach = (length + half).ceil() as i64 + 1;
    for y in (y0.min(y1) - reach)..=(y0.max(y1) + reach) {
        for x in (x0.min(x1) - reach)..=(x0.max(x1) + reach) {
            if !grid.contains(y, x) {
                continue;
            }
            let (py, px) = ((y - y0) as f64, (x - x0) as f64);
            let along = py * uy + px * ux;
            let across = -py * ux + px * uy;
            if along >= -0.5 && along <= length + 0.5 && across.abs() < half {
                grid.set(y as usize, x as usize, 1.0);
            }
        }
    }
}

/// Offsets `(dy, dx)` of a disk of `radius` (NumPy `x² + y² <= r²`).
pub(crate) fn disk(radius: i64) -> Vec<(i64, i64)> {
    let mut offsets = Vec::new();
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= radius * radius {
                offsets.push((dy, dx));
            }
        }
    }
    offsets
}

/// OpenCV's grey dilation: each pixel becomes the maximum of the pixels at `offsets` from it
/// (pixels outside the grid are ignored).
pub(crate) fn dilate(grid: &Grid, offsets: &[(i64, i64)]) -> Grid {
    let mut out = Grid::zeros(grid.height, grid.width);
    let (h, w) = (grid.height as i64, grid.width as i64);
    for y in 0..h {
        for x in 0..w {
            let mut best = f32::NEG_INFINITY;
            for &(dy, dx) in offsets {
                let (sy, sx) = (y + dy, x + dx);
                if sy >= 0 && sx >= 0 && sy < h && sx < w {
                    best = best.max(grid.data[(sy * w + sx) as usize]);
                }
            }
            out.data[(y * w + x) as usize] = if best.is_finite() { best } else { 0.0 };
        }
    }
    out
}

/// The dilated value at one pixel: the maximum of the pixels at `offsets` from it.
pub(crate) fn dilated_at(grid: &Grid, y: i64, x: i64, offsets: &[(i64, i64)]) -> f32 {
    offsets
        .iter()
        .filter(|&&(dy, dx)| grid.contains(y + dy, x + dx))
        .map(|&(dy, dx)| grid.data[((y + dy) as usize) * grid.width + (x + dx) as usize])
        .fold(0.0, f32::max)
}

/// Whether dilating a `height` x `width` grid by `offsets` leaves a pixel none of whose
/// sources lies inside the grid. OpenCV pads a floating-point image with `-DBL_MAX` when it
/// dilates (`morphologyDefaultBorderValue`), so such a pixel comes out as `-DBL_MAX`, not 0:
/// with a one-sided kernel (all offsets below the pixel, say) the bottom row does.
pub(crate) fn dilation_leaves_a_pixel_unreached(
    height: usize,
    width: usize,
    offsets: &[(i64, i64)],
) -> bool {
    if offsets.is_empty() {
        // No source at all: every pixel keeps the padding value.
        return height * width > 0;
    }
    let (h, w) = (height as i64, width as i64);
    let extent = offsets
        .iter()
        .map(|&(dy, dx)| dy.abs().max(dx.abs()))
        .max()
        .unwrap_or(0);
    let unreached = |y: i64, x: i64| {
        offsets
            .iter()
            .all(|&(dy, dx)| !(0..h).contains(&(y + dy)) || !(0..w).contains(&(x + dx)))
    };
    // Only pixels within `extent` of an edge can lose every source; any offset keeps an
    // inner pixel inside the grid.
    let near_edge = |y: i64, x: i64| y < extent || x < extent || y + extent >= h || x + extent >= w;
    (0..h).any(|y| (0..w).any(|x| near_edge(y, x) && unreached(y, x)))
}

/// The pixels above a threshold, and those within a border band, as row bitsets: what a
/// dilation needs to find free pixels without building the dilated grid.
pub(crate) struct Occupancy {
    height: usize,
    width: usize,
    words: usize,
    bits: Vec<u64>,
}

impl Occupancy {
    pub fn new(grid: &Grid, border: usize, threshold: f32) -> Self {
        let (h, w) = (grid.height, grid.width);
        let words = w.div_ceil(64);
        let mut bits = vec![0u64; h * words];
        for y in 0..h {
            let edge_row = y < border || y + border >= h;
            for x in 0..w {
                let edge = edge_row || x < border || x + border >= w;
                if edge || grid.data[y * w + x] > threshold {
                    bits[y * words + x / 64] |= 1 << (x % 64);
                }
            }
        }
        Occupancy {
            height: h,
            width: w,
            words,
            bits,
        }
    }

    /// The pixels whose dilated occupancy is clear, row-major: each kernel offset ORs a
    /// shifted copy of the occupied rows into the blocked set (64 pixels per operation).
    pub(crate) fn free_after_dilation(&self, offsets: &[(i64, i64)]) -> Vec<usize> {
        let (h, w, words) = (self.height, self.width, self.words);
        let mut blocked = vec![0u64; h * words];
        for &(dy, dx) in offsets {
            for y in 0..h {
                let sy = y as i64 + dy;
                if sy < 0 || sy >= h as i64 {
                    continue;
                }
                let source = &self.bits[sy as usize * words..(sy as usize + 1) * words];
                for (k, word) in blocked[y * words..(y + 1) * words].iter_mut().enumerate() {
                    *word |= bits_from(source, (k * 64) as i64 + dx);
                }
            }
        }
        let mut free = Vec::new();
        for y in 0..h {
            for k in 0..words {
                // Walk the clear bits of each word only.
                let mut clear = !blocked[y * words + k];
                while clear != 0 {
                    let x = k * 64 + clear.trailing_zeros() as usize;
                    if x >= w {
                        break;
                    }
                    free.push(y * w + x);
                    clear &= clear - 1;
                }
            }
        }
        free
    }
}

/// The pixels whose value dilated by `offsets` is at most `threshold`, counting pixels within
/// `border` of an edge as occupied.
#[cfg(test)]
pub(crate) fn free_after_dilation(
    grid: &Grid,
    border: usize,
    offsets: &[(i64, i64)],
    threshold: f32,
) -> Vec<usize> {
    Occupancy::new(grid, border, threshold).free_after_dilation(offsets)
}

/// The 64 bits of a row bitset starting at bit `start` (bits outside the row read as 0).
fn bits_from(row: &[u64], start: i64) -> u64 {
    if start < 0 {
        let shift = -start;
        return if shift >= 64 { 0 } else { row[0] << shift };
    }
    let (q, r) = ((start / 64) as usize, (start % 64) as u32);
    let low = row.get(q).map_or(0, |&v| v >> r);
    let high = if r > 0 {
        row.get(q + 1).map_or(0, |&v| v << (64 - r))
    } else {
        0
    };
    low | high
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytescale_spans_the_full_range() {
        assert_eq!(bytescale(&[0.0, 0.5, 2.0]), [0, 64, 255]);
        assert_eq!(bytescale(&[0.0, 0.0]), [0, 0]);
    }

    #[test]
    fn lanczos_keeps_a_constant_image_constant() {
        let src = vec![200u8; 17 * 17];
        assert!(resize_lanczos(&src, 17, 17, 9, 9).iter().all(|&v| v == 200));
    }

    #[test]
    fn one_pixel_lines_join_their_ends() {
        let mut g = Grid::zeros(5, 5);
        draw_line(&mut g, (0, 0), (4, 2), 1);
        let lit: usize = g.data.iter().filter(|&&v| v > 0.0).count();
        assert_eq!(lit, 5);
        assert_eq!((g.at(0, 0), g.at(4, 2)), (1.0, 1.0));
    }

    #[test]
    fn dilation_by_a_disk_grows_a_point() {
        let mut g = Grid::zeros(7, 7);
        g.set(3, 3, 1.0);
        let d = dilate(&g, &disk(1));
        assert_eq!(d.data.iter().filter(|&&v| v > 0.0).count(), 5);
        assert_eq!(dilated_at(&g, 2, 3, &disk(1)), 1.0);
        assert_eq!(dilated_at(&g, 2, 2, &disk(1)), 0.0);
        assert_eq!(free_after_dilation(&g, 0, &disk(1), 0.5).len(), 49 - 5);
        // A one-pixel border is occupied too, and dilated like the rest: of the inner 3x3,
        // the point's cross leaves the 4 corners.
        assert_eq!(free_after_dilation(&g, 1, &disk(1), 0.5), [16, 18, 30, 32]);
    }

    #[test]
    fn a_one_sided_kernel_leaves_edge_pixels_unreached() {
        // Offsets pointing down-right only: the bottom row and right column have no source.
        assert!(dilation_leaves_a_pixel_unreached(8, 8, &[(1, 1), (1, 2)]));
        // Offsets in all four quadrants reach every pixel, and so does the centre itself.
        let quadrants = [(1, 1), (-1, 1), (1, -1), (-1, -1)];
        assert!(!dilation_leaves_a_pixel_unreached(8, 8, &quadrants));
        assert!(!dilation_leaves_a_pixel_unreached(8, 8, &[(0, 0), (2, 3)]));
        // A line through the centre's row but not its column misses the left or right edge.
        assert!(dilation_leaves_a_pixel_unreached(
            8,
            8,
            &[(0, 1), (-1, 1), (1, 1)]
        ));
        assert!(dilation_leaves_a_pixel_unreached(8, 8, &[]));
    }

    #[test]
    fn bitset_dilation_matches_the_plain_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for (h, w) in [(7, 9), (40, 130), (3, 64)] {
            let mut g = Grid::zeros(h, w);
            g.data
                .iter_mut()
                .for_each(|v| *v = if rng.gen_bool(0.05) { 1.0 } else { 0.0 });
            let offsets: Vec<(i64, i64)> = (0..12)
                .map(|_| (rng.gen_range(-3..=3), rng.gen_range(-70..=70)))
                .collect();
            let plain = dilate(&g, &offsets);
            let expected: Vec<usize> = (0..h * w).filter(|&i| plain.data[i] <= 0.5).collect();
            assert_eq!(
                free_after_dilation(&g, 0, &offsets, 0.5),
                expected,
                "{h}x{w}"
            );
        }
    }
}
