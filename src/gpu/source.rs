//! Per-source plane textures: validation of an [`I420Frame`] and its upload into three
//! R8 textures (Y full size, U and V at `ceil(w/2) x ceil(h/2)`).

use super::{ColorMatrix, GpuError, I420Frame};

/// The three plane textures of one source and the bind group that samples them.
pub(crate) struct SourceTextures {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) matrix: ColorMatrix,
    planes: [wgpu::Texture; 3],
    pub(crate) bind_group: wgpu::BindGroup,
}

/// Size and data of one plane, checked against its stride.
struct PlaneCheck<'a> {
    data: &'a [u8],
    stride: usize,
    width: u32,
    height: u32,
}

const PLANE_NAMES: [&str; 3] = ["y", "u", "v"];

/// Checks the frame's dimensions, strides and plane lengths; returns the three planes
/// trimmed to exactly the bytes a copy reads (`stride * (rows - 1) + row_width`).
fn check_frame<'a>(source_id: u64, frame: &I420Frame<'a>, max_dim: u32) -> Result<[PlaneCheck<'a>; 3], GpuError> {
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
        layout: &wgpu::BindGroupLayout,
        sampler: &wgpu::Sampler,
        source_id: u64,
        frame: &I420Frame<'_>,
    ) -> Result<Self, GpuError> {
        let planes = check_frame(source_id, frame, device.limits().max_texture_dimension_2d)?;
        let make = |plane: &PlaneCheck<'_>, name: &str| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(&format!("tessera.gpu.source{source_id}.{name}")),
                size: wgpu::Extent3d { width: plane.width, height: plane.height, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let textures =
            [make(&planes[0], PLANE_NAMES[0]), make(&planes[1], PLANE_NAMES[1]), make(&planes[2], PLANE_NAMES[2])];
        let views = textures.each_ref().map(|t| {
            t.create_view(&wgpu::TextureViewDescriptor {
                label: Some("tessera.gpu.source.plane_view"),
                ..Default::default()
            })
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("tessera.gpu.source{source_id}.bind_group")),
            layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&views[0]) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&views[1]) },
                wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&views[2]) },
                wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::Sampler(sampler) },
            ],
        });
        let source =
            Self { width: frame.width, height: frame.height, matrix: frame.matrix, planes: textures, bind_group };
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
        Ok(())
    }

    fn write_planes(&self, queue: &wgpu::Queue, planes: &[PlaneCheck<'_>; 3]) {
        let mut packed = Vec::new();
        for (texture, plane) in self.planes.iter().zip(planes) {
            // A stride that does not fit the copy layout's u32 is repacked tightly.
            let (data, bytes_per_row) = match u32::try_from(plane.stride) {
                Ok(stride) => (plane.data, stride),
                Err(_) => {
                    packed.clear();
                    let w = plane.width as usize;
                    for row in plane.data.chunks(plane.stride) {
                        packed.extend_from_slice(&row[..w.min(row.len())]);
                    }
                    (&packed[..], plane.width)
                }
            };
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                data,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(bytes_per_row), rows_per_image: None },
                wgpu::Extent3d { width: plane.width, height: plane.height, depth_or_array_layers: 1 },
            );
        }
    }
}
