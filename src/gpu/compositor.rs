//! The compositor: uses the process's shared device; owns the per-source plane textures, the NV12 targets and the
//! tile pipelines, and turns a list of tiles into one NV12 frame.
//!
//! Tiles are drawn straight into the NV12 planes: one render pass into the full-size luma
//! target and one into the half-size chroma target, both over the same tile quads. Plain
//! tiles take the unblended path; styled tiles (rounded, bordered) and images are blended
//! with anti-aliased coverage (see shaders/tile.wgsl).

use std::collections::HashMap;
use std::num::NonZeroU64;

use super::device::{ErrorScopes, GpuContext};
use super::image::ImageTexture;
use super::readback::{Nv12Target, UV_FORMAT, Y_FORMAT};
use super::source::{SourceConverter, SourceTextures};
use super::{GpuError, I420Frame, TileContent, TileDraw, rgb_to_yuv709_limited};

/// Per-tile uniform: six `vec4<f32>` (see `struct Tile` in shaders/tile.wgsl).
const TILE_UNIFORM_FLOATS: usize = 24;
const TILE_UNIFORM_SIZE: u64 = (TILE_UNIFORM_FLOATS * 4) as u64;
const INITIAL_TILE_CAPACITY: usize = 16;

/// Composes tiles of uploaded I420 frames into NV12 output frames of a fixed size.
pub struct WgpuCompositor {
    gpu: std::sync::Arc<GpuContext>,
    width: u32,
    height: u32,
    sources: HashMap<u64, SourceTextures>,
    images: HashMap<u64, ImageTexture>,
    tile_layout: wgpu::BindGroupLayout,
    converter: SourceConverter,
    /// Pipelines of the luma pass and of the chroma pass.
    y_pipelines: TilePipelines,
    uv_pipelines: TilePipelines,
    nv12: Nv12Target,
    /// Dynamic-offset uniform buffer holding one `Tile` per draw, `tile_stride` apart.
    tile_buffer: wgpu::Buffer,
    tile_bind_group: wgpu::BindGroup,
    tile_capacity: usize,
    tile_stride: u64,
    /// CPU staging for the tile uniforms of one frame (reused between frames).
    tile_staging: Vec<u8>,
    /// Indices into the current `tiles` of the tiles that draw something (reused).
    drawn: Vec<usize>,
}

/// The pipelines of one NV12 plane.
struct TilePipelines {
    solid: wgpu::RenderPipeline,
    video: wgpu::RenderPipeline,
    /// Chroma pass only: the blended solid and video pipelines of the edge strips.
    edges: Option<(wgpu::RenderPipeline, wgpu::RenderPipeline)>,
    /// Styled tiles and images: anti-aliased, premultiplied-alpha blended.
    styled: StyledPipelines,
}

struct StyledPipelines {
    /// The interior of styled solid and video tiles: plain shaders, no blending.
    solid_inner: wgpu::RenderPipeline,
    video_inner: wgpu::RenderPipeline,
    /// The interior of images: blended by their alpha, no shape.
    image_inner: wgpu::RenderPipeline,
    /// The outline strips around the interiors: shaped and blended.
    solid: wgpu::RenderPipeline,
    video: wgpu::RenderPipeline,
    image: wgpu::RenderPipeline,
}

impl WgpuCompositor {
    /// Creates, on the process's shared GPU device, everything needed for `width x height`
    /// output (both even).
    pub fn new(width: u32, height: u32) -> Result<Self, GpuError> {
        super::check_output_size(width, height)?;
        let gpu = GpuContext::shared()?;
        let device = &gpu.device;
        let max = device.limits().max_texture_dimension_2d;
        if width > max || height > max {
            return Err(GpuError::OutputTooLarge { width, height, max });
        }
        let scopes = ErrorScopes::push(device);

        let tile_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera.gpu.tile.bind_group_layout"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: NonZeroU64::new(TILE_UNIFORM_SIZE),
                },
                count: None,
            }],
        });
        let converter = SourceConverter::new(device);
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tessera.gpu.tile.shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/tile.wgsl").into()),
        });
        let solid_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tessera.gpu.tile.solid_pipeline_layout"),
            bind_group_layouts: &[Some(&tile_layout)],
            immediate_size: 0,
        });
        let video_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tessera.gpu.tile.video_pipeline_layout"),
            bind_group_layouts: &[Some(&tile_layout), Some(&converter.ycc_layout)],
            immediate_size: 0,
        });
        // The chroma pass draws inner regions and blended edge strips; styled tiles draw their
        // interior plainly and the rest blended; images are blended (see shaders/tile.wgsl).
        let pipeline = |label: String,
                        layout: &wgpu::PipelineLayout,
                        vertex: &str,
                        fragment: String,
                        format: wgpu::TextureFormat,
                        blend: Option<wgpu::BlendState>| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(&label),
                layout: Some(layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some(vertex),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology: wgpu::PrimitiveTopology::TriangleStrip,
                    cull_mode: None,
                    ..Default::default()
                },
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some(&fragment),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState { format, blend, write_mask: wgpu::ColorWrites::ALL })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let plane_pipelines = |plane: &str, format: wgpu::TextureFormat| {
            let chroma = format == UV_FORMAT;
            let plain_vertex = if chroma { "vs_chroma" } else { "vs_main" };
            let make = |name: &str, layout, vertex, fragment: String, blend| {
                pipeline(format!("tessera.gpu.tile.{name}_{plane}_pipeline"), layout, vertex, fragment, format, blend)
            };
            let premultiplied = Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING);
            let (solid, video) = (&solid_layout, &video_layout);
            TilePipelines {
                solid: make("solid", solid, plain_vertex, format!("fs_solid_{plane}"), None),
                video: make("video", video, plain_vertex, format!("fs_video_{plane}"), None),
                edges: chroma.then(|| {
                    let blend = Some(wgpu::BlendState::ALPHA_BLENDING);
                    (
                        make("solid_edge", solid, "vs_chroma", "fs_solid_uv_edge".to_owned(), blend),
                        make("video_edge", video, "vs_chroma", "fs_video_uv_edge".to_owned(), blend),
                    )
                }),
                styled: StyledPipelines {
                    solid_inner: make("styled_solid_inner", solid, "vs_styled", format!("fs_solid_{plane}"), None),
                    video_inner: make("styled_video_inner", video, "vs_styled", format!("fs_video_{plane}"), None),
                    image_inner: make("image_inner", video, "vs_styled", format!("fs_image_{plane}"), premultiplied),
                    solid: make("styled_solid", solid, "vs_styled", format!("fs_styled_{plane}_solid"), premultiplied),
                    video: make("styled_video", video, "vs_styled", format!("fs_styled_{plane}_video"), premultiplied),
                    image: make("styled_image", video, "vs_styled", format!("fs_styled_{plane}_image"), premultiplied),
                },
            }
        };
        let y_pipelines = plane_pipelines("y", Y_FORMAT);
        let uv_pipelines = plane_pipelines("uv", UV_FORMAT);
        let nv12 = Nv12Target::new(device, width, height);

        let alignment = u64::from(device.limits().min_uniform_buffer_offset_alignment).max(1);
        let tile_stride = TILE_UNIFORM_SIZE.div_ceil(alignment) * alignment;
        let (tile_buffer, tile_bind_group) =
            create_tile_buffer(device, &tile_layout, tile_stride, INITIAL_TILE_CAPACITY);
        scopes.pop()?;

        Ok(Self {
            gpu,
            width,
            height,
            sources: HashMap::new(),
            images: HashMap::new(),
            tile_layout,
            converter,
            y_pipelines,
            uv_pipelines,
            nv12,
            tile_buffer,
            tile_bind_group,
            tile_capacity: INITIAL_TILE_CAPACITY,
            tile_stride,
            tile_staging: Vec::new(),
            drawn: Vec::new(),
        })
    }

    /// Adapter name, backend and device type, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) / Vulkan / Cpu`.
    pub fn adapter_summary(&self) -> String {
        self.gpu.adapter_summary()
    }

    /// Output size in pixels.
    pub fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Uploads the latest frame of `source_id`, (re)creating its plane textures when the
    /// frame size changes. Strides may exceed the plane widths.
    pub fn upload(&mut self, source_id: u64, frame: &I420Frame<'_>) -> Result<(), GpuError> {
        let GpuContext { device, queue, .. } = &*self.gpu;
        let scopes = ErrorScopes::push(device);
        let result = match self.sources.get_mut(&source_id) {
            Some(source) if source.width == frame.width && source.height == frame.height => {
                source.update(device, queue, source_id, frame)
            }
            _ => SourceTextures::create(device, queue, &self.converter, source_id, frame).map(|source| {
                self.sources.insert(source_id, source);
            }),
        };
        let scoped = scopes.pop();
        result.and(scoped)
    }

    /// Forgets a source and frees its textures; unknown ids are ignored.
    pub fn remove_source(&mut self, source_id: u64) {
        self.sources.remove(&source_id);
    }

    /// Uploads an RGBA8 image (straight alpha, R'G'B' like the sources, rows of `width * 4`
    /// bytes) as `image_id`, for tiles of `TileContent::Image`. Image ids are separate from
    /// source ids. Uploading again replaces the pixels (and the size).
    pub fn upload_image(&mut self, image_id: u64, width: u32, height: u32, rgba: &[u8]) -> Result<(), GpuError> {
        let GpuContext { device, queue, .. } = &*self.gpu;
        let scopes = ErrorScopes::push(device);
        let result = match self.images.get_mut(&image_id) {
            Some(image) if image.width == width && image.height == height => {
                image.update(device, queue, image_id, rgba)
            }
            _ => ImageTexture::create(device, queue, &self.converter, image_id, width, height, rgba).map(|image| {
                self.images.insert(image_id, image);
            }),
        };
        let scoped = scopes.pop();
        result.and(scoped)
    }

    /// Forgets an image and frees its texture; unknown ids are ignored.
    pub fn remove_image(&mut self, image_id: u64) {
        self.images.remove(&image_id);
    }

    /// Size of an uploaded image.
    pub fn image_size(&self, image_id: u64) -> Option<(u32, u32)> {
        self.images.get(&image_id).map(|image| (image.width, image.height))
    }

    /// Draws `tiles` in order over `background_rgb` and writes the frame as NV12 into
    /// `out_nv12` (resized to `W*H + W*H/2` bytes: Y plane, then interleaved CbCr).
    pub fn compose(
        &mut self,
        tiles: &[TileDraw],
        background_rgb: [u8; 3],
        out_nv12: &mut Vec<u8>,
    ) -> Result<(), GpuError> {
        // Validate everything before touching the GPU.
        super::check_tiles(tiles, |id| self.sources.contains_key(&id), |id| self.images.contains_key(&id))?;
        let mut drawn = std::mem::take(&mut self.drawn);
        drawn.clear();
        drawn.extend(tiles.iter().enumerate().filter(|(_, t)| is_drawable(t)).map(|(i, _)| i));
        let scopes = ErrorScopes::push(&self.gpu.device);
        if drawn.len() > self.tile_capacity {
            let capacity = drawn.len().next_power_of_two();
            let (buffer, bind_group) =
                create_tile_buffer(&self.gpu.device, &self.tile_layout, self.tile_stride, capacity);
            self.tile_buffer = buffer;
            self.tile_bind_group = bind_group;
            self.tile_capacity = capacity;
        }

        self.write_tile_uniforms(tiles, &drawn);
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera.gpu.compose") });
        // Convert the sources uploaded since their last conversion (once per upload).
        for &index in &drawn {
            if let Some(TileContent::Video { source_id, .. }) = tiles.get(index).map(|t| t.content)
                && let Some(source) = self.sources.get_mut(&source_id)
                && source.dirty
            {
                self.converter.encode(&mut encoder, source);
            }
        }
        let [y, cb, cr] = rgb_to_yuv709_limited(background_rgb).map(|c| f64::from(c) / 255.0);
        let passes = [
            (
                "tessera.gpu.tile_y_pass",
                &self.nv12.y_view,
                &self.y_pipelines,
                wgpu::Color { r: y, g: 0.0, b: 0.0, a: 1.0 },
            ),
            (
                "tessera.gpu.tile_uv_pass",
                &self.nv12.uv_view,
                &self.uv_pipelines,
                wgpu::Color { r: cb, g: cr, b: 0.0, a: 1.0 },
            ),
        ];
        for (label, view, pipelines, clear) in passes {
            self.encode_tiles(&mut encoder, label, view, pipelines, clear, tiles, &drawn);
        }
        self.nv12.encode_copy(&mut encoder);
        self.gpu.queue.submit([encoder.finish()]);
        self.drawn = drawn;
        let read = self.nv12.read(&self.gpu.device, out_nv12);
        let scoped = scopes.pop();
        scoped.and(read)
    }

    fn write_tile_uniforms(&mut self, tiles: &[TileDraw], drawn: &[usize]) {
        let stride = self.tile_stride as usize;
        self.tile_staging.clear();
        self.tile_staging.resize(stride * drawn.len(), 0);
        let target = [self.width as f32, self.height as f32, 0.0, 0.0];
        for (tile, slot) in drawn.iter().filter_map(|&i| tiles.get(i)).zip(self.tile_staging.chunks_exact_mut(stride)) {
            let rect = [tile.rect.x, tile.rect.y, tile.rect.width, tile.rect.height];
            let (uv, color) = match tile.content {
                TileContent::Video { uv_rect, .. } => (uv_rect, [0.0; 4]),
                TileContent::Solid { rgb } => ([0.0, 0.0, 1.0, 1.0], ycc(rgb)),
                TileContent::Image { .. } => ([0.0, 0.0, 1.0, 1.0], [0.0; 4]),
            };
            let nonnegative = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
            let style = [nonnegative(tile.style.corner_radius_px), nonnegative(tile.style.border_px), 0.0, 0.0];
            let border = ycc(tile.style.border_rgb);
            let mut floats = [0.0f32; TILE_UNIFORM_FLOATS];
            for (dst, src) in floats.chunks_exact_mut(4).zip([rect, uv, color, target, style, border]) {
                dst.copy_from_slice(&src);
            }
            slot[..TILE_UNIFORM_SIZE as usize].copy_from_slice(bytemuck::cast_slice(&floats));
        }
        if !self.tile_staging.is_empty() {
            self.gpu.queue.write_buffer(&self.tile_buffer, 0, &self.tile_staging);
        }
    }

    /// Records one render pass that clears `view` to `clear` and draws the tiles into it.
    #[allow(clippy::too_many_arguments)]
    fn encode_tiles(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        view: &wgpu::TextureView,
        pipelines: &TilePipelines,
        clear: wgpu::Color,
        tiles: &[TileDraw],
        drawn: &[usize],
    ) {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some(label),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(clear), store: wgpu::StoreOp::Store },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        for (slot, tile) in drawn.iter().filter_map(|&i| tiles.get(i)).enumerate() {
            // Offsets fit u32: the buffer itself is bounded by the device's buffer size limit.
            let offset = (slot as u64 * self.tile_stride) as u32;
            if tile.style.is_styled() || matches!(tile.content, TileContent::Image { .. }) {
                let styled = &pipelines.styled;
                // The interior (instance 0) without the shape, then the shaped strips (1..5).
                let (inner, outline) = match tile.content {
                    TileContent::Video { source_id, .. } => {
                        let Some(source) = self.sources.get(&source_id) else {
                            continue;
                        };
                        pass.set_bind_group(1, &source.bind_group, &[]);
                        (&styled.video_inner, &styled.video)
                    }
                    TileContent::Image { image_id } => {
                        let Some(image) = self.images.get(&image_id) else {
                            continue;
                        };
                        pass.set_bind_group(1, &image.bind_group, &[]);
                        (&styled.image_inner, &styled.image)
                    }
                    TileContent::Solid { .. } => (&styled.solid_inner, &styled.solid),
                };
                pass.set_bind_group(0, &self.tile_bind_group, &[offset]);
                pass.set_pipeline(inner);
                pass.draw(0..4, 0..1);
                pass.set_pipeline(outline);
                pass.draw(0..4, 1..5);
                continue;
            }
            let (inner, edge) = match tile.content {
                TileContent::Video { source_id, .. } => {
                    let Some(source) = self.sources.get(&source_id) else {
                        continue;
                    };
                    pass.set_bind_group(1, &source.bind_group, &[]);
                    (&pipelines.video, pipelines.edges.as_ref().map(|(_, video)| video))
                }
                TileContent::Solid { .. } | TileContent::Image { .. } => {
                    (&pipelines.solid, pipelines.edges.as_ref().map(|(solid, _)| solid))
                }
            };
            pass.set_bind_group(0, &self.tile_bind_group, &[offset]);
            pass.set_pipeline(inner);
            pass.draw(0..4, 0..1);
            // Instances 1..5: the four edge strips of the chroma pass.
            if let Some(edge) = edge {
                pass.set_pipeline(edge);
                pass.draw(0..4, 1..5);
            }
        }
    }
}

/// Tiles with non-finite or non-positive sizes (or non-finite crops) draw nothing.
pub(crate) fn is_drawable(tile: &TileDraw) -> bool {
    let r = tile.rect;
    let finite = [r.x, r.y, r.width, r.height].iter().all(|v| v.is_finite());
    let uv_ok = match tile.content {
        TileContent::Video { uv_rect, .. } => uv_rect.iter().all(|v| v.is_finite()),
        TileContent::Solid { .. } | TileContent::Image { .. } => true,
    };
    finite && uv_ok && r.width > 0.0 && r.height > 0.0
}

/// BT.709 limited-range Y'CbCr of `rgb` in 0..1, alpha 1.
fn ycc(rgb: [u8; 3]) -> [f32; 4] {
    let [y, cb, cr] = rgb_to_yuv709_limited(rgb).map(|c| f32::from(c) / 255.0);
    [y, cb, cr, 1.0]
}

fn create_tile_buffer(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    stride: u64,
    capacity: usize,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tessera.gpu.tile_uniforms"),
        size: stride * capacity as u64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("tessera.gpu.tile_bind_group"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buffer,
                offset: 0,
                size: NonZeroU64::new(TILE_UNIFORM_SIZE),
            }),
        }],
    });
    (buffer, bind_group)
}
