//! The `--plot` chart: entries per server as bars, one panel per moment,
//! with the ideal share as a line.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::stats::Distribution;

/// Draws one bar-chart panel per distribution, side by side, into an SVG
/// file at `path`.
pub(crate) fn draw(path: &Path, panels: &[&Distribution]) -> Result<(), Box<dyn Error>> {
    let width = 560 * panels.len() as u32;
    let root = SVGBackend::new(path, (width, 460)).into_drawing_area();
    root.fill(&WHITE)?;

    // One y scale for every panel, so they compare at a glance.
    let top = panels
        .iter()
        .flat_map(|panel| panel.servers.iter().map(|&(_, entries)| entries))
        .chain(panels.iter().map(|panel| panel.ideal.ceil() as u64))
        .max()
        .unwrap_or(1);
    let top = top + top / 8 + 1;

    for (area, panel) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        let servers = panel.servers.len();
        let names: Vec<&str> = panel.servers.iter().map(|(id, _)| id.as_str()).collect();
        let label = |value: &SegmentValue<usize>| match value {
            SegmentValue::CenterOf(index) => names.get(*index).copied().unwrap_or("").to_owned(),
            _ => String::new(),
        };

        let ideal = panel.ideal.round() as u64;
        let caption = format!("{} (ideal share {ideal}, in red)", panel.title);
        // Integer ranges are inclusive in plotters: 0..last makes one
        // segment per server. A one-server cluster gets an empty second
        // segment, since plotters cannot lay out an axis of one value.
        let last = servers.saturating_sub(1).max(1);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((0..last).into_segmented(), 0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(servers.clamp(2, 24))
            .x_label_formatter(&label)
            .x_desc("server")
            .y_desc("entries")
            .label_style(("sans-serif", 13))
            .draw()?;

        // A gap between bars while they are wide enough to afford one.
        let bar_width = area.dim_in_pixel().0 / servers.max(1) as u32;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(BLUE.mix(0.7).filled())
                .margin((bar_width / 8).min(3))
                .data(
                    panel
                        .servers
                        .iter()
                        .enumerate()
                        .map(|(index, &(_, entries))| (index, entries)),
                ),
        )?;
        chart.draw_series(LineSeries::new(
            [(SegmentValue::Exact(0), ideal), (SegmentValue::Last, ideal)],
            RED.stroke_width(2),
        ))?;
    }

    root.present()?;
    Ok(())
}
