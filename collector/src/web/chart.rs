//! Timeline charts (inline SVG). (Stub until the chart module lands.)

use std::borrow::Cow;

pub fn clean(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

#[derive(Debug)]
pub struct Palette {
    names: Vec<String>,
}

impl Palette {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut n: Vec<String> = names
            .into_iter()
            .filter(|n| *n != "unknown")
            .map(str::to_string)
            .collect();
        n.sort();
        n.dedup();
        Self { names: n }
    }
    pub fn class(&self, name: &str) -> &'static str {
        const C: [&str; 8] = [
            "up-0", "up-1", "up-2", "up-3", "up-4", "up-5", "up-6", "up-7",
        ];
        if name == "unknown" {
            return "up-unknown";
        }
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| C.get(i).copied())
            .unwrap_or("up-other")
    }
}

#[derive(Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(u64, f64)>,
}

#[derive(Debug)]
pub struct Mark {
    pub at_ms: u64,
    pub label: String,
    pub href: String,
}

pub fn shares_chart(
    series: &[Series],
    _from_ms: u64,
    _until_ms: u64,
    marks: &[Mark],
    _palette: &Palette,
    title: &str,
) -> maud::Markup {
    maud::html! { svg { title { (title) } } p { (series.len()) " series, " (marks.len()) " marks" } }
}
