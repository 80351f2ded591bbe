//! `mabeam load --report`: the HTML page from the outside. It must be well-formed (every
//! element closed and nested, every `&` an entity), self-contained (no script, nothing
//! fetched), and hold one latency distribution per operation with one series per
//! preset, the throughput over time, and with `--rate-sweep` one latency–throughput
//! plot per operation.

use std::path::PathBuf;
use std::process::{Command, Output};

const OPERATIONS: [&str; 4] = [
    "create_auction",
    "place_bid",
    "get_market_state",
    "get_cached_pricing",
];

fn mabeam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mabeam"))
        .args(args)
        .output()
        .expect("the mabeam binary runs")
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mabeam-report-{}-{name}", std::process::id()))
}

/// One element of the page: its name, its attributes and its children.
#[derive(Debug, Clone)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every element below (and including) this one, depth first.
    fn all(&self) -> Vec<&Element> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.all());
        }
        out
    }
}

/// Checks that `text` is made of valid entities only (`&name;` or `&#digits;`).
fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        let tail = &rest[at + 1..];
        let end = tail
            .find(';')
            .ok_or_else(|| format!("unterminated entity near {:?}", &rest[at..]))?;
        let name = &tail[..end];
        let ok = match name.strip_prefix('#') {
            Some(digits) => !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()),
            None => ["amp", "lt", "gt", "quot", "apos"].contains(&name),
        };
        if !ok {
            return Err(format!("bad entity &{name};"));
        }
        rest = &tail[end + 1..];
    }
    Ok(())
}

/// Parses the page as XML (after its `<!DOCTYPE html>`): every tag closed (or
/// self-closed), properly nested, attributes quoted, text without `<` or `>`.
fn parse(page: &str) -> Result<Element, String> {
    let body = page
        .strip_prefix("<!DOCTYPE html>")
        .ok_or("the page starts with <!DOCTYPE html>")?;
    let mut stack = vec![Element {
        name: "#document".into(),
        attrs: Vec::new(),
        children: Vec::new(),
    }];
    let mut rest = body;
    loop {
        let Some(open) = rest.find('<') else {
            if rest.contains('>') {
                return Err("a stray '>' in text".into());
            }
            check_entities(rest)?;
            break;
        };
        let text = &rest[..open];
        if text.contains('>') {
            return Err(format!("a stray '>' in text {text:?}"));
        }
        check_entities(text)?;
        let close = rest[open..].find('>').ok_or("an unterminated tag")? + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let done = stack.pop().ok_or("a close tag without an open one")?;
            if done.name != name.trim() {
                return Err(format!("</{name}> closes <{}>", done.name));
            }
            stack
                .last_mut()
                .ok_or_else(|| format!("</{name}> closes the document"))?
                .children
                .push(done);
            continue;
        }
        let (tag, self_closing) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
        let name = tag[..name_end].to_string();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("bad tag name in <{tag}>"));
        }
        let mut attrs = Vec::new();
        let mut a = tag[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a
                .find('=')
                .ok_or_else(|| format!("attribute without value in <{tag}>"))?;
            let key = a[..eq].trim().to_string();
            let after = &a[eq + 1..];
            let value = after
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted attribute {key} in <{tag}>"))?;
            let end = value
                .find('"')
                .ok_or_else(|| format!("unterminated attribute {key}"))?;
            check_entities(&value[..end])?;
            if value[..end].contains('<') {
                return Err(format!("'<' in attribute {key}"));
            }
            attrs.push((key, value[..end].to_string()));
            a = value[end + 1..].trim_start();
        }
        let element = Element {
            name,
            attrs,
            children: Vec::new(),
        };
        if self_closing {
            stack
                .last_mut()
                .expect("the document is at the bottom of the stack")
                .children
                .push(element);
        } else {
            stack.push(element);
        }
    }
    if stack.len() != 1 {
        let open: Vec<&str> = stack.iter().map(|e| e.name.as_str()).collect();
        return Err(format!("unclosed elements: {open:?}"));
    }
    let mut document = stack.pop().expect("the document");
    match document.children.len() {
        1 => Ok(document.children.remove(0)),
        n => Err(format!("{n} root elements")),
    }
}

/// The `<svg>` plots of `kind`, by id.
fn plots<'a>(root: &'a Element, kind: &str) -> Vec<&'a Element> {
    root.all()
        .into_iter()
        .filter(|e| {
            e.name == "svg"
                && e.attr("class")
                    .is_some_and(|c| c.split(' ').any(|k| k == kind))
        })
        .collect()
}

/// The series groups of a plot.
fn series(plot: &Element) -> Vec<&Element> {
    plot.all()
        .into_iter()
        .filter(|e| e.name == "g" && e.attr("class") == Some("series"))
        .collect()
}

/// A polyline's points, parsed.
fn points(group: &Element) -> Vec<(f64, f64)> {
    group
        .children
        .iter()
        .filter(|e| e.name == "polyline")
        .flat_map(|p| {
            p.attr("points")
                .expect("a polyline has points")
                .split(' ')
                .map(|pair| {
                    let (x, y) = pair.split_once(',').expect("points are x,y");
                    (
                        x.parse().expect("x is a number"),
                        y.parse().expect("y is a number"),
                    )
                })
                .collect::<Vec<(f64, f64)>>()
        })
        .collect()
}

fn report(args: &[&str], name: &str) -> (String, Element) {
    let path = scratch(name);
    let mut all: Vec<&str> = args.to_vec();
    let path_text = path
        .to_str()
        .expect("temp paths are UTF-8 here")
        .to_string();
    all.push("--report");
    all.push(&path_text);
    let out = mabeam(&all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&path).expect("the report was written");
    let _ = std::fs::remove_file(&path);
    let root = parse(&page).unwrap_or_else(|e| panic!("the report is not well-formed: {e}"));
    (page, root)
}

fn check_self_contained(page: &str) {
    let lower = page.to_ascii_lowercase();
    for forbidden in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<iframe",
    ] {
        assert!(!lower.contains(forbidden), "the page holds {forbidden:?}");
    }
}

#[test]
fn the_report_has_one_distribution_per_operation_with_both_presets() {
    let (page, root) = report(&["load", "--clients", "2", "--ops", "300"], "both.html");
    check_self_contained(&page);
    assert_eq!(root.name, "html");
    let dists = plots(&root, "distribution");
    assert_eq!(dists.len(), OPERATIONS.len());
    for op in OPERATIONS {
        let plot = dists
            .iter()
            .find(|p| p.attr("id") == Some(&format!("dist-{op}")))
            .unwrap_or_else(|| panic!("no distribution plot of {op}"));
        let groups = series(plot);
        let presets: Vec<&str> = groups
            .iter()
            .filter_map(|g| g.attr("data-preset"))
            .collect();
        assert_eq!(presets, ["sharded", "centralized"], "{op}");
        for g in groups {
            assert_eq!(g.attr("data-op"), Some(op));
            let pts = points(g);
            // Every operation of the default mix ran in 600 operations with this seed.
            assert!(pts.len() >= 2, "{op}: a line, not a point");
            // A percentile curve never goes down as the percentile rises (SVG y grows
            // downwards, so y never increases).
            for w in pts.windows(2) {
                assert!(w[1].0 >= w[0].0, "{op}: x increases");
                assert!(w[1].1 <= w[0].1 + 0.05, "{op}: latency never falls: {w:?}");
            }
        }
        // A title that says what the plot is.
        let title = plot
            .children
            .iter()
            .find(|e| e.name == "title")
            .expect("each plot has a title");
        assert!(title.children.is_empty());
    }
    let throughput = plots(&root, "throughput");
    assert_eq!(throughput.len(), 1);
    assert_eq!(series(throughput[0]).len(), 2);
    assert!(plots(&root, "sweep").is_empty(), "no sweep, no sweep plots");
}

#[test]
fn a_sweep_report_has_a_latency_throughput_plot_per_operation() {
    let (page, root) = report(
        &[
            "load",
            "--clients",
            "2",
            "--ops",
            "200",
            "--rate-sweep",
            "25%,75%",
        ],
        "sweep.html",
    );
    check_self_contained(&page);
    let sweeps = plots(&root, "sweep");
    assert_eq!(sweeps.len(), OPERATIONS.len());
    for (plot, op) in sweeps.iter().zip(OPERATIONS) {
        assert_eq!(plot.attr("id"), Some(format!("sweep-{op}").as_str()));
        let groups = series(plot);
        // p50 and p99 for each preset, each through both steps.
        assert_eq!(groups.len(), 4, "{op}");
        for preset in ["sharded", "centralized"] {
            let mine: Vec<&&Element> = groups
                .iter()
                .filter(|g| g.attr("data-preset") == Some(preset))
                .collect();
            assert_eq!(mine.len(), 2, "{op} {preset}");
            for g in mine {
                assert_eq!(points(g).len(), 2, "{op} {preset}: one point per step");
            }
        }
    }
    assert_eq!(plots(&root, "distribution").len(), OPERATIONS.len());
}

#[test]
fn the_checker_refuses_what_is_not_well_formed() {
    for bad in [
        "<!DOCTYPE html><html><body></html>",
        "<!DOCTYPE html><html><p>a & b</p></html>",
        "<!DOCTYPE html><html><p a=b></p></html>",
        "<!DOCTYPE html><html></html><html></html>",
        "<html></html>",
        "<!DOCTYPE html><html><p>1 > 0</p></html>",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert!(parse("<!DOCTYPE html><html><p a=\"&amp;\">x &lt; y</p><br/></html>").is_ok());
}
