use super::model::DrillResult;
pub fn render(r: &DrillResult, _svg: &str) -> String { format!("# {} {:?}\n", r.scenario, r.verdict) }
pub fn render_suite_index(_e: &[(DrillResult, String)]) -> String { String::new() }
