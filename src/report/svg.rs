use super::model::DrillResult;
pub fn render(_r: &DrillResult) -> String { String::new() }
