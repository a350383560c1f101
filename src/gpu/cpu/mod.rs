//! The CPU compositor: the same tiles as the GPU path drawn on the CPU, straight into the
//! NV12 planes, for nodes whose only adapter is a software rasteriser (lavapipe). There it
//! is several times cheaper than the GPU path: a software rasteriser runs a general shader
//! per output pixel, while this resamples each tile's interior row by row in loops the
//! compiler vectorises and shades pixel by pixel only the few pixels of edges and rounded
//! corners. See the README's Performance section for the measurements behind the choice.
//!
//! It follows the GPU path's rules (shaders/tile.wgsl): which pixels a tile covers, how the
//! chroma of edge blocks blends, the anti-aliased outline of styled tiles, premultiplied
//! images; the golden-image tests compare the two.

mod canvas;
mod draw;
mod planes;
mod scale;
mod shape;
// Calls CPU-feature kernels after run-time detection (see the module's notes).
#[allow(unsafe_code)]
mod shuffle;

use std::collections::HashMap;

use super::{GpuError, I420Frame, TileContent, TileDraw, rgb_to_yuv709_limited};
use canvas::{Axis, Canvas, Cover, Span};
use draw::{Content, ResizedImage, draw_plain, draw_styled};
pub(crate) use planes::MAX_SIDE_PX;
use planes::{ImagePlanes, SourcePlanes};
use scale::{Plane, Scaler};
use shape::{Edges, Outline};

/// Where an image is drawn: its id and the rect (bits of the f32s).
type PlacementKey = (u64, [u32; 4]);

/// Composes tiles of uploaded I420 frames into NV12 frames of a fixed size, on the CPU.
pub struct CpuCompositor {
    width: u32,
    height: u32,
    sources: HashMap<u64, SourcePlanes>,
    images: HashMap<u64, ImagePlanes>,
    /// Images resampled to where they were drawn in the last frame (labels and avatars stay
    /// put, so most frames resample nothing).
    placed: HashMap<PlacementKey, ResizedImage>,
    /// The edges of the styled tiles drawn in the last frame, by outline.
    edges: HashMap<[u32; 6], Edges>,
    scaler: Scaler,
}

impl CpuCompositor {
    /// Creates a compositor for `width x height` output (both even and non-zero).
    pub fn new(width: u32, height: u32) -> Result<Self, GpuError> {
        super::check_output_size(width, height)?;
        if width > MAX_SIDE_PX || height > MAX_SIDE_PX {
            return Err(GpuError::OutputTooLarge { width, height, max: MAX_SIDE_PX });
        }
        Ok(Self {
            width,
            height,
            sources: HashMap::new(),
            images: HashMap::new(),
            placed: HashMap::new(),
            edges: HashMap::new(),
            scaler: Scaler::default(),
        })
    }

    /// What draws: `CPU compositor (x86_64)`.
    pub fn adapter_summary(&self) -> String {
        format!("CPU compositor ({})", std::env::consts::ARCH)
    }

    pub fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Keeps the latest frame of `source_id` (converted to BT.709 planes).
    pub fn upload(&mut self, source_id: u64, frame: &I420Frame<'_>) -> Result<(), GpuError> {
        self.sources.entry(source_id).or_default().store(source_id, frame).inspect_err(|_| {
            self.sources.remove(&source_id);
        })
    }

    pub fn remove_source(&mut self, source_id: u64) {
        self.sources.remove(&source_id);
    }

    /// Keeps an RGBA8 image (straight alpha, rows of `width * 4` bytes) as `image_id`.
    pub fn upload_image(&mut self, image_id: u64, width: u32, height: u32, rgba: &[u8]) -> Result<(), GpuError> {
        let image = ImagePlanes::new(image_id, width, height, rgba)?;
        self.images.insert(image_id, image);
        self.placed.retain(|key, _| key.0 != image_id);
        Ok(())
    }

    pub fn remove_image(&mut self, image_id: u64) {
        self.images.remove(&image_id);
        self.placed.retain(|key, _| key.0 != image_id);
    }

    pub fn image_size(&self, image_id: u64) -> Option<(u32, u32)> {
        self.images.get(&image_id).map(|image| (image.width, image.height))
    }

    /// Draws `tiles` in order over `background_rgb` into `out_nv12` (resized to
    /// `W*H + W*H/2` bytes: Y plane, then interleaved CbCr).
    pub fn compose(
        &mut self,
        tiles: &[TileDraw],
        background_rgb: [u8; 3],
        out_nv12: &mut Vec<u8>,
    ) -> Result<(), GpuError> {
        super::check_tiles(tiles, |id| self.sources.contains_key(&id), |id| self.images.contains_key(&id))?;
        let luma_len = self.width as usize * self.height as usize;
        out_nv12.resize(luma_len + luma_len / 2, 0);
        let (luma, chroma) = out_nv12.split_at_mut(luma_len);
        let mut canvas = Canvas { width: self.width, luma, chroma };
        // Each tile's edges first, so that the background is cleared only where no opaque
        // tile replaces it.
        let drawn: Vec<(&TileDraw, Outline, Option<Edges>)> = tiles
            .iter()
            .filter(|t| super::compositor::is_drawable(t))
            .map(|tile| {
                let outline = Outline::new(tile.rect, &tile.style, rgb_to_yuv709_limited(tile.style.border_rgb));
                let edges = self.take_edges(tile, &outline);
                (tile, outline, edges)
            })
            .collect();
        let mut cover = Cover::default();
        for (tile, _, edges) in &drawn {
            self.add_cover(&mut cover, tile, edges.as_ref());
        }
        canvas.clear_outside(rgb_to_yuv709_limited(background_rgb), &cover);
        let mut kept =
            Kept { placed: HashMap::with_capacity(self.placed.len()), edges: HashMap::with_capacity(self.edges.len()) };
        for (tile, outline, edges) in drawn {
            self.draw_tile(&mut canvas, tile, &outline, edges, &mut kept)?;
        }
        self.placed = kept.placed;
        self.edges = kept.edges;
        self.scaler.end_frame();
        Ok(())
    }

    /// The edges of a styled tile or an image (kept from the last frame when it stays put);
    /// none for a plain tile.
    fn take_edges(&mut self, tile: &TileDraw, outline: &Outline) -> Option<Edges> {
        let shaped = tile.style.is_styled() || matches!(tile.content, TileContent::Image { .. });
        shaped
            .then(|| self.edges.remove(&outline.key()).unwrap_or_else(|| Edges::new(outline, self.width, self.height)))
    }

    /// Adds what `tile` replaces whatever lies below: all it draws when it is a plain
    /// video or colour, the plain slabs and whole edge pixels and blocks when styled; nothing of
    /// an image.
    fn add_cover(&self, cover: &mut Cover, tile: &TileDraw, edges: Option<&Edges>) {
        if matches!(tile.content, TileContent::Image { .. }) {
            return;
        }
        match edges {
            None => cover.add(
                Span::covered(tile.rect.x, tile.rect.width, self.width),
                Span::covered(tile.rect.y, tile.rect.height, self.height),
            ),
            Some(edges) => {
                for &(xs, ys) in &edges.plain {
                    cover.add(xs, ys);
                }
                cover.luma.extend_from_slice(&edges.whole);
                cover.chroma.extend_from_slice(&edges.whole_blocks);
            }
        }
    }

    fn draw_tile(
        &mut self,
        canvas: &mut Canvas<'_>,
        tile: &TileDraw,
        outline: &Outline,
        mut edges: Option<Edges>,
        kept: &mut Kept,
    ) -> Result<(), GpuError> {
        let rect = tile.rect;
        let xs = Span::covered(rect.x, rect.width, self.width);
        let ys = Span::covered(rect.y, rect.height, self.height);
        match tile.content {
            TileContent::Solid { rgb } => {
                let content = Content::Solid(rgb_to_yuv709_limited(rgb));
                match &mut edges {
                    Some(edges) => draw_styled(canvas, &mut self.scaler, &content, outline, edges),
                    None => draw_plain(canvas, &mut self.scaler, &content, xs, ys),
                }
            }
            TileContent::Video { source_id, uv_rect } => {
                let planes = self.sources.get(&source_id).ok_or(GpuError::UnknownSource { source_id })?;
                let content = Content::Video {
                    planes,
                    x: Axis::new(rect.x, rect.width, uv_rect[0], uv_rect[2], planes.width),
                    y: Axis::new(rect.y, rect.height, uv_rect[1], uv_rect[3], planes.height),
                };
                match &mut edges {
                    Some(edges) => draw_styled(canvas, &mut self.scaler, &content, outline, edges),
                    None => draw_plain(canvas, &mut self.scaler, &content, xs, ys),
                }
            }
            TileContent::Image { image_id } => {
                let key = (image_id, [rect.x, rect.y, rect.width, rect.height].map(f32::to_bits));
                let resized = match self.placed.remove(&key) {
                    Some(resized) => resized,
                    None => {
                        let image = self.images.get(&image_id).ok_or(GpuError::UnknownImage { image_id })?;
                        let axes = (
                            Axis::new(rect.x, rect.width, 0.0, 1.0, image.width),
                            Axis::new(rect.y, rect.height, 0.0, 1.0, image.height),
                        );
                        resample_image(&mut self.scaler, image, xs, ys, axes)
                    }
                };
                let edges = edges.get_or_insert_with(|| Edges::new(outline, self.width, self.height));
                draw_styled(canvas, &mut self.scaler, &Content::Image(&resized), outline, edges);
                kept.placed.insert(key, resized);
            }
        }
        if let Some(edges) = edges {
            kept.edges.insert(outline.key(), edges);
        }
        Ok(())
    }
}

/// What the last frame drew that the next may reuse.
struct Kept {
    placed: HashMap<PlacementKey, ResizedImage>,
    edges: HashMap<[u32; 6], Edges>,
}

/// Resamples `image` onto the pixels `xs x ys` through the axes.
fn resample_image(scaler: &mut Scaler, image: &ImagePlanes, xs: Span, ys: Span, axes: (Axis, Axis)) -> ResizedImage {
    let mut ycca = vec![0u8; xs.len() as usize * ys.len() as usize * 4];
    // The region is the whole buffer: shift the axes to its origin.
    let shift = |axis: Axis, by: u32| Axis { origin: axis.origin + f64::from(by) * axis.scale, scale: axis.scale };
    let local = (Span { start: 0, end: xs.len() }, Span { start: 0, end: ys.len() });
    let src = Plane { data: &image.ycca, width: image.width, height: image.height };
    scaler.scale::<4>(&src, &mut ycca, xs.len(), local, (shift(axes.0, xs.start), shift(axes.1, ys.start)));
    ResizedImage::new(xs, ys, ycca, image.opaque)
}
