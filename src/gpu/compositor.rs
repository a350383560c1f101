//! The compositor: owns the device, the per-source plane textures, the RGBA canvas and the
//! tile pipelines, and turns a list of tiles into one NV12 frame.

use std::collections::HashMap;
use std::num::NonZeroU64;

use super::device::{ErrorScopes, GpuContext};
use super::readback::Nv12Converter;
use super::source::SourceTextures;
use super::{GpuError, I420Frame, TileContent, TileDraw};

const CANVAS_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
/// Per-tile uniform: five `vec4<f32>` (see `struct Tile` in shaders/tile.wgsl).
const TILE_UNIFORM_FLOATS: usize = 20;
const TILE_UNIFORM_SIZE: u64 = (TILE_UNIFORM_FLOATS * 4) as u64;
const INITIAL_TILE_CAPACITY: usize = 16;

/// Composes tiles of uploaded I420 frames into NV12 output frames of a fixed size.
pub struct Compositor {
    gpu: GpuContext,
    width: u32,
    height: u32,
    sources: HashMap<u64, SourceTextures>,
    tile_layout: wgpu::BindGroupLayout,
    planes_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    solid_pipeline: wgpu::RenderPipeline,
    video_pipeline: wgpu::RenderPipeline,
    canvas_view: wgpu::TextureView,
    nv12: Nv12Converter,
    /// Dynamic-offset uniform buffer holding one `Tile` per draw, `tile_stride` apart.
    tile_buffer: wgpu::Buffer,
    tile_bind_group: wgpu::BindGroup,
    tile_capacity: usize,
    tile_stride: u64,
    /// CPU staging for the tile uniforms of one frame (reused between frames).
    tile_staging: Vec<u8>,
}

impl Compositor {
    /// Opens the GPU and creates everything needed for `width x height` output (both even).
    pub fn new(width: u32, height: u32) -> Result<Self, GpuError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(GpuError::OddSize { width, height });
        }
        let gpu = GpuContext::new()?;
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
        let plane_entry = |binding: u32| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let planes_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera.gpu.planes.bind_group_layout"),
            entries: &[
                plane_entry(0),
                plane_entry(1),
                plane_entry(2),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("tessera.gpu.planes.sampler"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            address_mode_w: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });

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
            bind_group_layouts: &[Some(&tile_layout), Some(&planes_layout)],
            immediate_size: 0,
        });
        let pipeline = |label: &str, layout: &wgpu::PipelineLayout, entry: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some("vs_main"),
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
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: CANVAS_FORMAT,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let solid_pipeline = pipeline("tessera.gpu.tile.solid_pipeline", &solid_layout, "fs_solid");
        let video_pipeline = pipeline("tessera.gpu.tile.video_pipeline", &video_layout, "fs_video");

        let canvas = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("tessera.gpu.canvas"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: CANVAS_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let canvas_view = canvas
            .create_view(&wgpu::TextureViewDescriptor { label: Some("tessera.gpu.canvas_view"), ..Default::default() });
        let nv12 = Nv12Converter::new(device, &canvas_view, width, height);

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
            tile_layout,
            planes_layout,
            sampler,
            solid_pipeline,
            video_pipeline,
            canvas_view,
            nv12,
            tile_buffer,
            tile_bind_group,
            tile_capacity: INITIAL_TILE_CAPACITY,
            tile_stride,
            tile_staging: Vec::new(),
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
        let GpuContext { device, queue, .. } = &self.gpu;
        let scopes = ErrorScopes::push(device);
        let result = match self.sources.get_mut(&source_id) {
            Some(source) if source.width == frame.width && source.height == frame.height => {
                source.update(device, queue, source_id, frame)
            }
            _ => SourceTextures::create(device, queue, &self.planes_layout, &self.sampler, source_id, frame).map(
                |source| {
                    self.sources.insert(source_id, source);
                },
            ),
        };
        let scoped = scopes.pop();
        result.and(scoped)
    }

    /// Forgets a source and frees its textures; unknown ids are ignored.
    pub fn remove_source(&mut self, source_id: u64) {
        self.sources.remove(&source_id);
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
        for tile in tiles {
            if let TileContent::Video { source_id, .. } = tile.content
                && !self.sources.contains_key(&source_id)
            {
                return Err(GpuError::UnknownSource { source_id });
            }
        }
        let drawn: Vec<&TileDraw> = tiles.iter().filter(|t| is_drawable(t)).collect();
        let scopes = ErrorScopes::push(&self.gpu.device);
        if drawn.len() > self.tile_capacity {
            let capacity = drawn.len().next_power_of_two();
            let (buffer, bind_group) =
                create_tile_buffer(&self.gpu.device, &self.tile_layout, self.tile_stride, capacity);
            self.tile_buffer = buffer;
            self.tile_bind_group = bind_group;
            self.tile_capacity = capacity;
        }

        self.write_tile_uniforms(&drawn);
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tessera.gpu.compose") });
        self.encode_tiles(&mut encoder, &drawn, background_rgb);
        self.nv12.encode(&mut encoder);
        self.gpu.queue.submit([encoder.finish()]);
        let read = self.nv12.read(&self.gpu.device, out_nv12);
        let scoped = scopes.pop();
        scoped.and(read)
    }

    fn write_tile_uniforms(&mut self, drawn: &[&TileDraw]) {
        let stride = self.tile_stride as usize;
        self.tile_staging.clear();
        self.tile_staging.resize(stride * drawn.len(), 0);
        let target = [self.width as f32, self.height as f32, 0.0, 0.0];
        for (tile, slot) in drawn.iter().zip(self.tile_staging.chunks_exact_mut(stride)) {
            let rect = [tile.rect.x, tile.rect.y, tile.rect.width, tile.rect.height];
            let (uv, color, coeffs) = match tile.content {
                TileContent::Video { source_id, uv_rect } => {
                    let coeffs = self.sources.get(&source_id).map(|s| s.matrix.yuv_to_rgb_coeffs()).unwrap_or_default();
                    (uv_rect, [0.0; 4], coeffs)
                }
                TileContent::Solid { rgb } => {
                    let [r, g, b] = rgb.map(|c| f32::from(c) / 255.0);
                    ([0.0, 0.0, 1.0, 1.0], [r, g, b, 1.0], [0.0; 4])
                }
            };
            let mut floats = [0.0f32; TILE_UNIFORM_FLOATS];
            for (dst, src) in floats.chunks_exact_mut(4).zip([rect, uv, color, coeffs, target]) {
                dst.copy_from_slice(&src);
            }
            slot[..TILE_UNIFORM_SIZE as usize].copy_from_slice(bytemuck::cast_slice(&floats));
        }
        if !self.tile_staging.is_empty() {
            self.gpu.queue.write_buffer(&self.tile_buffer, 0, &self.tile_staging);
        }
    }

    fn encode_tiles(&self, encoder: &mut wgpu::CommandEncoder, drawn: &[&TileDraw], bg: [u8; 3]) {
        let [r, g, b] = bg.map(|c| f64::from(c) / 255.0);
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("tessera.gpu.tile_pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.canvas_view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(wgpu::Color { r, g, b, a: 1.0 }),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        for (index, tile) in drawn.iter().enumerate() {
            // Offsets fit u32: the buffer itself is bounded by the device's buffer size limit.
            let offset = (index as u64 * self.tile_stride) as u32;
            match tile.content {
                TileContent::Video { source_id, .. } => {
                    let Some(source) = self.sources.get(&source_id) else {
                        continue;
                    };
                    pass.set_pipeline(&self.video_pipeline);
                    pass.set_bind_group(1, &source.bind_group, &[]);
                }
                TileContent::Solid { .. } => pass.set_pipeline(&self.solid_pipeline),
            }
            pass.set_bind_group(0, &self.tile_bind_group, &[offset]);
            pass.draw(0..4, 0..1);
        }
    }
}

/// Tiles with non-finite or non-positive sizes (or non-finite crops) draw nothing.
fn is_drawable(tile: &TileDraw) -> bool {
    let r = tile.rect;
    let finite = [r.x, r.y, r.width, r.height].iter().all(|v| v.is_finite());
    let uv_ok = match tile.content {
        TileContent::Video { uv_rect, .. } => uv_rect.iter().all(|v| v.is_finite()),
        TileContent::Solid { .. } => true,
    };
    finite && uv_ok && r.width > 0.0 && r.height > 0.0
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
