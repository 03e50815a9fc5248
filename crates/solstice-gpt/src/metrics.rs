//! The run's record: `metrics.jsonl` (one JSON object per line) and the loss
//! curves drawn into `loss.svg`, and into `loss.png` where a font for its
//! text is found (see [`crate::raster`]).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::raster::{PlotFont, Raster};

/// The metrics file's name in a run directory.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The plot's name in a run directory.
pub const PLOT_FILE: &str = "loss.svg";
/// The bitmap plot's name in a run directory.
pub const PNG_PLOT_FILE: &str = "loss.png";
/// The plots' size in pixels.
const PLOT_SIZE: (u32, u32) = (800, 500);

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Steps done when it was measured.
    pub step: usize,
    /// Mean training loss of the step (nats per token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    /// Validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// Learning rate of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Training throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
}

/// The metrics of a run, in memory and on disk.
pub struct Metrics {
    dir: PathBuf,
    records: Vec<Record>,
    file: File,
    /// Drawn as a dashed line: the unigram baseline.
    baseline: Option<f64>,
    /// The PNG plot's font, or why there is no PNG plot.
    font: PlotFont,
}

impl Metrics {
    /// Opens `dir`'s metrics, keeping only records of steps up to `step`
    /// (those after the checkpoint a run resumes from are redone).
    pub fn open(dir: &Path, step: usize, baseline: Option<f64>) -> Result<Metrics> {
        let path = dir.join(METRICS_FILE);
        let mut records = Vec::new();
        if step > 0 && path.exists() {
            let file = File::open(&path)
                .with_context(|| format!("cannot read the metrics {}", path.display()))?;
            for line in BufReader::new(file).lines() {
                let line = line?;
                let record: Record = serde_json::from_str(&line).with_context(|| {
                    format!("{} holds a line that is not a record", path.display())
                })?;
                if record.step <= step {
                    records.push(record);
                }
            }
        }
        let mut file = File::create(&path)
            .with_context(|| format!("cannot write the metrics {}", path.display()))?;
        for record in &records {
            writeln!(file, "{}", serde_json::to_string(record)?)?;
        }
        Ok(Metrics {
            dir: dir.to_path_buf(),
            records,
            file,
            baseline,
            font: PlotFont::find(),
        })
    }

    /// Appends a record.
    pub fn push(&mut self, record: Record) -> Result<()> {
        writeln!(self.file, "{}", serde_json::to_string(&record)?)?;
        self.file.flush()?;
        self.records.push(record);
        Ok(())
    }

    /// Why no PNG plot is drawn, if it is not.
    pub fn png_skipped(&self) -> Option<&str> {
        match &self.font {
            PlotFont::Found(_) => None,
            PlotFont::Missing(why) => Some(why),
        }
    }

    /// Redraws the plots from every record so far; returns the files
    /// drawn, the SVG first.
    pub fn plot(&self) -> Result<Vec<PathBuf>> {
        let path = self.dir.join(PLOT_FILE);
        let train: Vec<(f64, f64)> = self
            .records
            .iter()
            .filter_map(|r| Some((r.step as f64, r.train_loss?)))
            .collect();
        let val: Vec<(f64, f64)> = self
            .records
            .iter()
            .filter_map(|r| Some((r.step as f64, r.val_loss?)))
            .collect();
        // Written beside the plot and renamed, so a viewer never reads half.
        let temp = self.dir.join(format!(".{PLOT_FILE}.tmp"));
        draw(
            SVGBackend::new(&temp, PLOT_SIZE).into_drawing_area(),
            &train,
            &val,
            self.baseline,
        )
        .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))?;
        std::fs::rename(&temp, &path)?;
        let mut drawn = vec![path];
        if let PlotFont::Found(font) = &self.font {
            let png = self.dir.join(PNG_PLOT_FILE);
            let temp = self.dir.join(format!(".{PNG_PLOT_FILE}.tmp"));
            let mut raster = Raster::new(PLOT_SIZE.0, PLOT_SIZE.1, font.clone());
            draw(
                (&mut raster).into_drawing_area(),
                &train,
                &val,
                self.baseline,
            )
            .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", png.display()))?;
            let file =
                File::create(&temp).with_context(|| format!("cannot write {}", temp.display()))?;
            raster
                .write_png(file)
                .with_context(|| format!("cannot write {}", png.display()))?;
            std::fs::rename(&temp, &png)?;
            drawn.push(png);
        }
        Ok(drawn)
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    train: &[(f64, f64)],
    val: &[(f64, f64)],
    baseline: Option<f64>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let all = train.iter().chain(val);
    let max_step = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let mut high = all
        .clone()
        .map(|p| p.1)
        .fold(baseline.unwrap_or(0.0), f64::max);
    let low = all
        .clone()
        .map(|p| p.1)
        .fold(high, f64::min)
        .min(baseline.unwrap_or(high));
    if high <= low {
        high = low + 1.0;
    }
    let pad = (high - low) * 0.05;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("solstice-gpt: loss (nats per token)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_step, (low - pad).max(0.0)..high + pad)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .draw()?;
    chart
        .draw_series(LineSeries::new(train.iter().copied(), &BLUE))?
        .label("train")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(val.iter().copied(), RED.stroke_width(2)))?
        .label("validation")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    if let Some(b) = baseline {
        chart
            .draw_series(LineSeries::new([(0.0, b), (max_step, b)], BLACK.mix(0.5)))?
            .label("unigram baseline")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
