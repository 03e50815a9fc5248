//! A plotters backend that draws into an RGB buffer and writes it as PNG,
//! with text set in a TrueType font found on the system.
//!
//! plotters' own bitmap backend sets text through either font-kit (which
//! needs the system's fontconfig and freetype) or its `ab_glyph` feature,
//! which makes every backend, the SVG one included, fail when no font is
//! registered. Drawing text here, with `ab_glyph` on this backend only,
//! keeps the SVG plot working on a machine without fonts, and the PNG
//! plot is drawn where a font exists ("where fonts allow").

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use plotters::prelude::*;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

/// The environment variable naming the font file for PNG plots; `none`
/// turns PNG plots off.
pub const FONT_VAR: &str = "SOLSTICE_GPT_FONT";

/// Where common systems keep a sans-serif TrueType font.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// A font for PNG text, or why there is none.
#[derive(Clone)]
pub enum PlotFont {
    /// The font.
    Found(Arc<FontVec>),
    /// Why PNG plots are not drawn.
    Missing(String),
}

impl PlotFont {
    /// The font named by [`FONT_VAR`], or else the first of the usual
    /// system fonts that loads.
    pub fn find() -> PlotFont {
        match std::env::var_os(FONT_VAR) {
            Some(v) if v == "none" => PlotFont::Missing(format!("{FONT_VAR}=none")),
            Some(v) => {
                let path = PathBuf::from(v);
                load(&path).unwrap_or_else(|why| {
                    PlotFont::Missing(format!("{FONT_VAR}={}: {why}", path.display()))
                })
            }
            None => FONT_CANDIDATES
                .iter()
                .find_map(|p| load(Path::new(p)).ok())
                .unwrap_or_else(|| {
                    PlotFont::Missing(format!(
                        "no TrueType font found; set {FONT_VAR} to a .ttf file"
                    ))
                }),
        }
    }
}

fn load(path: &Path) -> Result<PlotFont, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let font = FontVec::try_from_vec(bytes).map_err(|_| "not a TrueType font".to_string())?;
    Ok(PlotFont::Found(Arc::new(font)))
}

/// An RGB image being drawn; [`Raster::write_png`] saves it.
pub struct Raster {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    font: Arc<FontVec>,
}

/// A raster never fails to draw; this is the error type plotters asks for.
#[derive(Debug)]
pub struct RasterError;

impl fmt::Display for RasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raster drawing error")
    }
}

impl std::error::Error for RasterError {}

impl Raster {
    /// A white `width` x `height` image whose text is set in `font`.
    pub fn new(width: u32, height: u32, font: Arc<FontVec>) -> Raster {
        Raster {
            width,
            height,
            rgb: vec![255; width as usize * height as usize * 3],
            font,
        }
    }

    /// Encodes the image as an 8-bit RGB PNG into `out`.
    pub fn write_png(&self, out: impl Write) -> Result<(), png::EncodingError> {
        let mut encoder = png::Encoder::new(BufWriter::new(out), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&self.rgb)
    }

    fn blend(&mut self, (x, y): BackendCoord, color: BackendColor, coverage: f64) {
        if x < 0 || y < 0 || x >= self.width as i32 || y >= self.height as i32 {
            return;
        }
        let alpha = (color.alpha * coverage).clamp(0.0, 1.0);
        let at = (y as usize * self.width as usize + x as usize) * 3;
        let (r, g, b) = color.rgb;
        for (slot, value) in self.rgb[at..at + 3].iter_mut().zip([r, g, b]) {
            *slot = (*slot as f64 * (1.0 - alpha) + value as f64 * alpha).round() as u8;
        }
    }

    /// The text's width and the font's ascent and descent at `size`.
    fn measure(&self, text: &str, size: f64) -> (f32, f32, f32) {
        let font = self.font.as_scaled(PxScale::from(size as f32));
        let mut width = 0.0;
        let mut previous = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = previous {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        (width, font.ascent(), font.descent())
    }
}

/// On a borrowed raster, so that it can be encoded after plotters, which
/// owns its backend, is done drawing.
impl DrawingBackend for &mut Raster {
    type ErrorType = RasterError;

    fn get_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<RasterError>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<RasterError>> {
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<RasterError>> {
        self.blend(point, color, 1.0);
        Ok(())
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<RasterError>> {
        let (width, ascent, descent) = self.measure(text, style.size());
        Ok((width.ceil() as u32, (ascent - descent).ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<RasterError>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size();
        let (width, ascent, descent) = self.measure(text, size);
        let height = ascent - descent;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Right => -width,
            HPos::Center => -width / 2.0,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let font = Arc::clone(&self.font);
        let scaled = font.as_scaled(PxScale::from(size as f32));
        let mut caret = 0.0;
        let mut previous = None;
        let mut coverage_at = Vec::new();
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scaled.scale(), point(caret, ascent));
            caret += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let x = (bounds.min.x + gx as f32 + dx).round() as i32;
                let y = (bounds.min.y + gy as f32 + dy).round() as i32;
                coverage_at.push((x, y, coverage));
            });
        }
        for (x, y, coverage) in coverage_at {
            let (x, y) = transform.transform(x, y);
            self.blend((pos.0 + x, pos.1 + y), color, coverage as f64);
        }
        Ok(())
    }
}
