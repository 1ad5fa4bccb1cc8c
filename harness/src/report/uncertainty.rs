//! The report's "Uncertainty" section, from `results.json`'s `run`: the `info` rate
//! overall and per `f`, and the client operations in flight at each fault's start
//! (computed from the history by the run; see `docs/reports.md`).

use serde::Serialize;
use serde_json::Value;

/// The `run` keys this section shows, left out of the plain "Run figures" table.
pub const NESTED_KEYS: [&str; 2] = ["info_by_f", "in_flight_at_faults"];

/// One `f`'s line.
#[derive(Debug, Serialize)]
pub struct InfoRow {
    f: String,
    completed: String,
    info: String,
    rate: String,
}

/// One fault start's line.
#[derive(Debug, Serialize)]
pub struct FaultStartRow {
    time: String,
    f: String,
    in_flight: String,
}

/// What the section shows.
#[derive(Debug, Serialize)]
pub struct UncertaintyView {
    info_rate: String,
    by_f: Vec<InfoRow>,
    in_flight_total: String,
    fault_starts: Vec<FaultStartRow>,
}

fn number(value: Option<&Value>) -> String {
    value.map(Value::to_string).unwrap_or_default()
}

fn percent(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_f64)
        .map(|r| format!("{:.1} %", r * 100.0))
        .unwrap_or_default()
}

/// The section for the `run` object `run`, or `None` when it has no uncertainty
/// figures (a run written before they existed, or `faultline check`'s results).
pub fn view(run: &Value) -> Option<UncertaintyView> {
    let rate = run.get("info_rate")?;
    let by_f = run
        .get("info_by_f")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(f, c)| InfoRow {
                    f: f.clone(),
                    completed: number(c.get("completed")),
                    info: number(c.get("info")),
                    rate: percent(c.get("rate")),
                })
                .collect()
        })
        .unwrap_or_default();
    let fault_starts = run
        .get("in_flight_at_faults")
        .and_then(Value::as_array)
        .map(|starts| {
            starts
                .iter()
                .map(|s| FaultStartRow {
                    time: s
                        .get("time")
                        .and_then(Value::as_f64)
                        .map(|t| format!("{t:.3}"))
                        .unwrap_or_default(),
                    f: s.get("f").and_then(Value::as_str).unwrap_or("").to_string(),
                    in_flight: number(s.get("in_flight")),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(UncertaintyView {
        info_rate: percent(Some(rate)),
        by_f,
        in_flight_total: number(run.get("in_flight_at_faults_total")),
        fault_starts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_rates_as_percentages_and_each_fault_start() {
        let run = json!({
            "info_rate": 0.125,
            "info_by_f": {"write": {"completed": 8, "info": 1, "rate": 0.125}},
            "in_flight_at_faults": [{"index": 4, "time": 1.5, "f": "kill", "in_flight": 3}],
            "in_flight_at_faults_total": 3
        });
        let v = view(&run).unwrap();
        assert_eq!(v.info_rate, "12.5 %");
        assert_eq!(v.by_f[0].rate, "12.5 %");
        assert_eq!(v.by_f[0].completed, "8");
        assert_eq!(v.fault_starts[0].time, "1.500");
        assert_eq!(v.fault_starts[0].in_flight, "3");
        assert_eq!(v.in_flight_total, "3");
        assert!(view(&json!({"ok": 3})).is_none());
    }
}
