//! The NV12 render targets (an R8 luma target and a half-size RG8 chroma target) and the
//! readback of both planes into a tightly packed byte vector.

use std::sync::mpsc;

use super::GpuError;

pub(crate) const Y_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::R8Unorm;
pub(crate) const UV_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rg8Unorm;

/// The render targets of the two NV12 planes for one output size, and their readback buffer.
pub(crate) struct Nv12Target {
    width: u32,
    height: u32,
    y_texture: wgpu::Texture,
    pub(crate) y_view: wgpu::TextureView,
    uv_texture: wgpu::Texture,
    pub(crate) uv_view: wgpu::TextureView,
    buffer: wgpu::Buffer,
    /// Padded bytes per row of the luma rows in `buffer`.
    y_bytes_per_row: u32,
    /// Padded bytes per row of the chroma rows in `buffer`.
    uv_bytes_per_row: u32,
    /// Offset of the chroma plane in `buffer`.
    uv_offset: u64,
}

fn padded_row(bytes: u32) -> u32 {
    bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

fn target(device: &wgpu::Device, label: &str, format: wgpu::TextureFormat, w: u32, h: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

impl Nv12Target {
    /// `width` and `height` are even.
    pub(crate) fn new(device: &wgpu::Device, width: u32, height: u32) -> Self {
        let y_texture = target(device, "tessera.gpu.nv12.y_target", Y_FORMAT, width, height);
        let uv_texture = target(device, "tessera.gpu.nv12.uv_target", UV_FORMAT, width / 2, height / 2);
        let y_view = y_texture
            .create_view(&wgpu::TextureViewDescriptor { label: Some("tessera.gpu.nv12.y_view"), ..Default::default() });
        let uv_view = uv_texture.create_view(&wgpu::TextureViewDescriptor {
            label: Some("tessera.gpu.nv12.uv_view"),
            ..Default::default()
        });

        // Luma rows are `width` bytes; chroma rows are `width / 2` RG8 texels = `width` bytes.
        let y_bytes_per_row = padded_row(width);
        let uv_bytes_per_row = padded_row(width);
        let uv_offset = u64::from(y_bytes_per_row) * u64::from(height);
        let size = uv_offset + u64::from(uv_bytes_per_row) * u64::from(height / 2);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tessera.gpu.nv12.readback"),
            size,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        Self {
            width,
            height,
            y_texture,
            y_view,
            uv_texture,
            uv_view,
            buffer,
            y_bytes_per_row,
            uv_bytes_per_row,
            uv_offset,
        }
    }

    /// Records the copies of both planes into the readback buffer (after the tile passes).
    pub(crate) fn encode_copy(&self, encoder: &mut wgpu::CommandEncoder) {
        let copies = [
            (&self.y_texture, 0, self.y_bytes_per_row, self.width, self.height),
            (&self.uv_texture, self.uv_offset, self.uv_bytes_per_row, self.width / 2, self.height / 2),
        ];
        for (texture, offset, bytes_per_row, w, h) in copies {
            encoder.copy_texture_to_buffer(
                wgpu::TexelCopyTextureInfo {
                    texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::TexelCopyBufferInfo {
                    buffer: &self.buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset,
                        bytes_per_row: Some(bytes_per_row),
                        rows_per_image: None,
                    },
                },
                wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
            );
        }
    }

    /// Waits for the submitted work, maps the readback buffer and copies both planes into
    /// `out` without row padding (`out` ends up exactly `W*H + W*H/2` bytes long).
    pub(crate) fn read(&self, device: &wgpu::Device, out: &mut Vec<u8>) -> Result<(), GpuError> {
        let (tx, rx) = mpsc::channel();
        self.buffer.map_async(wgpu::MapMode::Read, .., move |result| {
            // The receiver lives until after the poll below; a send error cannot matter.
            let _ = tx.send(result);
        });
        device.poll(wgpu::PollType::wait_indefinitely())?;
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(GpuError::Map(err.to_string())),
            Err(_) => return Err(GpuError::Map("map callback was never called".to_owned())),
        }
        let result = self.copy_out(out);
        self.buffer.unmap();
        result
    }

    fn copy_out(&self, out: &mut Vec<u8>) -> Result<(), GpuError> {
        let view = self.buffer.get_mapped_range(..).map_err(|err| GpuError::Map(err.to_string()))?;
        let (w, h) = (self.width as usize, self.height as usize);
        out.clear();
        out.reserve(w * h + w * h / 2);
        let planes = [
            (0usize, self.y_bytes_per_row as usize, h),
            (self.uv_offset as usize, self.uv_bytes_per_row as usize, h / 2),
        ];
        for (offset, bytes_per_row, rows) in planes {
            let plane = view
                .get(offset..offset + bytes_per_row * rows)
                .ok_or_else(|| GpuError::Map("readback buffer is too small".to_owned()))?;
            for row in plane.chunks_exact(bytes_per_row) {
                out.extend_from_slice(&row[..w]);
            }
        }
        Ok(())
    }
}
