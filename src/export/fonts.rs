//! Finding, measuring and subsetting the Unicode TrueType font PDF output is set in.
//!
//! Lookup order (first hit wins), documented in `templates/fonts/README.md`:
//! 1. `export.pdf_font` (a file path; an unreadable configured font is an error, not skipped);
//! 2. `export.font_dir` (default `./templates/fonts`): `DejaVuSans.ttf` if present, else the
//!    first `*.ttf`/`*.otf` in name order;
//! 3. common system locations ([`SYSTEM_FONTS`]).
//!
//! printpdf 0.12 only subsets fonts with its heavy `text_layout` feature (azul layout
//! engine); without it, it embeds whatever font bytes it is given. So hearth subsets
//! itself with allsorts (already a printpdf dependency) and hands printpdf the subset:
//! an export embeds only the glyphs it uses.

use super::error::ExportError;
use printpdf::ParsedFont;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// System font files tried last, in order.
pub const SYSTEM_FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// A parsed font with its metrics, ready to measure text and produce subsets.
pub struct LoadedFont {
    /// Where it was loaded from.
    pub path: PathBuf,
    bytes: Vec<u8>,
    cmap: BTreeMap<u32, u16>,
    widths: BTreeMap<u16, u16>,
    units_per_em: f32,
    /// Ascender in font units (positive).
    pub ascent: f32,
    /// Descender in font units (negative).
    pub descent: f32,
}

impl std::fmt::Debug for LoadedFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedFont").field("path", &self.path).field("bytes", &self.bytes.len()).finish()
    }
}

impl LoadedFont {
    /// Parses a TrueType/OpenType file.
    pub fn load(path: &Path) -> Result<LoadedFont, ExportError> {
        let bytes = std::fs::read(path).map_err(|e| ExportError::Font(format!("{}: {e}", path.display())))?;
        let parsed = ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
            .ok_or_else(|| ExportError::Font(format!("{}: not a usable TrueType/OpenType font", path.display())))?;
        if parsed.codepoint_to_glyph.is_empty() {
            return Err(ExportError::Font(format!("{}: font has no Unicode cmap", path.display())));
        }
        Ok(LoadedFont {
            path: path.to_path_buf(),
            cmap: parsed.codepoint_to_glyph,
            widths: parsed.glyph_widths,
            units_per_em: f32::from(parsed.units_per_em.max(1)),
            ascent: f32::from(parsed.font_metrics.ascent),
            descent: f32::from(parsed.font_metrics.descent),
            bytes,
        })
    }

    /// Whether the font has a glyph for `c`.
    pub fn has_glyph(&self, c: char) -> bool {
        self.cmap.get(&(c as u32)).is_some_and(|g| *g != 0)
    }

    /// Advance width of `c` in em (1.0 = font size); unknown glyphs measure as `.notdef`.
    pub fn advance(&self, c: char) -> f32 {
        let gid = self.cmap.get(&(c as u32)).copied().unwrap_or(0);
        f32::from(self.widths.get(&gid).copied().unwrap_or(0)) / self.units_per_em
    }

    /// Width of `text` at `size` points.
    pub fn width(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// Line height in em (ascent - descent), at least 1.15.
    pub fn line_height(&self) -> f32 {
        ((self.ascent - self.descent) / self.units_per_em).max(1.15)
    }

    /// A font containing only the glyphs of `chars` (plus `.notdef`), parsed for printpdf.
    pub fn subset(&self, chars: &BTreeSet<char>) -> Result<ParsedFont, ExportError> {
        use allsorts::binary::read::ReadScope;
        use allsorts::font_data::FontData;
        use allsorts::subset::{CmapTarget, SubsetProfile, subset};
        let gids: BTreeSet<u16> = chars.iter().filter_map(|c| self.cmap.get(&(*c as u32)).copied()).filter(|g| *g != 0).collect();
        let ids: Vec<u16> = std::iter::once(0).chain(gids).collect();
        let err = |e: &dyn std::fmt::Display| ExportError::Font(format!("{}: subsetting failed: {e}", self.path.display()));
        let data = ReadScope::new(&self.bytes).read::<FontData<'_>>().map_err(|e| err(&e))?;
        let provider = data.table_provider(0).map_err(|e| err(&e))?;
        let bytes = subset(&provider, &ids, &SubsetProfile::Pdf, CmapTarget::Unicode).map_err(|e| err(&e))?;
        ParsedFont::from_bytes(&bytes, 0, &mut Vec::new()).ok_or_else(|| err(&"subset font does not parse"))
    }
}

/// Resolves the PDF font once and caches it (or the reason there is none).
pub struct FontProvider {
    configured: Option<PathBuf>,
    font_dir: Option<PathBuf>,
    loaded: OnceLock<Result<Arc<LoadedFont>, ExportError>>,
}

impl std::fmt::Debug for FontProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FontProvider").field("configured", &self.configured).field("font_dir", &self.font_dir).finish()
    }
}

impl FontProvider {
    /// A provider for the configured font path and font directory (both optional).
    pub fn new(configured: Option<PathBuf>, font_dir: Option<PathBuf>) -> Self {
        FontProvider { configured, font_dir, loaded: OnceLock::new() }
    }

    /// The font file that would be used, without parsing it.
    pub fn locate(&self) -> Result<PathBuf, ExportError> {
        if let Some(p) = &self.configured {
            return Ok(p.clone());
        }
        if let Some(dir) = &self.font_dir
            && let Ok(rd) = std::fs::read_dir(dir)
        {
            let mut files: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"))
                })
                .collect();
            files.sort();
            if let Some(p) = files.iter().find(|p| p.file_name().is_some_and(|n| n == "DejaVuSans.ttf")).or(files.first()) {
                return Ok(p.clone());
            }
        }
        SYSTEM_FONTS.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| {
            ExportError::Font("no font found: set export.pdf_font, put a .ttf into export.font_dir, or install fonts-dejavu-core".into())
        })
    }

    /// The parsed font (loaded on first use, then cached).
    pub fn get(&self) -> Result<Arc<LoadedFont>, ExportError> {
        self.loaded.get_or_init(|| self.locate().and_then(|p| LoadedFont::load(&p)).map(Arc::new)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_font_measures_and_subsets_small() {
        let fonts = FontProvider::new(None, None);
        let f = fonts.get().expect("a system font (fonts-dejavu-core) must be installed");
        assert!(f.has_glyph('ü') && f.has_glyph('é'));
        assert!(f.width("WWW", 10.0) > f.width("iii", 10.0));
        let chars: BTreeSet<char> = "Grüße aus München, café".chars().collect();
        let sub = f.subset(&chars).unwrap();
        assert!(sub.original_bytes.len() < 40_000, "subset is {} bytes", sub.original_bytes.len());
        for c in chars.iter().filter(|c| **c != ' ') {
            assert!(sub.lookup_glyph_index(*c as u32).is_some_and(|g| g != 0), "{c} lost in subset");
        }
    }

    #[test]
    fn configured_missing_font_is_an_error() {
        let fonts = FontProvider::new(Some("/nonexistent/font.ttf".into()), None);
        assert!(matches!(fonts.get(), Err(ExportError::Font(_))));
    }
}
