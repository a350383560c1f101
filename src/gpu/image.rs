//! RGBA images drawn by `TileContent::Image` tiles (name labels, avatars): validation, the
//! conversion to premultiplied alpha, and one RGBA8 texture per image, bound like a source's
//! Y'CbCr texture so the tile shaders sample both the same way.

use super::GpuError;
use super::source::SourceConverter;

/// The texture of one uploaded image and the bind group that samples it.
pub(crate) struct ImageTexture {
    pub(crate) width: u32,
    pub(crate) height: u32,
    texture: wgpu::Texture,
    pub(crate) bind_group: wgpu::BindGroup,
    /// Premultiplied copy of the latest pixels (reused between uploads of the same size).
    staging: Vec<u8>,
}

/// Checks the size against the device limit and the pixel count against the size.
pub(crate) fn check_image(image_id: u64, width: u32, height: u32, rgba: &[u8], max_dim: u32) -> Result<(), GpuError> {
    let bad = |reason: String| GpuError::BadImage { image_id, reason };
    if width == 0 || height == 0 {
        return Err(bad(format!("image size {width}x{height} is empty")));
    }
    if width > max_dim || height > max_dim {
        return Err(bad(format!("image size {width}x{height} exceeds the device limit of {max_dim} pixels per side")));
    }
    let expected = width as usize * height as usize * 4;
    if rgba.len() != expected {
        return Err(bad(format!("{} bytes of RGBA, expected {width}x{height}x4 = {expected}", rgba.len())));
    }
    Ok(())
}

/// Straight alpha to premultiplied alpha (rounded), so that bilinear sampling does not bleed
/// the colour of transparent pixels into the edges.
pub(crate) fn premultiply(rgba: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(rgba.len());
    for px in rgba.chunks_exact(4) {
        let a = u32::from(px[3]);
        let scale = |c: u8| ((u32::from(c) * a + 127) / 255) as u8;
        out.extend_from_slice(&[scale(px[0]), scale(px[1]), scale(px[2]), px[3]]);
    }
}

impl ImageTexture {
    /// Creates the texture of a `width x height` image and uploads `rgba` (straight alpha,
    /// tightly packed rows).
    pub(crate) fn create(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        converter: &SourceConverter,
        image_id: u64,
        width: u32,
        height: u32,
        rgba: &[u8],
    ) -> Result<Self, GpuError> {
        check_image(image_id, width, height, rgba, device.limits().max_texture_dimension_2d)?;
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some(&format!("tessera.gpu.image{image_id}")),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("tessera.gpu.image{image_id}.bind_group")),
            layout: &converter.ycc_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&view) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(&converter.sampler) },
            ],
        });
        let mut image = Self { width, height, texture, bind_group, staging: Vec::new() };
        image.write(queue, rgba);
        Ok(image)
    }

    /// Replaces the pixels of an image of the same size.
    pub(crate) fn update(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        image_id: u64,
        rgba: &[u8],
    ) -> Result<(), GpuError> {
        check_image(image_id, self.width, self.height, rgba, device.limits().max_texture_dimension_2d)?;
        self.write(queue, rgba);
        Ok(())
    }

    fn write(&mut self, queue: &wgpu::Queue, rgba: &[u8]) {
        premultiply(rgba, &mut self.staging);
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &self.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &self.staging,
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(self.width * 4), rows_per_image: None },
            wgpu::Extent3d { width: self.width, height: self.height, depth_or_array_layers: 1 },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplies_with_rounding() {
        let mut out = Vec::new();
        premultiply(&[255, 128, 0, 255, 255, 128, 0, 128, 200, 200, 200, 0], &mut out);
        assert_eq!(out, [255, 128, 0, 255, 128, 64, 0, 128, 0, 0, 0, 0]);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        let ok = vec![0u8; 2 * 3 * 4];
        assert!(check_image(1, 2, 3, &ok, 8192).is_ok());
        for (w, h, len, max) in [(0, 3, 0, 8192), (2, 3, 23, 8192), (2, 3, 25, 8192), (2, 3, 24, 2)] {
            let data = vec![0u8; len];
            let err = check_image(9, w, h, &data, max);
            assert!(matches!(err, Err(GpuError::BadImage { image_id: 9, .. })), "{w}x{h} {len}: {err:?}");
        }
    }
}
