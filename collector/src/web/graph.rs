//! The paths graph (inline SVG). (Stub until the graph module lands.)

use super::chart::Palette;

#[derive(Debug)]
pub struct AsHop {
    pub asn: Option<u32>,
    pub org: Option<String>,
    pub first_ttl: u8,
    pub last_ttl: u8,
    pub rtt_ms: Option<f64>,
}

#[derive(Debug)]
pub struct GraphPath {
    pub agent: String,
    pub prefix: String,
    pub upstream: Option<String>,
    pub hops: Vec<AsHop>,
    pub reached: bool,
    pub dest_ttl: Option<u8>,
    pub dest_rtt_ms: Option<f64>,
}

pub fn paths_graph(paths: &[GraphPath], _palette: &Palette) -> maud::Markup {
    maud::html! { svg { title { "paths" } } p { (paths.len()) " paths" } }
}
