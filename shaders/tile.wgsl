// Draws one tile (a pixel-space rectangle) straight into the NV12 planes of the output
// (BT.709, limited range): the luma pass renders into the full-size R8 target, the chroma
// pass into the half-size RG8 target, with the same tile quads.
//
// `fs_solid_*` write the precomputed Y'CbCr of a flat colour. `fs_video_*` bilinearly sample
// the source's Y'CbCr texture (BT.709 Y', Cb, Cr in r, g, b; see source.wgsl).
//
// A chroma texel covers a 2x2 block of output pixels. The chroma pass draws each tile as
// instances of `vs_chroma`: instance 0 is the region of blocks whose four pixel centres are
// all inside the tile (sampled once at the block centre, no blending); instances 1 to 4
// are strips around it, out to one output pixel beyond the tile, drawn by the `_edge`
// shaders: they count which of the block's four pixel centres the tile covers, sample the
// source once at the mean of those centres and blend by that coverage over what lies
// below. Either way a chroma texel is the average of its block, with one sample standing
// in for the covered pixels.
//
// Styled tiles (rounded corners, a border inside the rect) and images take another path,
// `vs_styled` with the `fs_styled_*` shaders, over the rect grown by one pixel (less the
// interior, drawn plainly: see `vs_styled`). Every output pixel gets an anti-aliased coverage of the rounded rect and of the content inside the
// border (from a signed distance at its centre) and is blended as premultiplied Y'CbCr. The
// chroma shaders add up the four pixels of their block the same way (with one content
// sample per block, as above), so a chroma texel is again the average of its block. Images are RGBA8 with premultiplied alpha (R'G'B'),
// converted to BT.709 limited-range Y'CbCr here.

struct Tile {
    // Destination rectangle in output pixels: x, y, width, height (top-left origin).
    rect: vec4<f32>,
    // Source crop in normalized coordinates: x0, y0, x1, y1.
    uv_rect: vec4<f32>,
    // Solid colour as BT.709 limited-range Y', Cb, Cr in 0..1 (w unused).
    color: vec4<f32>,
    // Output size in pixels in xy.
    target_size: vec4<f32>,
    // Styled tiles: corner radius and border width in output pixels (zw unused).
    style: vec4<f32>,
    // Border colour as BT.709 limited-range Y', Cb, Cr in 0..1 (w unused).
    border_color: vec4<f32>,
};

@group(0) @binding(0) var<uniform> tile: Tile;

// A source's Y'CbCr texture, or an image's premultiplied RGBA.
@group(1) @binding(0) var source_ycc: texture_2d<f32>;
@group(1) @binding(1) var source_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Triangle strip of 4 vertices: (0,0) (1,0) (0,1) (1,1) in rectangle space. Positions are
// output pixels mapped to NDC, so the same quad rasterizes into both targets.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let px = tile.rect.xy + corner * tile.rect.zw;
    let ndc = vec2<f32>(
        px.x / tile.target_size.x * 2.0 - 1.0,
        1.0 - px.y / tile.target_size.y * 2.0,
    );
    var out: VsOut;
    out.position = vec4<f32>(ndc, 0.0, 1.0);
    out.uv = mix(tile.uv_rect.xy, tile.uv_rect.zw, corner);
    return out;
}

fn to_ndc(px: vec2<f32>) -> vec4<f32> {
    return vec4<f32>(px.x / tile.target_size.x * 2.0 - 1.0, 1.0 - px.y / tile.target_size.y * 2.0, 0.0, 1.0);
}

@vertex
fn vs_chroma(@builtin(vertex_index) index: u32, @builtin(instance_index) region: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let lo = tile.rect.xy;
    let hi = tile.rect.xy + tile.rect.zw;
    // Rectangles in output pixels: grown (by one pixel) and inner (whole blocks, even bounds).
    let g0 = lo - vec2<f32>(1.0);
    let g1 = hi + vec2<f32>(1.0);
    let i0 = min(2.0 * ceil((lo - vec2<f32>(0.5)) * 0.5), g1);
    let i1 = clamp(2.0 * ceil((hi - vec2<f32>(1.5)) * 0.5), i0, g1);
    var r0 = i0;
    var r1 = i1;
    switch region {
        case 1u: { r0 = g0; r1 = vec2<f32>(g1.x, i0.y); } // top, full width
        case 2u: { r0 = vec2<f32>(g0.x, i1.y); r1 = g1; } // bottom, full width
        case 3u: { r0 = vec2<f32>(g0.x, i0.y); r1 = vec2<f32>(i0.x, i1.y); } // left
        case 4u: { r0 = vec2<f32>(i1.x, i0.y); r1 = vec2<f32>(g1.x, i1.y); } // right
        default: {}
    }
    let px = mix(r0, r1, corner);
    var out: VsOut;
    out.position = to_ndc(px);
    out.uv = mix(tile.uv_rect.xy, tile.uv_rect.zw, (px - lo) / tile.rect.zw);
    return out;
}

struct Coverage {
    // Fraction of the block's four pixel centres inside the tile.
    alpha: f32,
    // Source coordinates of the mean of the covered centres.
    uv: vec2<f32>,
};

fn block_coverage(position: vec2<f32>) -> Coverage {
    let origin = floor(position) * 2.0;
    var count = 0.0;
    var sum = vec2<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let centre = origin + vec2<f32>(f32(i & 1u), f32(i >> 1u)) + vec2<f32>(0.5);
        let inside = all(centre >= tile.rect.xy) && all(centre < tile.rect.xy + tile.rect.zw);
        count += select(0.0, 1.0, inside);
        sum += select(vec2<f32>(0.0), centre, inside);
    }
    let mean = sum / max(count, 1.0);
    let t = (mean - tile.rect.xy) / tile.rect.zw;
    return Coverage(count * 0.25, mix(tile.uv_rect.xy, tile.uv_rect.zw, t));
}

@fragment
fn fs_solid_y(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(tile.color.x, 0.0, 0.0, 1.0);
}

@fragment
fn fs_solid_uv(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(tile.color.yz, 0.0, 1.0);
}

@fragment
fn fs_solid_uv_edge(in: VsOut) -> @location(0) vec4<f32> {
    let cover = block_coverage(in.position.xy);
    if cover.alpha == 0.0 {
        discard;
    }
    return vec4<f32>(tile.color.yz, 0.0, cover.alpha);
}

@fragment
fn fs_video_y(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(source_ycc, source_sampler, in.uv).r, 0.0, 0.0, 1.0);
}

@fragment
fn fs_video_uv(in: VsOut) -> @location(0) vec4<f32> {
    return vec4<f32>(textureSample(source_ycc, source_sampler, in.uv).gb, 0.0, 1.0);
}

@fragment
fn fs_video_uv_edge(in: VsOut) -> @location(0) vec4<f32> {
    let cover = block_coverage(in.position.xy);
    if cover.alpha == 0.0 {
        discard;
    }
    return vec4<f32>(textureSampleLevel(source_ycc, source_sampler, cover.uv, 0.0).gb, 0.0, cover.alpha);
}

// ---- Styled tiles and images ----

const KR: f32 = 0.2126;
const KB: f32 = 0.0722;
const KG: f32 = 0.7152; // 1 - KR - KB

// Instance 0 is the interior of a styled tile or image, where every pixel is wholly content:
// it is drawn by the plain `fs_solid_*` / `fs_video_*` shaders (unblended) or `fs_image_*`
// (blended by the image's alpha), without the per-pixel shape. Instances 1 to 4 are the
// strips around it out to one pixel beyond the rect (as in `vs_chroma`), drawn by the blended
// `fs_styled_*` shaders. The interior's bounds are even output pixels: whole chroma blocks.
@vertex
fn vs_styled(@builtin(vertex_index) index: u32, @builtin(instance_index) region: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32((index >> 1u) & 1u));
    let lo = tile.rect.xy;
    let hi = tile.rect.xy + tile.rect.zw;
    let g0 = lo - vec2<f32>(1.0);
    let g1 = hi + vec2<f32>(1.0);
    // Beyond the corner radius and the border (and half a pixel of anti-aliasing) from the
    // edges, coverage and content coverage are both exactly 1 (see `shape_at`).
    let half_min = 0.5 * min(tile.rect.z, tile.rect.w);
    let margin = vec2<f32>(max(clamp(tile.style.x, 0.0, half_min), clamp(tile.style.y, 0.0, half_min)) + 1.0);
    let i0 = min(2.0 * ceil((lo + margin) * 0.5), g1);
    let i1 = clamp(2.0 * floor((hi - margin) * 0.5), i0, g1);
    var r0 = i0;
    var r1 = i1;
    switch region {
        case 1u: { r0 = g0; r1 = vec2<f32>(g1.x, i0.y); } // top, full width
        case 2u: { r0 = vec2<f32>(g0.x, i1.y); r1 = g1; } // bottom, full width
        case 3u: { r0 = vec2<f32>(g0.x, i0.y); r1 = vec2<f32>(i0.x, i1.y); } // left
        case 4u: { r0 = vec2<f32>(i1.x, i0.y); r1 = vec2<f32>(g1.x, i1.y); } // right
        default: {}
    }
    let px = mix(r0, r1, corner);
    var out: VsOut;
    out.position = to_ndc(px);
    out.uv = uv_at(px);
    return out;
}

// Signed distance in pixels from `p` to the box `lo..hi` with corners rounded by `radius`
// (negative inside).
fn rounded_box_distance(p: vec2<f32>, lo: vec2<f32>, hi: vec2<f32>, radius: f32) -> f32 {
    let half = (hi - lo) * 0.5;
    let q = abs(p - (lo + hi) * 0.5) - half + vec2<f32>(radius);
    return length(max(q, vec2<f32>(0.0))) + min(max(q.x, q.y), 0.0) - radius;
}

struct Shape {
    // Coverage of the pixel by the rounded rect.
    outer: f32,
    // Coverage by the content inside the border (at most `outer`); the rest is border.
    inner: f32,
};

fn shape_at(p: vec2<f32>) -> Shape {
    let lo = tile.rect.xy;
    let hi = lo + tile.rect.zw;
    let half_min = 0.5 * min(tile.rect.z, tile.rect.w);
    let radius = clamp(tile.style.x, 0.0, half_min);
    let outer = clamp(0.5 - rounded_box_distance(p, lo, hi, radius), 0.0, 1.0);
    let border = clamp(tile.style.y, 0.0, half_min);
    if border <= 0.0 {
        return Shape(outer, outer);
    }
    let b = vec2<f32>(border);
    var inner = 0.0;
    if all(hi - b > lo + b) {
        inner = clamp(0.5 - rounded_box_distance(p, lo + b, hi - b, max(radius - border, 0.0)), 0.0, 1.0);
    }
    return Shape(outer, min(inner, outer));
}

// Source (or image) coordinates of output point `p`.
fn uv_at(p: vec2<f32>) -> vec2<f32> {
    return mix(tile.uv_rect.xy, tile.uv_rect.zw, (p - tile.rect.xy) / tile.rect.zw);
}

// Premultiplied R'G'B'A to premultiplied BT.709 limited-range Y'CbCrA (the offsets scale
// with alpha).
fn premultiplied_ycc(c: vec4<f32>) -> vec4<f32> {
    let y = dot(c.rgb, vec3<f32>(KR, KG, KB));
    let cb = (c.b - y) / (2.0 * (1.0 - KB));
    let cr = (c.r - y) / (2.0 * (1.0 - KR));
    return vec4<f32>(
        (16.0 * c.a + 219.0 * y) / 255.0,
        (128.0 * c.a + 224.0 * cb) / 255.0,
        (128.0 * c.a + 224.0 * cr) / 255.0,
        c.a,
    );
}

fn image_at(p: vec2<f32>) -> vec4<f32> {
    return premultiplied_ycc(textureSampleLevel(source_ycc, source_sampler, uv_at(p), 0.0));
}

// Premultiplied Y'CbCrA of one pixel: `content` (premultiplied) inside the border, the
// border colour between the content and the outline.
fn styled(content: vec4<f32>, shape: Shape) -> vec4<f32> {
    let border = shape.outer - shape.inner;
    return vec4<f32>(shape.inner * content.xyz + border * tile.border_color.xyz, shape.inner * content.w + border);
}

fn luma_out(c: vec4<f32>) -> vec4<f32> {
    if c.w <= 0.0 {
        discard;
    }
    return vec4<f32>(c.x, 0.0, 0.0, c.w);
}

fn chroma_out(sum: vec4<f32>) -> vec4<f32> {
    if sum.w <= 0.0 {
        discard;
    }
    return vec4<f32>(sum.yz * 0.25, 0.0, sum.w * 0.25);
}

// Centre of pixel `i` (0..4) of the 2x2 block of the chroma texel at `position`.
fn block_centre(position: vec2<f32>, i: u32) -> vec2<f32> {
    return floor(position) * 2.0 + vec2<f32>(f32(i & 1u), f32(i >> 1u)) + vec2<f32>(0.5);
}

// The interior of an image: its own alpha, no shape.
@fragment
fn fs_image_y(in: VsOut) -> @location(0) vec4<f32> {
    return luma_out(premultiplied_ycc(textureSampleLevel(source_ycc, source_sampler, in.uv, 0.0)));
}

// The interior of an image in chroma: one bilinear sample at the block centre.
@fragment
fn fs_image_uv(in: VsOut) -> @location(0) vec4<f32> {
    let c = premultiplied_ycc(textureSampleLevel(source_ycc, source_sampler, in.uv, 0.0));
    return chroma_out(vec4<f32>(c.xyz * 4.0, c.w * 4.0));
}

@fragment
fn fs_styled_y_solid(in: VsOut) -> @location(0) vec4<f32> {
    return luma_out(styled(vec4<f32>(tile.color.xyz, 1.0), shape_at(in.position.xy)));
}

@fragment
fn fs_styled_y_video(in: VsOut) -> @location(0) vec4<f32> {
    let p = in.position.xy;
    let ycc = textureSampleLevel(source_ycc, source_sampler, uv_at(p), 0.0).rgb;
    return luma_out(styled(vec4<f32>(ycc, 1.0), shape_at(p)));
}

@fragment
fn fs_styled_y_image(in: VsOut) -> @location(0) vec4<f32> {
    let p = in.position.xy;
    return luma_out(styled(image_at(p), shape_at(p)));
}

@fragment
fn fs_styled_uv_solid(in: VsOut) -> @location(0) vec4<f32> {
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        sum += styled(vec4<f32>(tile.color.xyz, 1.0), shape_at(block_centre(in.position.xy, i)));
    }
    return chroma_out(sum);
}

// One video (or image) sample per chroma texel, at the mean of the block's pixel centres
// weighted by their content coverage: a block wholly inside reads exactly what `fs_video_uv`
// reads, and an image drawn at its own size on even pixels is box-filtered by the bilinear
// sample at the block centre.
fn content_uv(position: vec2<f32>, shapes: ptr<function, array<Shape, 4>>) -> vec2<f32> {
    var inner = 0.0;
    var weighted = vec2<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        let centre = block_centre(position, i);
        (*shapes)[i] = shape_at(centre);
        inner += (*shapes)[i].inner;
        weighted += centre * (*shapes)[i].inner;
    }
    let mean = select(floor(position) * 2.0 + vec2<f32>(1.0), weighted / inner, inner > 0.0);
    return uv_at(mean);
}

fn styled_block(content: vec4<f32>, shapes: ptr<function, array<Shape, 4>>) -> vec4<f32> {
    var sum = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        sum += styled(content, (*shapes)[i]);
    }
    return chroma_out(sum);
}

@fragment
fn fs_styled_uv_video(in: VsOut) -> @location(0) vec4<f32> {
    var shapes: array<Shape, 4>;
    let uv = content_uv(in.position.xy, &shapes);
    let ycc = textureSampleLevel(source_ycc, source_sampler, uv, 0.0).rgb;
    return styled_block(vec4<f32>(ycc, 1.0), &shapes);
}

@fragment
fn fs_styled_uv_image(in: VsOut) -> @location(0) vec4<f32> {
    var shapes: array<Shape, 4>;
    let uv = content_uv(in.position.xy, &shapes);
    return styled_block(premultiplied_ycc(textureSampleLevel(source_ycc, source_sampler, uv, 0.0)), &shapes);
}
