//! Per-source textures: validation of an [`I420Frame`], its upload into an R8 luma texture
//! and an RG8 chroma texture (U and V interleaved, `ceil(w/2) x ceil(h/2)`), and the
//! conversion pass that turns them into one RGBA8 texture of BT.709 Y'CbCr (see
//! shaders/source.wgsl) for the tile passes.

use super::{ColorMatrix, GpuError, I420Frame};

const YCC_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// The plane textures of one source, its converted Y'CbCr texture and their bind groups.
pub(crate) struct SourceTextures {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) matrix: ColorMatrix,
    luma: wgpu::Texture,
    chroma: wgpu::Texture,
    /// U and V of the latest frame interleaved for the RG8 chroma texture (reused).
    chroma_staging: Vec<u8>,
    /// Samples the luma and chroma textures (conversion pass).
    planes_bind_group: wgpu::BindGroup,
    ycc_view: wgpu::TextureView,
    /// Samples the Y'CbCr texture (tile passes).
    pub(crate) bind_group: wgpu::BindGroup,
    /// The planes changed since the last conversion pass.
    pub(crate) dirty: bool,
}

/// Layouts, sampler and pipelines shared by all sources.
pub(crate) struct SourceConverter {
    planes_layout: wgpu::BindGroupLayout,
    /// Layout of [`SourceTextures::bind_group`]: the Y'CbCr texture and a linear sampler.
    pub(crate) ycc_layout: wgpu::BindGroupLayout,
    /// Linear, clamp-to-edge sampler of every source and image texture.
    pub(crate) sampler: wgpu::Sampler,
    bt601: wgpu::RenderPipeline,
    bt709: wgpu::RenderPipeline,
}

fn texture_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable: true },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

fn sampler_entry(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
        count: None,
    }
}

impl SourceConverter {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let planes_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera.gpu.planes.bind_group_layout"),
            entries: &[texture_entry(0), texture_entry(1), sampler_entry(2)],
        });
        let ycc_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tessera.gpu.ycc.bind_group_layout"),
            entries: &[texture_entry(0), sampler_entry(1)],
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("tessera.gpu.source.sampler"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            address_mode_w: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("tessera.gpu.source.shader"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/source.wgsl").into()),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tessera.gpu.source.pipeline_layout"),
            bind_group_layouts: &[Some(&planes_layout)],
            immediate_size: 0,
        });
        let pipeline = |label: &str, matrix: ColorMatrix| {
            let [r_cr, g_cb, g_cr, b_cb] = matrix.yuv_to_rgb_coeffs().map(f64::from);
            let constants = [("R_CR", r_cr), ("G_CB", g_cb), ("G_CR", g_cr), ("B_CB", b_cb)];
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some("vs_fullscreen"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some("fs_main"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants,
                        ..Default::default()
                    },
                    targets: &[Some(wgpu::ColorTargetState {
                        format: YCC_FORMAT,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let bt601 = pipeline("tessera.gpu.source.bt601_pipeline", ColorMatrix::Bt601);
        let bt709 = pipeline("tessera.gpu.source.bt709_pipeline", ColorMatrix::Bt709);
        Self { planes_layout, ycc_layout, sampler, bt601, bt709 }
    }

    /// Records the conversion pass of `source` into its Y'CbCr texture and clears `dirty`.
    pub(crate) fn encode(&self, encoder: &mut wgpu::CommandEncoder, source: &mut SourceTextures) {
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("tessera.gpu.source.convert_pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &source.ycc_view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations { load: wgpu::LoadOp::Clear(wgpu::Color::BLACK), store: wgpu::StoreOp::Store },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(match source.matrix {
            ColorMatrix::Bt601 => &self.bt601,
            ColorMatrix::Bt709 => &self.bt709,
        });
        pass.set_bind_group(0, &source.planes_bind_group, &[]);
        pass.draw(0..3, 0..1);
        source.dirty = false;
    }
}

/// Size and data of one plane, checked against its stride.
pub(crate) struct PlaneCheck<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) stride: usize,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

const PLANE_NAMES: [&str; 3] = ["y", "u", "v"];

/// Checks the frame's dimensions, strides and plane lengths; returns the three planes
/// trimmed to exactly the bytes a copy reads (`stride * (rows - 1) + row_width`).
pub(crate) fn check_frame<'a>(
    source_id: u64,
    frame: &I420Frame<'a>,
    max_dim: u32,
) -> Result<[PlaneCheck<'a>; 3], GpuError> {
    let bad = |reason: String| GpuError::BadFrame { source_id, reason };
    if frame.width == 0 || frame.height == 0 {
        return Err(bad(format!("frame size {}x{} is empty", frame.width, frame.height)));
    }
    if frame.width > max_dim || frame.height > max_dim {
        return Err(bad(format!(
            "frame size {}x{} exceeds the device limit of {max_dim} pixels per side",
            frame.width, frame.height
        )));
    }
    let (cw, ch) = (frame.width.div_ceil(2), frame.height.div_ceil(2));
    let planes = [
        (frame.y, frame.y_stride, frame.width, frame.height),
        (frame.u, frame.u_stride, cw, ch),
        (frame.v, frame.v_stride, cw, ch),
    ];
    let mut checked = Vec::with_capacity(3);
    for ((data, stride, width, height), name) in planes.into_iter().zip(PLANE_NAMES) {
        if stride < width as usize {
            return Err(bad(format!("{name} stride {stride} is smaller than the plane width {width}")));
        }
        let needed = stride
            .checked_mul(height as usize - 1)
            .and_then(|n| n.checked_add(width as usize))
            .ok_or_else(|| bad(format!("{name} stride {stride} overflows")))?;
        if data.len() < needed {
            return Err(bad(format!(
                "{name} plane has {} bytes, needs at least {needed} \
                 (stride {stride} x {height} rows, last row {width} bytes)",
                data.len()
            )));
        }
        checked.push(PlaneCheck { data: &data[..needed], stride, width, height });
    }
    let mut it = checked.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(y), Some(u), Some(v)) => Ok([y, u, v]),
        _ => Err(bad("internal: plane count".to_owned())),
    }
}

impl SourceTextures {
    /// Creates the textures for `frame`'s size and uploads it.
    pub(crate) fn create(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        converter: &SourceConverter,
        source_id: u64,
        frame: &I420Frame<'_>,
    ) -> Result<Self, GpuError> {
        let planes = check_frame(source_id, frame, device.limits().max_texture_dimension_2d)?;
        let make = |width: u32, height: u32, name: &str, format, usage| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(&format!("tessera.gpu.source{source_id}.{name}")),
                size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | usage,
                view_formats: &[],
            })
        };
        let (y, uv) = (&planes[0], &planes[1]);
        let luma = make(y.width, y.height, "y", wgpu::TextureFormat::R8Unorm, wgpu::TextureUsages::COPY_DST);
        let chroma = make(uv.width, uv.height, "uv", wgpu::TextureFormat::Rg8Unorm, wgpu::TextureUsages::COPY_DST);
        let ycc = make(frame.width, frame.height, "ycc", YCC_FORMAT, wgpu::TextureUsages::RENDER_ATTACHMENT);
        let view = |t: &wgpu::Texture| t.create_view(&wgpu::TextureViewDescriptor::default());
        let (y_view, uv_view, ycc_view) = (view(&luma), view(&chroma), view(&ycc));
        let sampler = wgpu::BindingResource::Sampler(&converter.sampler);
        let planes_bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("tessera.gpu.source{source_id}.planes_bind_group")),
            layout: &converter.planes_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&y_view) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&uv_view) },
                wgpu::BindGroupEntry { binding: 2, resource: sampler.clone() },
            ],
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("tessera.gpu.source{source_id}.ycc_bind_group")),
            layout: &converter.ycc_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&ycc_view) },
                wgpu::BindGroupEntry { binding: 1, resource: sampler },
            ],
        });
        let mut source = Self {
            width: frame.width,
            height: frame.height,
            matrix: frame.matrix,
            luma,
            chroma,
            chroma_staging: Vec::new(),
            planes_bind_group,
            ycc_view,
            bind_group,
            dirty: true,
        };
        source.write_planes(queue, &planes);
        Ok(source)
    }

    /// Uploads `frame` into the existing textures; the caller has checked the size matches.
    pub(crate) fn update(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        source_id: u64,
        frame: &I420Frame<'_>,
    ) -> Result<(), GpuError> {
        let planes = check_frame(source_id, frame, device.limits().max_texture_dimension_2d)?;
        self.matrix = frame.matrix;
        self.write_planes(queue, &planes);
        self.dirty = true;
        Ok(())
    }

    fn write_planes(&mut self, queue: &wgpu::Queue, planes: &[PlaneCheck<'_>; 3]) {
        let [y, u, v] = planes;
        // U and V are interleaved row by row (without stride padding) for the RG8 texture.
        let (cw, ch) = (u.width as usize, u.height as usize);
        self.chroma_staging.resize(cw * ch * 2, 0);
        let rows = u.data.chunks(u.stride).zip(v.data.chunks(v.stride));
        for (dst, (u_row, v_row)) in self.chroma_staging.chunks_exact_mut(cw * 2).zip(rows) {
            interleave(dst, u_row.get(..cw).unwrap_or(u_row), v_row.get(..cw).unwrap_or(v_row));
        }
        // A luma stride that does not fit the copy layout's u32 is repacked tightly.
        let mut packed = Vec::new();
        let (y_data, y_bytes_per_row) = match u32::try_from(y.stride) {
            Ok(stride) => (y.data, stride),
            Err(_) => {
                let w = y.width as usize;
                for row in y.data.chunks(y.stride) {
                    packed.extend_from_slice(&row[..w.min(row.len())]);
                }
                (&packed[..], y.width)
            }
        };
        let uploads = [
            (&self.luma, y_data, y_bytes_per_row, y.width, y.height),
            (&self.chroma, &self.chroma_staging[..], u.width * 2, u.width, u.height),
        ];
        for (texture, data, bytes_per_row, width, height) in uploads {
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                data,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(bytes_per_row), rows_per_image: None },
                wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            );
        }
    }
}

/// Interleaves `u` and `v` into `dst` (`u0 v0 u1 v1 ...`), sixteen output bytes per step so
/// that it stays cheap in unoptimized builds too.
fn interleave(dst: &mut [u8], u: &[u8], v: &[u8]) {
    /// Moves byte i of `x` to byte 2i.
    fn spread(x: [u8; 8]) -> u128 {
        let x = u128::from(u64::from_le_bytes(x));
        let x = (x | (x << 32)) & 0x0000_0000_FFFF_FFFF_0000_0000_FFFF_FFFF;
        let x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF_0000_FFFF_0000_FFFF;
        (x | (x << 8)) & 0x00FF_00FF_00FF_00FF_00FF_00FF_00FF_00FF
    }
    let (out16, out_rest) = dst.as_chunks_mut::<16>();
    let (u8s, u_rest) = u.as_chunks::<8>();
    let (v8s, v_rest) = v.as_chunks::<8>();
    for ((out, &u8s), &v8s) in out16.iter_mut().zip(u8s).zip(v8s) {
        *out = (spread(u8s) | (spread(v8s) << 8)).to_le_bytes();
    }
    for ((pair, &cb), &cr) in out_rest.chunks_exact_mut(2).zip(u_rest).zip(v_rest) {
        pair.copy_from_slice(&[cb, cr]);
    }
}
