//! `tessera layout preview`: a layout drawn by the real compositor with sample participants
//! (coloured pictures, names in several scripts, one camera off, one speaking, a shared screen
//! on request), as an RGB image. The golden-image tests draw the same pictures.

use std::path::Path;

use super::RenderError;
use super::stage::{Performer, Stage};
use crate::gpu::{self, ColorMatrix, Compositor, CompositorBackend, I420Frame, OverlayCache};
use crate::layout::{Layout, Tile};

/// Sample names: Latin, Cyrillic, Greek, Arabic, Hebrew and CJK.
const SAMPLE_NAMES: &[&str] = &[
    "Ada Lovelace",
    "Алексей Смирнов",
    "Ελένη Παππά",
    "فاطمة الزهراء",
    "יעל כהן",
    "李雷",
    "Grace Hopper",
    "Kwame Mensah",
];
const SAMPLE_RGB: &[[u8; 3]] = &[
    [196, 92, 72],
    [72, 140, 196],
    [96, 168, 96],
    [200, 160, 64],
    [150, 96, 180],
    [64, 170, 170],
    [210, 120, 150],
    [120, 120, 200],
];
/// The sample participant who speaks.
const SPEAKER: usize = 1;
/// Simulated call time before the picture is taken: the speaker is found and tiles settle.
const SETTLE_MS: f64 = 3000.0;
const FPS: f64 = 30.0;

/// What to draw.
#[derive(Debug, Clone)]
pub struct PreviewSpec {
    pub layout: Layout,
    /// Participants with a camera (1..=49).
    pub participants: usize,
    /// The first participant also shares a screen.
    pub screenshare: bool,
    pub width: u32,
    pub height: u32,
    /// The compositor that draws it; `None`: as `TESSERA_COMPOSITOR` says (auto by default).
    pub compositor: Option<CompositorBackend>,
}

/// A tightly packed 8-bit RGB image.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a PNG this reads: {reason}")]
    Decode { path: String, reason: String },
    #[error("{path}: PNG encoding failed: {reason}")]
    Encode { path: String, reason: String },
}

impl RgbImage {
    /// The RGB of pixel (x, y); black outside.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        if x >= self.width || y >= self.height {
            return [0, 0, 0];
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Converts a tightly packed NV12 frame (BT.709 limited range).
    pub fn from_nv12(nv12: &[u8], width: u32, height: u32) -> RgbImage {
        let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                rgb.extend_from_slice(&gpu::nv12_pixel_rgb(nv12, width, height, x, y));
            }
        }
        RgbImage { width, height, rgb }
    }

    pub fn write_png(&self, path: &Path) -> Result<(), ImageError> {
        let shown = path.display().to_string();
        let file = std::fs::File::create(path).map_err(|source| ImageError::Io { path: shown.clone(), source })?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::High);
        let encode = |e: png::EncodingError| ImageError::Encode { path: shown.clone(), reason: e.to_string() };
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&self.rgb).map_err(encode)?;
        writer.finish().map_err(encode)
    }

    /// Reads an 8-bit RGB or RGBA PNG (alpha dropped).
    pub fn read_png(path: &Path) -> Result<RgbImage, ImageError> {
        let shown = path.display().to_string();
        let decode = |reason: String| ImageError::Decode { path: shown.clone(), reason };
        let file = std::fs::File::open(path).map_err(|source| ImageError::Io { path: shown.clone(), source })?;
        let mut reader =
            png::Decoder::new(std::io::BufReader::new(file)).read_info().map_err(|e| decode(e.to_string()))?;
        let size = reader.output_buffer_size().ok_or_else(|| decode("image too large".into()))?;
        let mut buffer = vec![0; size];
        let info = reader.next_frame(&mut buffer).map_err(|e| decode(e.to_string()))?;
        let channels = match (info.color_type, info.bit_depth) {
            (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
            (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
            other => return Err(decode(format!("{other:?} (expected 8-bit RGB or RGBA)"))),
        };
        let rgb = buffer[..info.buffer_size()].chunks_exact(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Ok(RgbImage { width: info.width, height: info.height, rgb })
    }
}

/// A sample picture: the colour darkening from top to bottom, or, for a screen, a white page
/// with grey lines of text.
fn sample_frame(width: u32, height: u32, rgb: [u8; 3], screen: bool) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (mut y_plane, mut u, mut v) = (vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]);
    for row in 0..h {
        let pixel = if screen {
            let line = row * 24 / h;
            if line > 2 && line % 2 == 1 { [150, 150, 160] } else { [236, 236, 240] }
        } else {
            let shade = 1.0 - 0.45 * row as f32 / h as f32;
            rgb.map(|c| (f32::from(c) * shade) as u8)
        };
        let [luma, cb, cr] = gpu::rgb_to_yuv709_limited(pixel);
        y_plane[row * w..(row + 1) * w].fill(luma);
        if row % 2 == 0 {
            u[row / 2 * cw..(row / 2 + 1) * cw].fill(cb);
            v[row / 2 * cw..(row / 2 + 1) * cw].fill(cr);
        }
    }
    (y_plane, u, v)
}

/// Draws `spec` with sample participants.
pub fn preview(spec: &PreviewSpec) -> Result<RgbImage, RenderError> {
    preview_tiles(spec).map(|(image, _)| image)
}

/// Draws `spec` with sample participants; also returns the tiles drawn (participant `i` is
/// sample participant `i`; a screenshare comes after the cameras).
pub fn preview_tiles(spec: &PreviewSpec) -> Result<(RgbImage, Vec<Tile>), RenderError> {
    let mut compositor = match spec.compositor {
        Some(backend) => Compositor::with_backend(spec.width, spec.height, backend)?,
        None => Compositor::new(spec.width, spec.height)?,
    };
    let mut overlays = OverlayCache::new()?;
    let ids: Vec<String> = (0..spec.participants).map(|i| format!("participant-{i:02}")).collect();
    let names: Vec<String> = (0..spec.participants)
        .map(|i| match SAMPLE_NAMES.get(i) {
            Some(name) => (*name).to_owned(),
            None => format!("Guest {}", i + 1),
        })
        .collect();
    let mut staging = super::staging::Staging::single(spec.layout.clone());
    staging.participants = ids
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (id, name))| super::staging::ParticipantInfo {
            id: id.clone(),
            name: name.clone(),
            role: None,
            pinned: i == SPEAKER.min(spec.participants - 1),
        })
        .collect();
    let mut stage = Stage::new(&staging)?;
    // The last of three or more has the camera off.
    let camera_off = (spec.participants >= 3).then_some(spec.participants - 1);
    let mut performers = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let picture = (Some(i) != camera_off).then_some((640, 360));
        if let Some((w, h)) = picture {
            let (y, u, v) = sample_frame(w, h, SAMPLE_RGB[i % SAMPLE_RGB.len()], false);
            compositor.upload(i as u64, &i420(w, h, &y, &u, &v))?;
        }
        performers.push(Performer {
            participant_id: id,
            screenshare: false,
            source_id: i as u64,
            picture,
            level: 0.0,
            join_order: i,
        });
    }
    if spec.screenshare {
        let (w, h) = (1280, 720);
        let (y, u, v) = sample_frame(w, h, [0, 0, 0], true);
        let source_id = ids.len() as u64;
        compositor.upload(source_id, &i420(w, h, &y, &u, &v))?;
        performers.push(Performer {
            participant_id: &ids[0],
            screenshare: true,
            source_id,
            picture: Some((w, h)),
            level: 0.0,
            join_order: 0,
        });
    }
    let speaker = SPEAKER.min(spec.participants - 1);
    let mut tiles = Vec::new();
    let mut t_ms = 0.0;
    while t_ms <= SETTLE_MS {
        // The speaker talks in syllables; the others are quiet.
        let syllable = ((t_ms / 1000.0 * 4.0 * std::f64::consts::TAU).sin() * 0.5 + 0.5) as f32;
        for (i, p) in performers.iter_mut().enumerate() {
            p.level = if i == speaker && !p.screenshare { 0.05 + 0.25 * syllable } else { 0.0005 };
        }
        tiles = stage.advance(t_ms, &performers, spec.width, spec.height);
        t_ms += 1000.0 / FPS;
    }
    let draws = stage.draws(t_ms, &tiles, &performers, &mut compositor, &mut overlays)?;
    let mut nv12 = Vec::new();
    compositor.compose(&draws, stage.background(t_ms).0, &mut nv12)?;
    Ok((RgbImage::from_nv12(&nv12, spec.width, spec.height), tiles))
}

fn i420<'a>(width: u32, height: u32, y: &'a [u8], u: &'a [u8], v: &'a [u8]) -> I420Frame<'a> {
    let chroma = width.div_ceil(2) as usize;
    I420Frame {
        width,
        height,
        y,
        y_stride: width as usize,
        u,
        u_stride: chroma,
        v,
        v_stride: chroma,
        matrix: ColorMatrix::Bt709,
    }
}
