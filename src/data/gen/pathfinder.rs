//! The Pathfinder generator of Linsley et al. (2018, `snakes2.py`) with LRA's parameters,
//! re-implemented. Two target snakes grow from seeds `seed_distance` apart, paddle by paddle
//! under a continuity prior; distractor snakes fill the space; two circular markers sit at
//! the ends of one snake (label 1) or of different snakes (label 0). Everything is drawn at
//! an antialias scale and downsampled with Lanczos, as the reference does.
//!
//! Besides LRA's four resolutions there is a 16x16 one of lra's own (LRA defines none below
//! 32): the 32x32 settings with the seed distance and distractor budget scaled to the smaller
//! canvas, for quick experiments such as the quickstart.

use std::collections::HashMap;
use std::f64::consts::PI;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::raster::{
    bytescale, dilate, dilated_at, dilation_leaves_a_pixel_unreached, disk, draw_line, imresize,
    Grid, Occupancy,
};
use crate::data::error::DataError;
use crate::spec::Difficulty;

/// The reference's retry limits (`snakes2_wrapper.py` defaults).
const MAX_PADDLE_RETRIAL: usize = 2;
const MAX_DISTRACTOR_RETRIAL: usize = 4;
/// Attempts at placing the two target snakes before the settings are deemed impossible.
const MAX_TARGET_ATTEMPTS: usize = 100_000;
/// Distractors stop once less than this share of the canvas is free.
const STOP_WITH_AVAILABILITY: f64 = 0.01;
/// Seed positions must have a dilated mask value at most this (`ceil(mask - 0.3) == 0`).
const FREE_BELOW: f32 = 0.3;

#[derive(Debug, Clone, PartialEq)]
pub struct PathfinderParams {
    pub resolution: usize,
    pub padding: usize,
    pub paddle_length: usize,
    pub paddle_thickness: f64,
    /// One margin is drawn per image.
    pub paddle_margins: Vec<usize>,
    pub marker_radius: f64,
    pub contour_length: usize,
    pub antialias: usize,
    pub seed_distance: usize,
    pub continuity: f64,
    pub distractor_length: usize,
    pub distractor_snakes: usize,
    pub snake_contrasts: Vec<f64>,
    pub paddle_contrasts: Vec<f64>,
}

/// One resolution's settings. LRA documents them in `lra_benchmarks/data/pathfinder.py`, in the
/// docstrings of its `Pathfinder32`, `Pathfinder64`, `Pathfinder128` and `Pathfinder256`
/// builders, as the lines it changed in `snakes2_wrapper.py`; what a builder leaves out keeps
/// the default of that wrapper's `Args` (padding 22, seed distance 27, paddle length 5, paddle
/// contrasts `[1.]`). Every builder sets `antialias_scale = 2` last and leaves single-paddle
/// distractors off (the wrapper script sets `use_single_paddles = False`).
struct LraSettings {
    resolution: usize,
    /// The longest contours (highest difficulty) the canvas has room for.
    padding: usize,
    paddle_length: usize,
    paddle_thickness: f64,
    paddle_margins: &'static [usize],
    marker_radius: f64,
    seed_distance: usize,
    continuity: f64,
    /// The numerator of `num_distractor_snakes = budget / distractor_length`.
    distractor_budget: usize,
    snake_contrast: f64,
    paddle_contrast: f64,
}

const LRA_SETTINGS: [LraSettings; 5] = [
    // Not LRA's: the 32x32 settings on a 16x16 canvas. Seeds 3 pixels apart (7 leaves the
    // second target snake no room) and a distractor budget of 4 (one two-paddle distractor
    // for easy contours), so the image is about as full as LRA's 32x32 one. Only easy
    // (six-paddle) contours fit: longer target snakes find no room on this canvas.
    LraSettings {
        resolution: 16,
        padding: 1,
        paddle_length: 2,
        paddle_thickness: 0.5,
        paddle_margins: &[1],
        marker_radius: 1.5,
        seed_distance: 3,
        continuity: 1.0,
        distractor_budget: 4,
        snake_contrast: 2.0,
        paddle_contrast: 0.75,
    },
    LraSettings {
        resolution: 32,
        padding: 1,
        paddle_length: 2,
        paddle_thickness: 0.5,
        paddle_margins: &[1],
        marker_radius: 1.5,
        seed_distance: 7,
        continuity: 1.0,
        distractor_budget: 20,
        snake_contrast: 2.0,
        paddle_contrast: 0.75,
    },
    LraSettings {
        resolution: 64,
        padding: 1,
        paddle_length: 5,
        paddle_thickness: 1.0,
        paddle_margins: &[1],
        marker_radius: 2.5,
        seed_distance: 12,
        continuity: 1.8,
        distractor_budget: 22,
        snake_contrast: 0.8,
        paddle_contrast: 1.0,
    },
    LraSettings {
        resolution: 128,
        padding: 1,
        paddle_length: 5,
        paddle_thickness: 1.5,
        paddle_margins: &[2, 3],
        marker_radius: 3.0,
        seed_distance: 20,
        continuity: 1.8,
        distractor_budget: 35,
        snake_contrast: 0.9,
        paddle_contrast: 1.0,
    },
    LraSettings {
        resolution: 256,
        padding: 22,
        paddle_length: 5,
        paddle_thickness: 2.0,
        paddle_margins: &[3],
        marker_radius: 5.0,
        seed_distance: 27,
        continuity: 1.8,
        distractor_budget: 30,
        snake_contrast: 1.0,
        paddle_contrast: 1.0,
    },
];

impl PathfinderParams {
    /// LRA's settings for `resolution` (see [`LraSettings`]). Difficulty sets the contour
    /// length (6, 9, 14: the `curv_baseline`, `curv_contour_length_9` and `_14` folders), and
    /// with it the distractor length `contour_length / 3` and count `budget / distractor
    /// length`, both integer divisions as the Python 2 wrapper computed them (LRA's 32x32
    /// builder writes `//`).
    pub fn lra(resolution: usize, difficulty: Difficulty) -> Result<Self, DataError> {
        let s = LRA_SETTINGS
            .iter()
            .find(|s| s.resolution == resolution)
            .ok_or_else(|| DataError::Config {
                reason: format!("Pathfinder resolution {resolution}"),
                hint: "use 16, 32, 64, 128 or 256".into(),
            })?;
        let hardest = Difficulty::hardest_at(resolution).unwrap_or(Difficulty::Easy);
        if difficulty.contour_length() > hardest.contour_length() {
            return Err(DataError::Config {
                reason: format!(
                    "{} Pathfinder contours at {resolution}x{resolution}: the target snakes do not fit",
                    difficulty.name()
                ),
                hint: format!(
                    "use difficulty {} or a resolution of 32 or more",
                    hardest.name()
                ),
            });
        }
        let contour_length = difficulty.contour_length();
        let distractor_length = contour_length / 3;
        Ok(PathfinderParams {
            resolution,
            padding: s.padding,
            paddle_length: s.paddle_length,
            paddle_thickness: s.paddle_thickness,
            paddle_margins: s.paddle_margins.to_vec(),
            marker_radius: s.marker_radius,
            contour_length,
            antialias: 2,
            seed_distance: s.seed_distance,
            continuity: s.continuity,
            distractor_length,
            distractor_snakes: s.distractor_budget / distractor_length,
            snake_contrasts: vec![s.snake_contrast],
            paddle_contrasts: vec![s.paddle_contrast],
        })
    }

    /// Half the side of a paddle's stencil.
    fn reach(&self, margin: usize) -> i64 {
        (self.paddle_length + self.paddle_thickness.ceil() as usize + margin) as i64
    }
}

/// A paddle drawn around its start point, before contrast.
struct Stencil {
    reach: i64,
    line: Grid,
    mask: Grid,
    /// Offsets of the seed dilation kernel (where the mask is fully on), head-centred.
    kernel: Vec<(i64, i64)>,
    /// Dilating the canvas by `kernel` leaves a pixel with no source inside the canvas, so
    /// that the reference finds no seed position for this paddle at all (see `seed`).
    finds_no_seed: bool,
}

/// A stencil placed on the canvas, its centre at `at`.
#[derive(Clone)]
struct Placed {
    stencil: Rc<Stencil>,
    at: (i64, i64),
}

impl Placed {
    /// Calls `f(canvas index, stencil index)` for every stencil pixel inside a canvas of
    /// `height` x `width`.
    fn for_each(&self, height: usize, width: usize, mut f: impl FnMut(usize, usize)) {
        let r = self.stencil.reach;
        let side = self.stencil.line.width;
        for i in 0..side as i64 {
            let y = self.at.0 - r + i;
            if y < 0 || y >= height as i64 {
                continue;
            }
            for j in 0..side as i64 {
                let x = self.at.1 - r + j;
                if x >= 0 && x < width as i64 {
                    f(
                        y as usize * width + x as usize,
                        i as usize * side + j as usize,
                    );
                }
            }
        }
    }

    /// `grid = max(grid, scale * stencil values)` over the stencil's window.
    fn max_into(&self, grid: &mut Grid, values: &Grid, scale: f32) {
        let (height, width) = (grid.height, grid.width);
        self.for_each(height, width, |c, s| {
            grid.data[c] = grid.data[c].max(values.data[s] * scale)
        });
    }

    fn draw_line(&self, image: &mut Grid, contrast: f32) {
        self.max_into(image, &self.stencil.line, contrast);
    }

    fn add_mask(&self, mask: &mut Grid) {
        self.max_into(mask, &self.stencil.mask, 1.0);
    }

    /// Largest `mask + stencil mask` over the canvas. Only the stencil's window matters: mask
    /// values never exceed 1, below the reference's 1.8 crossing threshold.
    fn overlap(&self, mask: &Grid) -> f32 {
        let stencil = &self.stencil.mask.data;
        let mut best = 0.0f32;
        self.for_each(mask.height, mask.width, |c, s| {
            best = best.max(mask.data[c] + stencil[s])
        });
        best
    }
}

/// Candidate next heads, their orientations and the cumulative probability of each.
type Candidates = (Vec<(i64, i64)>, Vec<f64>, Vec<f64>);

/// NumPy rounds halves to even.
trait RoundHalfEven {
    fn round_half_even(self) -> f64;
}

impl RoundHalfEven for f64 {
    fn round_half_even(self) -> f64 {
        let r = self.round();
        if (self - self.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
            r - self.signum()
        } else {
            r
        }
    }
}

/// A snake's growing end.
#[derive(Clone)]
struct Tip {
    pivot: (i64, i64),
    orientation: f64,
    /// The last paddle, whose mask joins the canvas mask one step late so that the next
    /// paddle is not blocked by it.
    last: Placed,
}

fn translate(coord: (i64, i64), orientation: f64, dist: f64) -> (i64, i64) {
    (
        (coord.0 as f64 + dist * orientation.sin()).ceil() as i64,
        (coord.1 as f64 + dist * orientation.cos()).ceil() as i64,
    )
}

fn flip(orientation: f64) -> f64 {
    if orientation < 0.0 {
        orientation + PI
    } else {
        orientation - PI
    }
}

fn random_orientation(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen_range(-180i32..180) as f64 * PI / 180.0
}

/// Draws one image; the generator state of one worker thread (its stencil cache).
pub(crate) struct Painter<'p> {
    params: &'p PathfinderParams,
    stencils: HashMap<(u64, usize), Rc<Stencil>>,
}

/// One generated sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub pixels: Vec<u8>,
    pub label: u8,
    pub margin: usize,
}

impl<'p> Painter<'p> {
    pub fn new(params: &'p PathfinderParams) -> Self {
        Painter {
            params,
            stencils: HashMap::new(),
        }
    }

    /// The paddle of `orientation` (draw_line_n_mask): drawn at the antialias scale from the
    /// centre towards the head, downsampled; its mask is the line dilated by the margin.
    fn stencil(&mut self, orientation: f64, margin: usize) -> Rc<Stencil> {
        let p = self.params;
        let key = (orientation.to_bits(), margin);
        if let Some(s) = self.stencils.get(&key) {
            return s.clone();
        }
        let aa = p.antialias as i64;
        let reach = p.reach(margin);
        let blown_side = (reach * 2 * aa + 1) as usize;
        let centre = reach * aa;
        let head = translate(
            (centre, centre),
            orientation,
            (p.paddle_length as i64 * aa) as f64,
        );
        let mut blown = Grid::zeros(blown_side, blown_side);
        let width = (p.paddle_thickness * aa as f64).round() as usize;
        draw_line(&mut blown, (centre, centre), head, width);
        let side = (reach * 2 + 1) as usize;
        let line = imresize(&blown, side, side);
        let blown_mask = dilate(&blown, &disk(margin as i64 * aa));
        let mask = imresize(&blown_mask, side, side);
        // The reference builds the seed kernel on a canvas of half-side length + margin with
        // the head one pixel off its centre, and keeps only fully-on mask pixels.
        let limit = (p.paddle_length + margin) as i64;
        let mut kernel = Vec::new();
        for i in 0..side as i64 {
            for j in 0..side as i64 {
                let (dy, dx) = (i - reach + 1, j - reach + 1);
                if mask.at(i as usize, j as usize) >= 1.0 && dy.abs() <= limit && dx.abs() <= limit
                {
                    kernel.push((dy, dx));
                }
            }
        }
        let finds_no_seed = dilation_leaves_a_pixel_unreached(p.resolution, p.resolution, &kernel);
        let stencil = Rc::new(Stencil {
            reach,
            line,
            mask,
            kernel,
            finds_no_seed,
        });
        self.stencils.insert(key, stencil.clone());
        stencil
    }

    fn place(&mut self, at: (i64, i64), orientation: f64, margin: usize) -> Placed {
        Placed {
            stencil: self.stencil(orientation, margin),
            at,
        }
    }

    fn pick(rng: &mut ChaCha8Rng, values: &[f64]) -> f64 {
        values[rng.gen_range(0..values.len())]
    }

    /// Places a snake's first paddle at a free spot (seed_snake / initialize_two_seeds).
    /// `border` pixels along the edges are off limits for the tail.
    #[allow(clippy::too_many_arguments)]
    fn seed(
        &mut self,
        rng: &mut ChaCha8Rng,
        image: &mut Grid,
        mask: &Grid,
        border: usize,
        margin: usize,
        contrast: f64,
        stop_with_availability: Option<f64>,
    ) -> Option<(Tip, (i64, i64))> {
        let p = self.params;
        let length = p.paddle_length as f64;
        let (h, w) = (mask.height, mask.width);
        // The mask does not change between trials: its occupancy is built once, when the
        // first orientation that can seed comes up (most cannot at 32x32, see below).
        let mut occupancy = None;
        for _ in 0..=MAX_PADDLE_RETRIAL {
            let orientation = random_orientation(rng);
            let stencil = self.stencil(orientation, margin);
            // seed_snake and initialize_two_seeds dilate the mask with `cv2.dilate`, which pads
            // a float image with -DBL_MAX: a pixel whose kernel sources all fall outside the
            // canvas keeps that value, and `find_available_coordinates` answers "no free
            // coordinate" for any mask with a negative value (`if np.min(mask) < 0`), so the
            // seed fails outright, with no retry. The kernel starts one pixel off the tail and
            // follows the paddle, so only orientations whose kernel reaches all four quadrants
            // (at 32x32, paddles pointing up and to the left) can seed. This is what makes the
            // reference place about 1.3 of the 5 nominal distractors at 32x32 (make_many_snakes
            // gives each 5 tries), and what orients the first target paddle. (The reference
            // tests `stop_with_availability` first; both fail the seed, so the order is moot.)
            if stencil.finds_no_seed {
                return None;
            }
            let too_full = || {
                stop_with_availability.is_some_and(|min_share| {
                    let open = mask.data.iter().filter(|&&v| v <= FREE_BELOW).count();
                    (open as f64) < min_share * (h * w) as f64
                })
            };
            if occupancy.is_none() && too_full() {
                return None;
            }
            let occupancy =
                occupancy.get_or_insert_with(|| Occupancy::new(mask, border, FREE_BELOW));
            // The tail must leave room for the paddle and its margin: the mask dilated by the
            // paddle's own shape must be free there.
            let free = occupancy.free_after_dilation(&stencil.kernel);
            if free.is_empty() {
                return None;
            }
            let spot = free[rng.gen_range(0..free.len())];
            let tail = ((spot / w) as i64, (spot % w) as i64);
            let head = translate(tail, orientation, length);
            let pivot = translate(head, flip(orientation), length + margin as f64);
            if !mask.contains(head.0, head.1) || !mask.contains(pivot.0, pivot.1) {
                continue;
            }
            let paddle = self.place(tail, orientation, margin);
            paddle.draw_line(image, contrast as f32);
            return Some((
                Tip {
                    pivot,
                    orientation,
                    last: paddle,
                },
                tail,
            ));
        }
        None
    }

    /// Candidate heads on the circle of `step` around `centre`, weighted by the continuity
    /// prior and the free space of the mask dilated by the margin (get_coords_cmf). Returns (heads, orientations, cmf).
    fn candidates(
        &self,
        centre: (i64, i64),
        last: f64,
        step: f64,
        mask: &Grid,
        margin_disk: &[(i64, i64)],
    ) -> Option<Candidates> {
        let degrees_per_pixel = 360.0 / (2.0 * step * PI);
        let count = (360.0 / degrees_per_pixel).ceil() as usize;
        let mut coords: Vec<(i64, i64)> = (0..count)
            .filter_map(|k| {
                let angle = (k as f64 * degrees_per_pixel) * PI / 180.0;
                let y = centre.0 as f64 + step * angle.sin();
                let x = centre.1 as f64 + step * angle.cos();
                let inside =
                    y >= 0.0 && x >= 0.0 && y < mask.height as f64 && x < mask.width as f64;
                inside.then_some((y as i64, x as i64))
            })
            .collect();
        coords.sort_unstable();
        coords.dedup();
        if coords.is_empty() {
            return None;
        }
        let orientations: Vec<f64> = coords
            .iter()
            .map(|&(y, x)| ((y - centre.0) as f64).atan2((x - centre.1) as f64))
            .collect();
        let pmf: Vec<f64> = coords
            .iter()
            .zip(&orientations)
            .map(|(&(y, x), &o)| {
                let d = (o - last).abs();
                let delta = (d.min(2.0 * PI - d) * self.params.continuity).min(0.5 * PI);
                let weight = delta.cos().max(0.0).powi(2);
                // The mask dilated by the margin, needed only at the candidates.
                (1.0 - dilated_at(mask, y, x, margin_disk) as f64) * weight
            })
            .collect();
        let total: f64 = pmf.iter().sum();
        if total < 1e-4 {
            return None;
        }
        let mut acc = 0.0;
        let cmf = pmf.iter().map(|v| {
            acc += v / total;
            acc
        });
        Some((coords, orientations, cmf.collect()))
    }

    /// Adds one paddle to a snake (extend_snake); `None` when it cannot continue.
    #[allow(clippy::too_many_arguments)]
    fn extend(
        &mut self,
        rng: &mut ChaCha8Rng,
        tip: &Tip,
        image: &mut Grid,
        mask: &mut Grid,
        small_disk: &[(i64, i64)],
        margin: usize,
        contrast: f64,
    ) -> Option<(Tip, (i64, i64))> {
        let p = self.params;
        let length = p.paddle_length as f64;
        let pivot = translate(tip.pivot, tip.orientation, length + 2.0 * margin as f64);
        let (heads, orientations, cmf) = self.candidates(
            pivot,
            tip.orientation,
            length + margin as f64,
            mask,
            small_disk,
        )?;
        for _ in 0..=MAX_PADDLE_RETRIAL {
            let r: f64 = rng.gen();
            let k = cmf.iter().position(|&c| c > r).unwrap_or(0);
            let paddle = self.place(heads[k], flip(orientations[k]), margin);
            if paddle.overlap(mask) < 1.8 {
                paddle.draw_line(image, contrast as f32);
                tip.last.add_mask(mask);
                let next = Tip {
                    pivot,
                    orientation: orientations[k],
                    last: paddle,
                };
                return Some((next, heads[k]));
            }
        }
        None
    }

    /// The two target snakes (two_snakes). Returns their images, the mask, and each snake's
    /// two ends.
    #[allow(clippy::type_complexity)]
    fn two_snakes(
        &mut self,
        rng: &mut ChaCha8Rng,
        margin: usize,
        small_disk: &[(i64, i64)],
    ) -> Option<([Grid; 2], Grid, [(i64, i64); 2], [(i64, i64); 2])> {
        let p = self.params;
        let n = p.resolution;
        let mut mu: Vec<f64> = [p.snake_contrasts.clone(), p.snake_contrasts.clone()].concat();
        mu.shuffle(rng);
        let mut mask = Grid::zeros(n, n);
        for y in 0..n {
            for x in 0..n {
                if y < p.padding || x < p.padding || y + p.padding >= n || x + p.padding >= n {
                    mask.set(y, x, 1.0);
                }
            }
        }
        let mut images = [Grid::zeros(n, n), Grid::zeros(n, n)];
        let contrast = Self::pick(rng, &p.paddle_contrasts) * mu[0];
        let (tip1, origin1) = self.seed(
            rng,
            &mut images[0],
            &mask,
            2 * p.seed_distance,
            margin,
            contrast,
            None,
        )?;
        let (tip2, origin2) =
            self.second_seed(rng, &mut images[1], &mask, origin1, margin, mu[1])?;
        let mut tips = [tip1, tip2];
        let mut ends = [(0, 0); 2];
        for _ in 1..p.contour_length {
            let contrast = Self::pick(rng, &p.paddle_contrasts);
            for s in 0..2 {
                let (next, head) = self.extend(
                    rng,
                    &tips[s],
                    &mut images[s],
                    &mut mask,
                    small_disk,
                    margin,
                    contrast * mu[s],
                )?;
                tips[s] = next;
                ends[s] = head;
            }
        }
        // As in the reference, only the second snake's last paddle joins the mask.
        tips[1].last.add_mask(&mut mask);
        Some((images, mask, [origin1, origin2], ends))
    }

    /// The second target seed, `seed_distance` from the first in a random direction.
    fn second_seed(
        &mut self,
        rng: &mut ChaCha8Rng,
        image: &mut Grid,
        mask: &Grid,
        first: (i64, i64),
        margin: usize,
        snake_contrast: f64,
    ) -> Option<(Tip, (i64, i64))> {
        let p = self.params;
        let length = p.paddle_length as f64;
        let contrast = Self::pick(rng, &p.paddle_contrasts) * snake_contrast;
        let d = p.seed_distance as f64;
        for _ in 0..=MAX_PADDLE_RETRIAL {
            let orientation = random_orientation(rng);
            let direction = rng.gen_range(0..360) as f64 * PI / 180.0;
            let tail = (
                (first.0 as f64 + d * direction.sin()).round_half_even() as i64,
                (first.1 as f64 + d * direction.cos()).round_half_even() as i64,
            );
            let head = translate(tail, orientation, length);
            let pivot = translate(head, flip(orientation), length + margin as f64);
            if !mask.contains(head.0, head.1) || !mask.contains(pivot.0, pivot.1) {
                continue;
            }
            let paddle = self.place(tail, orientation, margin);
            paddle.draw_line(image, contrast as f32);
            return Some((
                Tip {
                    pivot,
                    orientation,
                    last: paddle,
                },
                tail,
            ));
        }
        None
    }

    /// One distractor snake (make_snake); the canvas is unchanged when it fails.
    fn distractor(
        &mut self,
        rng: &mut ChaCha8Rng,
        image: &mut Grid,
        mask: &mut Grid,
        margin: usize,
        small_disk: &[(i64, i64)],
    ) -> bool {
        let p = self.params;
        let mut new_image = image.clone();
        let mut new_mask = mask.clone();
        let contrast = Self::pick(rng, &p.snake_contrasts);
        let Some((mut tip, _)) = self.seed(
            rng,
            &mut new_image,
            &new_mask,
            1,
            margin,
            contrast,
            Some(STOP_WITH_AVAILABILITY),
        ) else {
            return false;
        };
        for _ in 1..p.distractor_length {
            let contrast = Self::pick(rng, &p.snake_contrasts);
            match self.extend(
                rng,
                &tip,
                &mut new_image,
                &mut new_mask,
                small_disk,
                margin,
                contrast,
            ) {
                Some((next, _)) => tip = next,
                None => return false,
            }
        }
        tip.last.add_mask(&mut new_mask);
        *image = new_image;
        *mask = new_mask;
        true
    }

    /// A disk marker drawn at the antialias scale and downsampled (draw_circle).
    fn marker(&self, at: (i64, i64)) -> Grid {
        let p = self.params;
        let aa = p.antialias as i64;
        let side = p.resolution * p.antialias;
        let radius = p.marker_radius * aa as f64;
        let mut big = Grid::zeros(side, side);
        for i in 0..side as i64 {
            for j in 0..side as i64 {
                let (y, x) = ((i - at.0 * aa) as f64, (j - at.1 * aa) as f64);
                if x * x + y * y <= radius * radius {
                    big.set(i as usize, j as usize, 1.0);
                }
            }
        }
        imresize(&big, p.resolution, p.resolution)
    }

    /// Draws one image from `rng`.
    pub fn sample(&mut self, rng: &mut ChaCha8Rng) -> Sample {
        let p = self.params;
        let label = rng.gen_range(0..2u8);
        let margin = p.paddle_margins[rng.gen_range(0..p.paddle_margins.len())];
        let small_disk = disk(margin as i64);
        // The reference retries until the two targets fit; with LRA's settings a few tries
        // do. Settings that leave no room would otherwise spin for ever.
        let (images, mut mask, origins, ends) = (0..MAX_TARGET_ATTEMPTS)
            .find_map(|_| self.two_snakes(rng, margin, &small_disk))
            .expect("Pathfinder settings leave no room for the two target snakes");
        let [mut image, second] = images;
        image.max_with(&second);
        for _ in 0..p.distractor_snakes {
            for _ in 0..=MAX_DISTRACTOR_RETRIAL {
                if self.distractor(rng, &mut image, &mut mask, margin, &small_disk) {
                    break;
                }
            }
        }
        let origin = rng.gen_range(0..2usize);
        let terminal = if label == 1 { origin } else { 1 - origin };
        let mut markers = self.marker(origins[origin]);
        markers.max_with(&self.marker(ends[terminal]));
        image.max_with(&markers);
        Sample {
            pixels: bytescale(&image.data),
            label,
            margin,
        }
    }
}

/// The per-image random stream: image `index` of a run with `seed`.
pub(crate) fn image_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// `n` images in parallel; image `i` depends only on `(seed, i)`.
pub fn generate(params: &PathfinderParams, n: usize, seed: u64) -> Vec<Sample> {
    (0..n as u64)
        .into_par_iter()
        .map_init(
            || Painter::new(params),
            |painter, i| painter.sample(&mut image_rng(seed, i)),
        )
        .collect()
}

/// Writes the release layout under `out/<difficulty folder>/`: `imgs/<b>/sample_<i>.png` and
/// text `metadata/<b>.npy`, `batch_size` images per batch. Returns the folder.
pub fn write(
    params: &PathfinderParams,
    difficulty: Difficulty,
    out: &Path,
    n: usize,
    batch_size: usize,
    seed: u64,
) -> Result<PathBuf, DataError> {
    let root = out.join(difficulty.folder());
    let meta_dir = root.join("metadata");
    std::fs::create_dir_all(&meta_dir).map_err(|e| DataError::write(&meta_dir, e))?;
    let batch_size = batch_size.max(1);
    for (b, start) in (0..n).step_by(batch_size).enumerate() {
        let count = batch_size.min(n - start);
        let img_dir = root.join("imgs").join(b.to_string());
        std::fs::create_dir_all(&img_dir).map_err(|e| DataError::write(&img_dir, e))?;
        let lines = (0..count)
            .into_par_iter()
            .map_init(
                || Painter::new(params),
                |painter, i| -> Result<String, DataError> {
                    let sample = painter.sample(&mut image_rng(seed, (start + i) as u64));
                    let file = img_dir.join(format!("sample_{i}.png"));
                    write_png(&file, &sample.pixels, params.resolution)?;
                    Ok(metadata_line(params, b, i, &sample))
                },
            )
            .collect::<Result<Vec<String>, DataError>>()?;
        let meta = meta_dir.join(format!("{b}.npy"));
        std::fs::write(&meta, lines.concat()).map_err(|e| DataError::write(&meta, e))?;
    }
    Ok(root)
}

/// Python's `str` of a float: `1.0`, `0.5`, `1.8`.
fn py_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// One line of the release's text metadata.
fn metadata_line(p: &PathfinderParams, batch: usize, i: usize, s: &Sample) -> String {
    format!(
        "imgs/{batch} sample_{i}.png {i} {} {} {} {} {} {} {} {}\n",
        s.label,
        py_float(p.continuity),
        p.contour_length,
        p.distractor_length,
        p.paddle_length,
        py_float(p.paddle_thickness),
        s.margin,
        p.paddle_contrasts.len()
    )
}

fn write_png(path: &Path, pixels: &[u8], side: usize) -> Result<(), DataError> {
    use image::ImageEncoder;
    let mut bytes = Vec::with_capacity(pixels.len());
    image::codecs::png::PngEncoder::new_with_quality(
        &mut bytes,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        pixels,
        side as u32,
        side as u32,
        image::ExtendedColorType::L8,
    )
    .map_err(|e| DataError::write(path, e))?;
    let mut file = std::fs::File::create(path).map_err(|e| DataError::write(path, e))?;
    file.write_all(&bytes)
        .map_err(|e| DataError::write(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_seeded_and_show_markers_and_paths() {
        let params = PathfinderParams::lra(32, Difficulty::Hard).unwrap();
        let a = generate(&params, 8, 3);
        assert_eq!(a, generate(&params, 8, 3));
        for s in &a {
            assert_eq!(s.pixels.len(), 32 * 32);
            assert_eq!(*s.pixels.iter().max().unwrap(), 255);
            let lit = s.pixels.iter().filter(|&&v| v > 0).count();
            assert!(lit > 30 && lit < 600, "lit pixels {lit}");
        }
    }

    /// The orientations (whole degrees, as the reference samples them) whose paddle can seed a
    /// snake on an empty canvas.
    fn seeding_orientations(resolution: usize, margin: usize) -> Vec<i32> {
        let params = PathfinderParams::lra(resolution, Difficulty::Hard).unwrap();
        let mut painter = Painter::new(&params);
        (-180..180)
            .filter(|&deg| {
                !painter
                    .stencil(deg as f64 * PI / 180.0, margin)
                    .finds_no_seed
            })
            .collect()
    }

    #[test]
    fn seeds_take_only_the_orientations_the_reference_can_seed() {
        // Computed with the reference's own functions (draw_line_n_mask's mask as the kernel,
        // cv2.dilate of an empty 32x32 float canvas, `np.min(...) < 0`): only paddles pointing
        // up and to the left, -150 to -121 degrees, leave no canvas pixel unreached.
        assert_eq!(
            seeding_orientations(32, 1),
            (-150..=-121).collect::<Vec<_>>()
        );
        // Wider margins give kernels around the tail: at 128x128 every orientation seeds.
        assert_eq!(seeding_orientations(128, 3).len(), 360);
    }

    #[test]
    fn every_resolution_has_settings() {
        for r in [32, 64, 128, 256] {
            for &d in Difficulty::ALL {
                let p = PathfinderParams::lra(r, d).unwrap();
                assert!(p.distractor_snakes > 0 && p.distractor_length > 0);
                assert_eq!((p.paddle_thickness * p.antialias as f64).fract(), 0.0);
            }
        }
        assert!(PathfinderParams::lra(48, Difficulty::Easy).is_err());
    }

    #[test]
    fn sixteen_pixels_fit_easy_contours_only() {
        let params = PathfinderParams::lra(16, Difficulty::Easy).unwrap();
        let samples = generate(&params, 64, 0);
        let positives = samples.iter().filter(|s| s.label == 1).count();
        assert!((20..=44).contains(&positives), "{positives} of 64 positive");
        for s in &samples {
            assert_eq!(s.pixels.len(), 16 * 16);
            assert_eq!(*s.pixels.iter().max().unwrap(), 255);
            let lit = s.pixels.iter().filter(|&&v| v > 0).count();
            assert!(lit > 15 && lit < 200, "lit pixels {lit}");
        }
        for longer in [Difficulty::Medium, Difficulty::Hard] {
            let err = PathfinderParams::lra(16, longer).unwrap_err().to_string();
            assert!(err.contains("16x16"), "{err}");
        }
    }
}
