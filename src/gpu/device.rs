//! Adapter and device acquisition, plus error-scope helpers that turn wgpu validation
//! errors into [`GpuError`] values instead of the default panic.

use std::sync::{Arc, Mutex};

use super::GpuError;

/// The process's one device, opened by the first compositor and shared by every later one.
static SHARED: Mutex<Option<Arc<GpuContext>>> = Mutex::new(None);

/// The opened GPU: adapter, device and queue.
pub(crate) struct GpuContext {
    pub(crate) adapter_info: wgpu::AdapterInfo,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
}

/// The kind of the adapter wgpu would open (`None` when there is none), asked once per
/// process without opening a device.
pub(crate) fn probe_device_type() -> Option<wgpu::DeviceType> {
    static PROBED: std::sync::OnceLock<Option<wgpu::DeviceType>> = std::sync::OnceLock::new();
    *PROBED.get_or_init(|| {
        let (instance, options) = adapter_request();
        let adapter = pollster::block_on(instance.request_adapter(&options));
        match adapter {
            Ok(adapter) => {
                let info = adapter.get_info();
                tracing::debug!(adapter = %summary(&info), "probed GPU adapter");
                Some(info.device_type)
            }
            Err(err) => {
                tracing::info!(error = %err, "no GPU adapter");
                None
            }
        }
    })
}

/// The instance and adapter options every open and probe uses: wgpu's environment variables
/// (`WGPU_BACKEND`, `WGPU_POWER_PREF`, ...), high performance by default.
fn adapter_request() -> (wgpu::Instance, wgpu::RequestAdapterOptions<'static, 'static>) {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let power_preference = wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance);
    let options = wgpu::RequestAdapterOptions {
        power_preference,
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    };
    (instance, options)
}

impl GpuContext {
    /// Opens the default adapter (honouring `WGPU_BACKEND`, `WGPU_POWER_PREF` and the other
    /// wgpu environment variables) with default limits and no optional features.
    pub(crate) fn new() -> Result<Self, GpuError> {
        let (instance, options) = adapter_request();
        let adapter = pollster::block_on(instance.request_adapter(&options))?;
        let adapter_info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tessera.gpu.device"),
            required_features: wgpu::Features::empty(),
            required_limits: wgpu::Limits::default(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))?;
        // Errors outside an error scope must never abort the process: log them instead.
        device.on_uncaptured_error(Arc::new(|err: wgpu::Error| {
            tracing::error!(error = %err, "uncaptured wgpu error");
        }));
        tracing::debug!(adapter = %summary(&adapter_info), "opened GPU device");
        Ok(Self { adapter_info, device, queue })
    }

    /// The process's device: opened on first use (a failure is returned and tried again next
    /// time), then shared by every compositor.
    pub(crate) fn shared() -> Result<Arc<Self>, GpuError> {
        let mut shared = SHARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(gpu) = shared.as_ref() {
            return Ok(Arc::clone(gpu));
        }
        let gpu = Arc::new(Self::new()?);
        *shared = Some(Arc::clone(&gpu));
        Ok(gpu)
    }

    pub(crate) fn adapter_summary(&self) -> String {
        summary(&self.adapter_info)
    }
}

fn summary(info: &wgpu::AdapterInfo) -> String {
    format!("{} / {:?} / {:?}", info.name, info.backend, info.device_type)
}

/// Error scopes that catch validation and out-of-memory errors of a block of GPU work.
pub(crate) struct ErrorScopes {
    validation: wgpu::ErrorScopeGuard,
    oom: wgpu::ErrorScopeGuard,
}

impl ErrorScopes {
    pub(crate) fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        Self { validation, oom }
    }

    /// Pops both scopes (innermost first) and reports the first captured error.
    pub(crate) fn pop(self) -> Result<(), GpuError> {
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        match validation.or(oom) {
            Some(err) => Err(GpuError::Wgpu(err.to_string())),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_become_gpu_errors() {
        let gpu = match GpuContext::new() {
            Ok(gpu) => gpu,
            Err(err) => panic!("GPU unavailable (lavapipe expected): {err}"),
        };
        let scopes = ErrorScopes::push(&gpu.device);
        // MAP_READ may only be combined with COPY_DST: a validation error, not a panic.
        let _buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tessera.gpu.test.invalid_buffer"),
            size: 256,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: false,
        });
        assert!(matches!(scopes.pop(), Err(GpuError::Wgpu(_))));
        assert!(ErrorScopes::push(&gpu.device).pop().is_ok());
    }
}
