//! Hand-written SVG line plots for the HTML report: axes (linear, log, or labelled
//! ticks), one polyline per series, a legend. Inline SVG only: no script, no external
//! reference, every text escaped ([`escape`]); every element is closed, so the output is
//! well-formed XML.

use std::fmt::Write as _;

/// Width of a plot in pixels.
pub const WIDTH: f64 = 680.0;
/// Height of a plot in pixels.
pub const HEIGHT: f64 = 360.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 48.0;

/// Text escaped for XML and HTML (content and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How an axis maps values.
#[derive(Debug, Clone, PartialEq)]
pub enum Scale {
    /// Linear from 0 (or the smallest value, if negative) to the largest.
    Linear,
    /// Base-10 logarithmic over whole decades; only positive values are drawn.
    Log,
    /// Linear over the values, with these ticks `(value, label)`; the range spans the
    /// ticks and the data.
    Ticks(Vec<(f64, String)>),
}

/// One axis: its label and scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The label under (x) or beside (y) the axis.
    pub label: String,
    /// The scale.
    pub scale: Scale,
}

/// One line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// The stroke colour (`#rrggbb`).
    pub color: &'static str,
    /// Drawn dashed.
    pub dashed: bool,
    /// Circles at the points (for few points, such as a sweep's steps).
    pub markers: bool,
    /// `data-*` attributes of the series' group (`(name, value)`, names without the
    /// `data-` prefix), so a reader (or a test) can find it.
    pub data: Vec<(&'static str, String)>,
    /// The points `(x, y)` in data units, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// A line plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The `id` of the `<svg>` element.
    pub id: String,
    /// The `class` of the `<svg>` element besides `plot` (the kind of plot).
    pub kind: &'static str,
    /// The title above the plot.
    pub title: String,
    /// The x axis.
    pub x: Axis,
    /// The y axis.
    pub y: Axis,
    /// The lines.
    pub series: Vec<Series>,
}

/// A value range of one axis, in drawing units (log10 for a log axis), and its ticks.
struct Range {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Range {
    fn of(scale: &Scale, values: impl Iterator<Item = f64> + Clone) -> Range {
        match scale {
            Scale::Log => {
                let positive = values.filter(|v| v.is_finite() && *v > 0.0);
                let (min, max) = min_max(positive).unwrap_or((1.0, 10.0));
                let lo = min.log10().floor();
                let mut hi = max.log10().ceil();
                if hi <= lo {
                    hi = lo + 1.0;
                }
                let ticks = (lo as i32..=hi as i32)
                    .map(|e| (f64::from(e), si(10f64.powi(e))))
                    .collect();
                Range {
                    lo,
                    hi,
                    log: true,
                    ticks,
                }
            }
            Scale::Linear => {
                let (min, max) = min_max(values.filter(|v| v.is_finite())).unwrap_or((0.0, 1.0));
                let lo = min.min(0.0);
                let step = nice_step((max - lo).max(1e-9) / 5.0);
                let hi = ((max / step).ceil() * step).max(lo + step);
                let mut ticks = Vec::new();
                let mut t = (lo / step).ceil() * step;
                while t <= hi + step * 1e-9 {
                    ticks.push((t, si(t)));
                    t += step;
                }
                Range {
                    lo,
                    hi,
                    log: false,
                    ticks,
                }
            }
            Scale::Ticks(ticks) => {
                let all = values
                    .filter(|v| v.is_finite())
                    .chain(ticks.iter().map(|t| t.0));
                let (lo, mut hi) = min_max(all).unwrap_or((0.0, 1.0));
                if hi <= lo {
                    hi = lo + 1.0;
                }
                Range {
                    lo,
                    hi,
                    log: false,
                    ticks: ticks.clone(),
                }
            }
        }
    }

    /// `v` in drawing units, `None` if it cannot be drawn (non-positive on a log axis).
    fn unit(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        if self.log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    /// Position of drawing unit `u` as a fraction of the axis (0 at `lo`).
    fn fraction(&self, u: f64) -> f64 {
        ((u - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power)
}

/// A short number: `0.5`, `20`, `1k`, `2.5M`, `1G`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// The plot as an `<svg>` element.
pub fn render(plot: &Plot) -> String {
    let xs = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    let xr = Range::of(&plot.x.scale, xs);
    let yr = Range::of(&plot.y.scale, ys);
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (HEIGHT - BOTTOM, TOP);
    let px = |u: f64| x0 + xr.fraction(u) * (x1 - x0);
    let py = |u: f64| y0 - yr.fraction(u) * (y0 - y1);

    let mut out = String::new();
    let title = escape(&plot.title);
    let _ = write!(
        out,
        r##"<svg class="plot {kind}" id="{id}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}" font-family="sans-serif" font-size="12">"##,
        kind = escape(plot.kind),
        id = escape(&plot.id),
    );
    let _ = write!(out, "<title>{title}</title>");
    let _ = write!(
        out,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = write!(
        out,
        r##"<text class="title" x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{title}</text>"##,
        (x0 + x1) / 2.0
    );
    // Grid and ticks.
    out.push_str(r##"<g class="axes" stroke="#cccccc" stroke-width="1">"##);
    for (t, _) in &xr.ticks {
        let x = px(*t);
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}"/>"#
        );
    }
    for (t, _) in &yr.ticks {
        let y = py(*t);
        let _ = write!(
            out,
            r#"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}"/>"#
        );
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#333333"/>"##,
        x1 - x0,
        y0 - y1
    );
    out.push_str(r##"<g class="tick-labels" fill="#333333">"##);
    for (t, label) in &xr.ticks {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(*t),
            y0 + 16.0,
            escape(label)
        );
    }
    for (t, label) in &yr.ticks {
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            py(*t) + 4.0,
            escape(label)
        );
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        r#"<text class="x-label" x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 10.0,
        escape(&plot.x.label)
    );
    let _ = write!(
        out,
        r#"<text class="y-label" x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(&plot.y.label)
    );
    // Series and legend.
    for (i, s) in plot.series.iter().enumerate() {
        let _ = write!(out, r#"<g class="series""#);
        for (name, value) in &s.data {
            let _ = write!(out, r#" data-{}="{}""#, escape(name), escape(value));
        }
        out.push('>');
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(x, y)| Some((px(xr.unit(x)?), py(yr.unit(y)?))))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !points.is_empty() {
            let list: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = write!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"#,
                s.color,
                list.join(" ")
            );
            if s.markers {
                for (x, y) in &points {
                    let _ = write!(
                        out,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                        s.color
                    );
                }
            }
        }
        let ly = TOP + 10.0 + 18.0 * i as f64;
        let lx = x1 + 12.0;
        let _ = write!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#,
            lx + 24.0,
            s.color
        );
        let _ = write!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            escape(&s.name)
        );
        if points.is_empty() {
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" fill="#888888">(no data)</text>"##,
                lx + 30.0,
                ly + 16.0
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(scale: Scale, points: Vec<(f64, f64)>) -> Plot {
        Plot {
            id: "p<1>".into(),
            kind: "test",
            title: "a & b".into(),
            x: Axis {
                label: "x \"axis\"".into(),
                scale: Scale::Linear,
            },
            y: Axis {
                label: "y".into(),
                scale,
            },
            series: vec![Series {
                name: "one".into(),
                color: "#1f77b4",
                dashed: false,
                markers: true,
                data: vec![("preset", "sharded".into())],
                points,
            }],
        }
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let svg = render(&plot(Scale::Log, vec![(1.0, 10.0)]));
        assert!(svg.contains(r#"id="p&lt;1&gt;""#));
        assert!(svg.contains("<title>a &amp; b</title>"));
        assert!(svg.contains("x &quot;axis&quot;"));
        assert!(!svg.contains("a & b"));
    }

    #[test]
    fn a_series_is_a_polyline_inside_the_frame() {
        let svg = render(&plot(
            Scale::Log,
            vec![(0.0, 1.0), (1.0, 100.0), (2.0, 10.0)],
        ));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(r#"<g class="series" data-preset="sharded">"#));
        let points = svg
            .split(r#"points=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        for pair in points.split(' ') {
            let (x, y) = pair.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((LEFT..=WIDTH - RIGHT).contains(&x), "{x}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "{y}");
        }
        // 1 µs at the bottom, 100 at the top: log decades.
        assert!(points.starts_with(&format!("{LEFT:.1},{:.1}", HEIGHT - BOTTOM)));
        assert!(svg.contains(">1<") && svg.contains(">10<") && svg.contains(">100<"));
    }

    #[test]
    fn non_positive_values_are_left_out_of_a_log_axis() {
        let svg = render(&plot(Scale::Log, vec![(0.0, 0.0), (1.0, -1.0)]));
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert!(svg.contains("(no data)"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(si(0.5), "0.5");
        assert_eq!(si(20.0), "20");
        assert_eq!(si(1000.0), "1k");
        assert_eq!(si(2_500_000.0), "2.5M");
        assert_eq!(si(1e9), "1G");
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
    }
}
