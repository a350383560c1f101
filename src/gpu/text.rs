//! Name labels and avatar initials, shaped and rasterised on the CPU into RGBA images that the
//! compositor draws as `TileContent::Image` tiles.
//!
//! Shaping is cosmic-text's (harfrust, with bidi: Arabic and Hebrew come out in visual order,
//! joined where the script joins) and glyphs are rasterised by swash. Fonts are loaded once,
//! deterministically, from `TESSERA_FONT_DIR` (a list of directories, `:`-separated) or else
//! from /usr/share/fonts: the files are found recursively and loaded in sorted path order, and
//! the locale is fixed, so the same text renders the same on every machine with the same
//! fonts. Scripts the main family lacks (CJK) come from any installed font that has them.

use std::path::{Path, PathBuf};

use cosmic_text::{
    Align, Attrs, Buffer, Ellipsize, EllipsizeHeightLimit, Family, FontSystem, Metrics, Shaping, SwashCache,
    SwashContent, Wrap, fontdb,
};

use super::GpuError;

/// Environment variable naming the font directories (`:`-separated).
pub const FONT_DIR_ENV: &str = "TESSERA_FONT_DIR";
/// Where fonts are looked for when [`FONT_DIR_ENV`] is not set.
pub const DEFAULT_FONT_DIR: &str = "/usr/share/fonts";
/// The main family, the first of these that is installed (else the first family found).
const PREFERRED_FAMILIES: [&str; 4] = ["DejaVu Sans", "Noto Sans", "Liberation Sans", "Open Sans"];
/// Fixed, so that fallback choices do not depend on the machine's locale.
const LOCALE: &str = "en-US";
/// Directory levels searched below each font directory.
const MAX_DEPTH: usize = 8;
/// Font files loaded at most (a bound on start-up time with a huge font directory).
const MAX_FONT_FILES: usize = 4096;
/// Line height as a multiple of the text size.
const LINE_HEIGHT: f32 = 1.25;
/// Text sizes are clamped to this range of pixels.
const MIN_TEXT_PX: f32 = 1.0;
const MAX_TEXT_PX: f32 = 512.0;
/// Widest line of text laid out, in pixels (cosmic-text loses precision on huge widths).
const MAX_LINE_PX: f32 = 16384.0;
/// Opacity of a label's dark pill.
const PILL_ALPHA: f32 = 0.6;
const PILL_RGB: [u8; 3] = [0, 0, 0];
const TEXT_RGB: [u8; 3] = [255, 255, 255];
/// Initials take this fraction of an avatar's diameter as text size.
const AVATAR_TEXT_SCALE: f32 = 0.4;
/// Largest avatar diameter in pixels.
const MAX_AVATAR_PX: u32 = 4096;

/// A tightly packed RGBA8 image with straight (not premultiplied) alpha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbaImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes, rows top to bottom.
    pub pixels: Vec<u8>,
}

impl RgbaImage {
    /// RGBA of pixel (x, y); out of range reads as transparent black.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 4] {
        if x >= self.width || y >= self.height {
            return [0; 4];
        }
        let i = (y as usize * self.width as usize + x as usize) * 4;
        match self.pixels.get(i..i + 4) {
            Some(&[r, g, b, a]) => [r, g, b, a],
            _ => [0; 4],
        }
    }
}

/// Shapes and rasterises text with the fonts found at start-up.
pub struct TextRasterizer {
    fonts: FontSystem,
    glyphs: SwashCache,
    family: String,
}

impl std::fmt::Debug for TextRasterizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRasterizer").field("family", &self.family).field("faces", &self.face_count()).finish()
    }
}

/// One rasterised glyph at its place on the line (pixels relative to the pen origin of the
/// line: x from the left of the text, y from the top of the line box).
struct GlyphBitmap {
    left: i32,
    top: i32,
    width: u32,
    height: u32,
    /// Premultiplied RGBA in 0..1 per pixel, from the glyph's mask (in the text colour) or
    /// its own colours (emoji).
    pixels: Vec<[f32; 4]>,
}

/// A shaped line of text.
struct ShapedLine {
    glyphs: Vec<GlyphBitmap>,
    /// Logical extent: from the left-most glyph box to the right-most, in pixels.
    x_min: f32,
    x_max: f32,
    line_height: f32,
}

impl ShapedLine {
    /// Ink bounds `(x0, y0, x1, y1)` of the rasterised glyphs, if any pixel is inked.
    fn ink(&self) -> Option<(i32, i32, i32, i32)> {
        self.glyphs.iter().filter(|g| g.width > 0 && g.height > 0).fold(None, |acc, g| {
            let (x0, y0, x1, y1) = (g.left, g.top, g.left + g.width as i32, g.top + g.height as i32);
            Some(match acc {
                None => (x0, y0, x1, y1),
                Some((a0, b0, a1, b1)) => (a0.min(x0), b0.min(y0), a1.max(x1), b1.max(y1)),
            })
        })
    }
}

impl TextRasterizer {
    /// Loads the fonts of `TESSERA_FONT_DIR` (else /usr/share/fonts). Fails when no font is
    /// found there.
    pub fn new() -> Result<Self, GpuError> {
        let dirs: Vec<PathBuf> = match std::env::var_os(FONT_DIR_ENV) {
            Some(value) if !value.is_empty() => std::env::split_paths(&value).collect(),
            _ => vec![PathBuf::from(DEFAULT_FONT_DIR)],
        };
        Self::from_dirs(&dirs)
    }

    /// Loads every `.ttf`, `.otf`, `.ttc` and `.otc` file found below `dirs`, in sorted path
    /// order. Fails when none of them holds a usable face.
    pub fn from_dirs(dirs: &[PathBuf]) -> Result<Self, GpuError> {
        let mut files = Vec::new();
        for dir in dirs {
            collect_font_files(dir, 0, &mut files);
        }
        files.sort();
        files.dedup();
        files.truncate(MAX_FONT_FILES);
        let mut db = fontdb::Database::new();
        for file in &files {
            if let Err(err) = db.load_font_file(file) {
                tracing::warn!(path = %file.display(), error = %err, "could not load a font file");
            }
        }
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        if db.is_empty() {
            return Err(GpuError::Font(format!(
                "no usable font (.ttf, .otf, .ttc) in {}; install fonts-dejavu-core or set {FONT_DIR_ENV}",
                shown.join(", ")
            )));
        }
        let families: Vec<&str> =
            db.faces().filter_map(|face| face.families.first().map(|(name, _)| name.as_str())).collect();
        let family = PREFERRED_FAMILIES
            .iter()
            .find(|preferred| families.contains(preferred))
            .copied()
            .or_else(|| families.first().copied())
            .unwrap_or("sans-serif")
            .to_owned();
        db.set_sans_serif_family(family.clone());
        tracing::debug!(faces = db.len(), %family, dirs = %shown.join(", "), "loaded fonts");
        Ok(Self { fonts: FontSystem::new_with_locale_and_db(LOCALE.to_owned(), db), glyphs: SwashCache::new(), family })
    }

    /// The main font family.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Number of font faces loaded.
    pub fn face_count(&self) -> usize {
        self.fonts.db().len()
    }

    /// A name label: `text` in white, `text_px` high, on a rounded translucent dark pill with
    /// padding. The whole label is at most `max_width_px` wide: longer text ends in "…".
    /// Line breaks and tabs in `text` become spaces.
    pub fn label(&mut self, text: &str, text_px: f32, max_width_px: f32) -> RgbaImage {
        let px = clamp_text_px(text_px);
        let pad_x = (px * 0.5).round();
        let pad_y = (px * 0.25).round();
        let max_text =
            if max_width_px.is_finite() { (max_width_px - 2.0 * pad_x).clamp(px, MAX_LINE_PX) } else { MAX_LINE_PX };
        let line = self.shape(&single_line(text), px, Some(max_text), TEXT_RGB);
        let text_width = (line.x_max - line.x_min).max(0.0).ceil();
        let height = (line.line_height + 2.0 * pad_y).ceil().max(1.0);
        let width = (text_width + 2.0 * pad_x).max(height).ceil();
        let mut canvas = Canvas::new(width as u32, height as u32);
        canvas.fill_rounded(0.0, 0.0, width, height, height * 0.5, PILL_RGB, PILL_ALPHA);
        // The text box is centred (it is narrower than the pill only when the text is short).
        let dx = ((width - text_width) * 0.5).round() - line.x_min.floor();
        for glyph in &line.glyphs {
            canvas.draw(glyph, dx as i32, pad_y as i32);
        }
        canvas.into_image()
    }

    /// An avatar: a filled circle of `diameter_px` in `rgb` with `initials` centred on it
    /// (white, or near-black on a light colour).
    pub fn avatar(&mut self, initials: &str, rgb: [u8; 3], diameter_px: u32) -> RgbaImage {
        let d = diameter_px.clamp(2, MAX_AVATAR_PX);
        let size = d as f32;
        let mut canvas = Canvas::new(d, d);
        canvas.fill_rounded(0.0, 0.0, size, size, size * 0.5, rgb, 1.0);
        let luma = 0.2126 * f32::from(rgb[0]) + 0.7152 * f32::from(rgb[1]) + 0.0722 * f32::from(rgb[2]);
        let ink_rgb = if luma > 170.0 { [24, 24, 24] } else { TEXT_RGB };
        let line = self.shape(&single_line(initials), clamp_text_px(size * AVATAR_TEXT_SCALE), Some(size), ink_rgb);
        if let Some((x0, y0, x1, y1)) = line.ink() {
            let dx = ((size - (x1 - x0) as f32) * 0.5).round() as i32 - x0;
            let dy = ((size - (y1 - y0) as f32) * 0.5).round() as i32 - y0;
            for glyph in &line.glyphs {
                canvas.draw(glyph, dx, dy);
            }
        }
        canvas.into_image()
    }

    /// Lays out one line: bidi-reordered, shaped, ellipsised at `max_width`, and rasterised
    /// (mask glyphs in `rgb`).
    fn shape(&mut self, text: &str, px: f32, max_width: Option<f32>, rgb: [u8; 3]) -> ShapedLine {
        let mut buffer = self.buffer(text, px, max_width);
        buffer.shape_until_scroll(&mut self.fonts, false);
        let mut line = ShapedLine { glyphs: Vec::new(), x_min: 0.0, x_max: 0.0, line_height: px * LINE_HEIGHT };
        let Some(run) = buffer.layout_runs().next() else {
            return line;
        };
        line.line_height = run.line_height;
        line.x_min = run.glyphs.iter().map(|g| g.x).fold(f32::INFINITY, f32::min);
        line.x_max = run.glyphs.iter().map(|g| g.x + g.w).fold(f32::NEG_INFINITY, f32::max);
        if !line.x_min.is_finite() || !line.x_max.is_finite() {
            (line.x_min, line.x_max) = (0.0, 0.0);
        }
        let baseline = run.line_y - run.line_top;
        for glyph in run.glyphs {
            let physical = glyph.physical((0.0, baseline), 1.0);
            let Some(image) = self.glyphs.get_image_uncached(&mut self.fonts, physical.cache_key) else {
                continue;
            };
            let placement = image.placement;
            let count = placement.width as usize * placement.height as usize;
            let pixels: Vec<[f32; 4]> = match image.content {
                SwashContent::Mask => image.data.iter().take(count).map(|&a| tinted(rgb, a)).collect(),
                SwashContent::SubpixelMask => image
                    .data
                    .chunks_exact(4)
                    .take(count)
                    .map(|p| tinted(rgb, ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8))
                    .collect(),
                SwashContent::Color => image.data.chunks_exact(4).take(count).map(premultiplied).collect(),
            };
            if pixels.len() != count {
                continue;
            }
            line.glyphs.push(GlyphBitmap {
                left: physical.x + placement.left,
                top: physical.y - placement.top,
                width: placement.width,
                height: placement.height,
                pixels,
            });
        }
        line
    }

    fn buffer(&mut self, text: &str, px: f32, max_width: Option<f32>) -> Buffer {
        let mut buffer = Buffer::new(&mut self.fonts, Metrics::new(px, (px * LINE_HEIGHT).ceil()));
        buffer.set_wrap(Wrap::None);
        if let Some(width) = max_width {
            buffer.set_ellipsize(Ellipsize::End(EllipsizeHeightLimit::Lines(1)));
            buffer.set_size(Some(width), None);
        }
        // Left-aligned whatever the direction: the glyphs of a right-to-left line start at 0 too.
        let attrs = Attrs::new().family(Family::SansSerif);
        buffer.set_text(text, &attrs, Shaping::Advanced, Some(Align::Left));
        buffer
    }

    /// The shaped glyphs of `text` in visual order: (byte offset of the glyph's cluster in
    /// `text`, x in pixels, glyph id; 0 is the missing glyph).
    #[cfg(test)]
    pub(crate) fn clusters(&mut self, text: &str, px: f32) -> Vec<(usize, f32, u16)> {
        let mut buffer = self.buffer(text, px, None);
        buffer.shape_until_scroll(&mut self.fonts, false);
        buffer.layout_runs().flat_map(|run| run.glyphs.iter().map(|g| (g.start, g.x, g.glyph_id))).collect()
    }
}

fn clamp_text_px(px: f32) -> f32 {
    if px.is_finite() { px.clamp(MIN_TEXT_PX, MAX_TEXT_PX) } else { MIN_TEXT_PX }
}

/// `text` on one line: line breaks, tabs and other control characters become spaces.
fn single_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn tinted(rgb: [u8; 3], alpha: u8) -> [f32; 4] {
    let a = f32::from(alpha) / 255.0;
    [f32::from(rgb[0]) / 255.0 * a, f32::from(rgb[1]) / 255.0 * a, f32::from(rgb[2]) / 255.0 * a, a]
}

fn premultiplied(rgba: &[u8]) -> [f32; 4] {
    let a = f32::from(rgba[3]) / 255.0;
    [f32::from(rgba[0]) / 255.0 * a, f32::from(rgba[1]) / 255.0 * a, f32::from(rgba[2]) / 255.0 * a, a]
}

/// Adds the font files below `dir` (depth-limited; unreadable entries are skipped).
fn collect_font_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH || out.len() >= MAX_FONT_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        // `metadata` follows symbolic links, as font directories often use them.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            collect_font_files(&path, depth + 1, out);
        } else if meta.is_file() && is_font_file(&path) {
            out.push(path);
        }
    }
}

fn is_font_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["ttf", "otf", "ttc", "otc"].iter().any(|k| e.eq_ignore_ascii_case(k)))
}

/// A premultiplied RGBA canvas in 0..1.
struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<[f32; 4]>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        Self { width, height, pixels: vec![[0.0; 4]; width as usize * height as usize] }
    }

    /// Paints the box `x0..x1, y0..y1` with corners rounded by `radius`, anti-aliased by the
    /// signed distance at each pixel centre (as the tile shader does).
    #[allow(clippy::too_many_arguments)]
    fn fill_rounded(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, radius: f32, rgb: [u8; 3], alpha: f32) {
        let (cx, cy) = ((x0 + x1) * 0.5, (y0 + y1) * 0.5);
        let (hx, hy) = ((x1 - x0) * 0.5, (y1 - y0) * 0.5);
        let r = radius.clamp(0.0, hx.min(hy));
        let width = self.width as usize;
        for (i, px) in self.pixels.iter_mut().enumerate() {
            let (x, y) = ((i % width) as f32 + 0.5, (i / width) as f32 + 0.5);
            let (qx, qy) = ((x - cx).abs() - hx + r, (y - cy).abs() - hy + r);
            let distance = qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0) - r;
            let a = (0.5 - distance).clamp(0.0, 1.0) * alpha;
            if a > 0.0 {
                over(px, tinted(rgb, 255).map(|c| c * a));
            }
        }
    }

    /// Draws `glyph` over the canvas, offset by (dx, dy); what falls outside is clipped.
    fn draw(&mut self, glyph: &GlyphBitmap, dx: i32, dy: i32) {
        let (w, h) = (self.width as i32, self.height as i32);
        for (row, line) in glyph.pixels.chunks_exact(glyph.width.max(1) as usize).enumerate() {
            let y = glyph.top + dy + row as i32;
            if y < 0 || y >= h {
                continue;
            }
            for (col, &src) in line.iter().enumerate() {
                let x = glyph.left + dx + col as i32;
                if x < 0 || x >= w || src[3] <= 0.0 {
                    continue;
                }
                if let Some(px) = self.pixels.get_mut(y as usize * w as usize + x as usize) {
                    over(px, src);
                }
            }
        }
    }

    fn into_image(self) -> RgbaImage {
        let mut pixels = Vec::with_capacity(self.pixels.len() * 4);
        for [r, g, b, a] in self.pixels {
            let a = a.clamp(0.0, 1.0);
            let straight = |c: f32| if a > 0.0 { (c / a * 255.0).round().clamp(0.0, 255.0) as u8 } else { 0 };
            pixels.extend_from_slice(&[straight(r), straight(g), straight(b), (a * 255.0).round() as u8]);
        }
        RgbaImage { width: self.width, height: self.height, pixels }
    }
}

/// Porter-Duff "over" of premultiplied colours.
fn over(dst: &mut [f32; 4], src: [f32; 4]) {
    let keep = 1.0 - src[3];
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s + *d * keep;
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
