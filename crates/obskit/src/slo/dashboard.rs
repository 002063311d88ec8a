//! A Grafana dashboard for SLOs, built on the recording rules of [`rules`](super::rules).
//!
//! One row per SLO shows the error budget remaining, the burn rate over every alert window
//! and the SLI against its objective. One row per route then shows the RED signals from
//! `http_server_request_duration_seconds`: request rate, error ratio and the p50, p95 and p99
//! latency.

use serde_json::{Value, json};

use super::alert::{BurnRateAlert, Window};
use super::definition::SloDefinition;
use super::rules::{
    BUDGET_REMAINING_RECORD, DURATION_HISTOGRAM, OBJECTIVE_RECORD, error_ratio_record,
    promql_duration, promql_string, slo_series,
};

/// Dashboard schema version written: the one of Grafana 12's classic JSON model. Grafana
/// migrates older versions when it loads them, but not newer ones.
pub const GRAFANA_SCHEMA_VERSION: u32 = 41;

/// The dashboard's `uid`, stable so that importing it again replaces it.
pub const DASHBOARD_UID: &str = "obskit-slo";

/// Width of the Grafana grid.
const GRID_WIDTH: u32 = 24;

/// Returns a Grafana dashboard (classic JSON model) for `slos`.
///
/// Panel queries use the recording rules that [`rules`](super::rules) generates for the same
/// SLOs, so load those rules into Prometheus first. A `datasource` variable selects the
/// Prometheus data source.
///
/// # Example
///
/// ```
/// use obskit::slo::{SloDefinition, dashboard};
///
/// let slo = SloDefinition::builder("orders").target(99.9).period("30d").route("/orders").build()?;
/// let board = dashboard(&[slo]);
/// assert_eq!(board["templating"]["list"][0]["name"], "datasource");
/// assert!(board["panels"].as_array().is_some_and(|panels| !panels.is_empty()));
/// # Ok::<(), obskit::slo::SloError>(())
/// ```
pub fn dashboard(slos: &[SloDefinition]) -> Value {
    let mut layout = Layout::default();
    for slo in slos {
        slo_row(&mut layout, slo);
    }
    let mut routes: Vec<&str> = Vec::new();
    for slo in slos {
        if !routes.contains(&slo.selector.route.as_str()) {
            routes.push(&slo.selector.route);
        }
    }
    for route in routes {
        route_row(&mut layout, route);
    }

    json!({
        "id": null,
        "uid": DASHBOARD_UID,
        "title": "obskit SLOs",
        "description": "Error budgets, burn rates and RED signals of the SLOs defined in the obskit configuration.",
        "tags": ["obskit", "slo"],
        "timezone": "browser",
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": GRAFANA_SCHEMA_VERSION,
        "version": 1,
        "time": { "from": "now-24h", "to": "now" },
        "refresh": "1m",
        "links": [],
        "annotations": { "list": [] },
        "templating": { "list": [datasource_variable()] },
        "panels": layout.panels,
    })
}

fn datasource_variable() -> Value {
    json!({
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
    })
}

fn datasource() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// Places panels left to right and top to bottom, and numbers them.
#[derive(Default)]
struct Layout {
    panels: Vec<Value>,
    next_id: u32,
    x: u32,
    y: u32,
    row_height: u32,
}

impl Layout {
    fn row(&mut self, title: &str) {
        self.new_line();
        let id = self.id();
        self.panels.push(json!({
            "id": id,
            "type": "row",
            "title": title,
            "collapsed": false,
            "panels": [],
            "gridPos": { "x": 0, "y": self.y, "w": GRID_WIDTH, "h": 1 },
        }));
        self.y += 1;
    }

    fn add(&mut self, mut panel: Value, width: u32, height: u32) {
        if self.x + width > GRID_WIDTH {
            self.new_line();
        }
        let id = self.id();
        if let Some(object) = panel.as_object_mut() {
            object.insert("id".to_owned(), json!(id));
            object.insert("datasource".to_owned(), datasource());
            object.insert(
                "gridPos".to_owned(),
                json!({ "x": self.x, "y": self.y, "w": width, "h": height }),
            );
        }
        self.panels.push(panel);
        self.x += width;
        self.row_height = self.row_height.max(height);
    }

    fn new_line(&mut self) {
        self.y += self.row_height;
        self.x = 0;
        self.row_height = 0;
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }
}

fn target(ref_id: char, expr: &str, legend: &str) -> Value {
    json!({
        "refId": ref_id.to_string(),
        "datasource": datasource(),
        "expr": expr,
        "legendFormat": legend,
        "range": true,
    })
}

fn slo_row(layout: &mut Layout, slo: &SloDefinition) {
    let budget = slo.target.error_budget().to_string();
    let period = promql_duration(slo.period);
    layout.row(&format!(
        "SLO {}: {} {}% over {period}",
        slo.name,
        slo.kind.name(),
        slo.target.percent()
    ));

    let remaining = slo_series(BUDGET_REMAINING_RECORD, slo);
    layout.add(
        json!({
            "type": "stat",
            "title": format!("Error budget remaining ({period})"),
            "description": format!("Share of the {period} error budget ({budget} of requests) not yet spent; below 0 the SLO is missed."),
            "targets": [target('A', &remaining, "remaining")],
            "fieldConfig": {
                "defaults": {
                    "unit": "percentunit",
                    "decimals": 1,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            { "color": "red", "value": null },
                            { "color": "orange", "value": 0 },
                            { "color": "green", "value": 0.25 },
                        ],
                    },
                },
                "overrides": [],
            },
            "options": {
                "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false },
                "colorMode": "value",
                "graphMode": "area",
            },
        }),
        6,
        8,
    );

    let burn_targets: Vec<Value> = Window::ALL
        .iter()
        .zip('A'..)
        .map(|(window, ref_id)| {
            let series = slo_series(&error_ratio_record(window.label()), slo);
            target(ref_id, &format!("{series} / {budget}"), window.label())
        })
        .collect();
    let page_threshold = BurnRateAlert::ALL
        .first()
        .map_or(0.0, |alert| alert.threshold(slo.period));
    layout.add(
        json!({
            "type": "timeseries",
            "title": "Burn rate",
            "description": format!("Error ratio divided by the error budget {budget}: 1 spends the budget exactly over the period. The line marks the fastest page threshold, {page_threshold}."),
            "targets": burn_targets,
            "fieldConfig": {
                "defaults": {
                    "unit": "none",
                    "min": 0,
                    "custom": { "thresholdsStyle": { "mode": "line" } },
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            { "color": "green", "value": null },
                            { "color": "red", "value": page_threshold },
                        ],
                    },
                },
                "overrides": [],
            },
        }),
        9,
        8,
    );

    let sli_targets = vec![
        target(
            'A',
            &format!("1 - {}", slo_series(&error_ratio_record("5m"), slo)),
            "SLI (5m)",
        ),
        target(
            'B',
            &format!("1 - {}", slo_series(&error_ratio_record("1h"), slo)),
            "SLI (1h)",
        ),
        target(
            'C',
            &format!("1 - {}", slo_series(&error_ratio_record(&period), slo)),
            &format!("SLI ({period})"),
        ),
        target('D', &slo_series(OBJECTIVE_RECORD, slo), "objective"),
    ];
    layout.add(
        json!({
            "type": "timeseries",
            "title": "SLI",
            "description": "Share of good requests against the objective.",
            "targets": sli_targets,
            "fieldConfig": {
                "defaults": { "unit": "percentunit", "decimals": 3 },
                "overrides": [],
            },
        }),
        9,
        8,
    );
}

fn route_row(layout: &mut Layout, route: &str) {
    let matcher = format!("http_route={}", promql_string(route));
    let count = format!("{DURATION_HISTOGRAM}_count");
    let bucket = format!("{DURATION_HISTOGRAM}_bucket");
    layout.row(&format!("Route {route}"));

    layout.add(
        json!({
            "type": "timeseries",
            "title": "Request rate",
            "targets": [target(
                'A',
                &format!("sum by (http_request_method, http_response_status_code) (rate({count}{{{matcher}}}[$__rate_interval]))"),
                "{{http_request_method}} {{http_response_status_code}}",
            )],
            "fieldConfig": { "defaults": { "unit": "reqps", "min": 0 }, "overrides": [] },
        }),
        8,
        8,
    );

    layout.add(
        json!({
            "type": "timeseries",
            "title": "Error ratio (5xx)",
            "targets": [target(
                'A',
                &format!(
                    "(sum(rate({count}{{{matcher},http_response_status_code=~\"5..\"}}[$__rate_interval])) or vector(0))\n/\nsum(rate({count}{{{matcher}}}[$__rate_interval]))"
                ),
                "5xx",
            )],
            "fieldConfig": { "defaults": { "unit": "percentunit", "min": 0 }, "overrides": [] },
        }),
        8,
        8,
    );

    let latency_targets: Vec<Value> = [("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")]
        .iter()
        .zip('A'..)
        .map(|((quantile, legend), ref_id)| {
            target(
                ref_id,
                &format!(
                    "histogram_quantile({quantile}, sum by (le) (rate({bucket}{{{matcher}}}[$__rate_interval])))"
                ),
                legend,
            )
        })
        .collect();
    layout.add(
        json!({
            "type": "timeseries",
            "title": "Latency",
            "description": "Quantiles interpolated within the histogram's buckets.",
            "targets": latency_targets,
            "fieldConfig": { "defaults": { "unit": "s", "min": 0 }, "overrides": [] },
        }),
        8,
        8,
    );
}
