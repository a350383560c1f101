//! Which compositor draws: the GPU path (wgpu) on every real GPU, the CPU path where the only
//! adapter is a software rasteriser (or there is none). `TESSERA_COMPOSITOR` (`auto`, `gpu`,
//! `cpu`) overrides the choice; both draw the same tiles the same way.

use std::str::FromStr;

use super::cpu::CpuCompositor;
use super::device::probe_device_type;
use super::{GpuError, I420Frame, TileDraw, WgpuCompositor};

/// The environment variable that chooses the compositor.
pub const COMPOSITOR_ENV: &str = "TESSERA_COMPOSITOR";

/// The compositor asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompositorBackend {
    /// wgpu when the adapter is a real GPU (integrated, discrete or virtual), else the CPU.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

impl FromStr for CompositorBackend {
    type Err = GpuError;

    fn from_str(s: &str) -> Result<Self, GpuError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(GpuError::UnknownBackend(s.to_owned())),
        }
    }
}

impl CompositorBackend {
    /// The backend `TESSERA_COMPOSITOR` asks for (auto when unset).
    pub fn from_env() -> Result<Self, GpuError> {
        std::env::var(COMPOSITOR_ENV).map_or(Ok(Self::Auto), |v| v.parse())
    }

    /// Auto resolved against this machine's adapter.
    pub fn resolve(self) -> CompositorBackend {
        match self {
            Self::Auto => match probe_device_type() {
                Some(wgpu::DeviceType::Cpu) | None => Self::Cpu,
                Some(_) => Self::Gpu,
            },
            other => other,
        }
    }
}

/// Composes tiles of uploaded I420 frames into NV12 output frames, on the GPU or the CPU.
pub enum Compositor {
    Gpu(Box<WgpuCompositor>),
    Cpu(Box<CpuCompositor>),
}

macro_rules! each {
    ($self:expr, $c:ident => $body:expr) => {
        match $self {
            Compositor::Gpu($c) => $body,
            Compositor::Cpu($c) => $body,
        }
    };
}

impl Compositor {
    /// A compositor for `width x height` output (both even) on the backend
    /// `TESSERA_COMPOSITOR` asks for, by default the GPU unless it is a software one.
    pub fn new(width: u32, height: u32) -> Result<Self, GpuError> {
        Self::with_backend(width, height, CompositorBackend::from_env()?)
    }

    pub fn with_backend(width: u32, height: u32, backend: CompositorBackend) -> Result<Self, GpuError> {
        super::check_output_size(width, height)?;
        Ok(match backend.resolve() {
            CompositorBackend::Cpu => Self::Cpu(Box::new(CpuCompositor::new(width, height)?)),
            _ => Self::Gpu(Box::new(WgpuCompositor::new(width, height)?)),
        })
    }

    /// What draws: the adapter (name / backend / type) or the CPU compositor.
    pub fn adapter_summary(&self) -> String {
        each!(self, c => c.adapter_summary())
    }

    pub fn output_size(&self) -> (u32, u32) {
        each!(self, c => c.output_size())
    }

    /// Uploads the latest frame of `source_id`. Strides may exceed the plane widths.
    pub fn upload(&mut self, source_id: u64, frame: &I420Frame<'_>) -> Result<(), GpuError> {
        each!(self, c => c.upload(source_id, frame))
    }

    /// Forgets a source; unknown ids are ignored.
    pub fn remove_source(&mut self, source_id: u64) {
        each!(self, c => c.remove_source(source_id))
    }

    /// Uploads an RGBA8 image (straight alpha, R'G'B', rows of `width * 4` bytes) as
    /// `image_id`, for `TileContent::Image` tiles. Uploading again replaces it.
    pub fn upload_image(&mut self, image_id: u64, width: u32, height: u32, rgba: &[u8]) -> Result<(), GpuError> {
        each!(self, c => c.upload_image(image_id, width, height, rgba))
    }

    /// Forgets an image; unknown ids are ignored.
    pub fn remove_image(&mut self, image_id: u64) {
        each!(self, c => c.remove_image(image_id))
    }

    pub fn image_size(&self, image_id: u64) -> Option<(u32, u32)> {
        each!(self, c => c.image_size(image_id))
    }

    /// Draws `tiles` in order over `background_rgb` into `out_nv12` (resized to
    /// `W*H + W*H/2` bytes: Y plane, then interleaved CbCr).
    pub fn compose(
        &mut self,
        tiles: &[TileDraw],
        background_rgb: [u8; 3],
        out_nv12: &mut Vec<u8>,
    ) -> Result<(), GpuError> {
        each!(self, c => c.compose(tiles, background_rgb, out_nv12))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_parse_and_unknown_ones_are_named() {
        assert_eq!("auto".parse::<CompositorBackend>().ok(), Some(CompositorBackend::Auto));
        assert_eq!(" GPU ".parse::<CompositorBackend>().ok(), Some(CompositorBackend::Gpu));
        assert_eq!("cpu".parse::<CompositorBackend>().ok(), Some(CompositorBackend::Cpu));
        let err = "vulkan".parse::<CompositorBackend>().expect_err("unknown");
        assert!(err.to_string().contains("`vulkan`"), "{err}");
    }

    #[test]
    fn auto_takes_the_cpu_where_the_adapter_is_a_software_one() {
        // lavapipe here: the CPU path; a machine with a real GPU resolves to the GPU.
        let resolved = CompositorBackend::Auto.resolve();
        match probe_device_type() {
            Some(wgpu::DeviceType::Cpu) | None => assert_eq!(resolved, CompositorBackend::Cpu),
            Some(_) => assert_eq!(resolved, CompositorBackend::Gpu),
        }
    }
}
