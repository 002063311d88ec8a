//! End-to-end configuration loading from real TOML and YAML files, and the reference tables in
//! `docs/configuration.md` checked against the code.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test fails by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use obskit::Config;
use obskit::config::{ConfigBuilder, ConfigReport, ENV_VARS, LogFormat, RuleMode};
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

/// Starts a builder that reads only `path` and the given variables.
fn from_file(path: &Path, vars: &[(&str, &str)]) -> ConfigBuilder {
    Config::builder()
        .env_from(vars.iter().map(|(name, value)| (*name, *value)))
        .file(path)
}

fn problems(builder: ConfigBuilder) -> Vec<String> {
    match builder.build() {
        Ok(config) => panic!("expected an error, loaded {config:?}"),
        Err(error) => error.problems().iter().map(ToString::to_string).collect(),
    }
}

fn source(report: &ConfigReport, key: &str) -> String {
    let entry = report
        .get(key)
        .unwrap_or_else(|| panic!("no report entry {key}"));
    entry.source.to_string()
}

const TOML: &str = r#"
[service]
name = "checkout"
environment = "staging"

[service.resource_attributes]
"k8s.namespace.name" = "shop"

[logging]
level = "info,hyper=warn"
format = "text"
sample_rate = 0.25

[metrics]
auth_token_file = "TOKEN_PATH"
rate_limit = 0

[health]
check_timeout = "750ms"

[http]
exclude_paths = ["/metrics", "/internal/*"]

[shutdown]
pre_stop_delay = "0s"
"#;

const YAML: &str = r#"
service:
  name: checkout
  environment: staging
  resource_attributes:
    k8s.namespace.name: shop
logging:
  level: "info,hyper=warn"
  format: text
  sample_rate: 0.25
metrics:
  auth_token_file: TOKEN_PATH
  rate_limit: 0
health:
  check_timeout: 750ms
http:
  exclude_paths: ["/metrics", "/internal/*"]
shutdown:
  pre_stop_delay: 0s
"#;

fn check_loaded(dir: &TempDir, file_name: &str, template: &str) {
    let token = write(dir, "token", "s3cret\n");
    let text = template.replace("TOKEN_PATH", token.to_str().unwrap());
    let path = write(dir, file_name, &text);

    let (config, report) = from_file(&path, &[("OBSKIT_LOG_SAMPLE_RATE", "0.5")])
        .build_with_report()
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(config.service.name, "checkout");
    assert_eq!(config.service.environment, "staging");
    assert_eq!(config.service.version, "0.0.0");
    assert_eq!(
        config.service.resource_attributes,
        BTreeMap::from([("k8s.namespace.name".to_owned(), "shop".to_owned())])
    );
    assert_eq!(config.logging.level, "info,hyper=warn");
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.logging.sample_rate, 0.5);
    assert_eq!(
        config
            .metrics
            .auth_token
            .as_ref()
            .map(|token| token.expose()),
        Some("s3cret")
    );
    assert_eq!(config.metrics.rate_limit, 0.0);
    assert_eq!(config.health.check_timeout, Duration::from_millis(750));
    assert_eq!(config.http.exclude_paths, ["/metrics", "/internal/*"]);
    assert_eq!(config.shutdown.pre_stop_delay, Duration::ZERO);

    let from_file = format!("file {}", path.display());
    assert_eq!(source(&report, "service.name"), from_file);
    assert_eq!(
        source(&report, "service.resource_attributes.k8s.namespace.name"),
        from_file
    );
    assert_eq!(source(&report, "metrics.auth_token"), from_file);
    assert_eq!(
        source(&report, "logging.sample_rate"),
        "env OBSKIT_LOG_SAMPLE_RATE"
    );
    assert_eq!(source(&report, "shutdown.timeout"), "default");

    let token_entry = report
        .get("metrics.auth_token")
        .map(|entry| entry.value.clone());
    assert_eq!(token_entry, Some(serde_json::Value::from("****")));
    assert!(!report.to_string().contains("s3cret"));
}

#[test]
fn toml_file_loaded() {
    let dir = TempDir::new().unwrap();
    check_loaded(&dir, "obskit.toml", TOML);
}

#[test]
fn yaml_file_loaded() {
    let dir = TempDir::new().unwrap();
    check_loaded(&dir, "obskit.yaml", YAML);
}

#[test]
fn yml_extension_loaded() {
    let dir = TempDir::new().unwrap();
    check_loaded(&dir, "obskit.yml", YAML);
}

#[test]
fn env_file_path_is_used() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", "[service]\nname = \"from-file\"\n");
    let config = Config::builder()
        .env_from([("OBSKIT_CONFIG_FILE", path.to_str().unwrap())])
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.service.name, "from-file");
}

#[test]
fn env_overrides_file() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", "[logging]\nlevel = \"warn\"\n");
    let level =
        |vars: &[(&str, &str)]| from_file(&path, vars).build().map(|c| c.logging.level).ok();
    assert_eq!(level(&[]).as_deref(), Some("warn"));
    assert_eq!(level(&[("RUST_LOG", "debug")]).as_deref(), Some("debug"));
    assert_eq!(
        level(&[("OBSKIT_LOG_LEVEL", "error")]).as_deref(),
        Some("error")
    );
}

#[test]
fn env_text_values_trimmed() {
    let config = Config::builder()
        .env_from([
            ("OBSKIT_LOG_FORMAT", " text "),
            ("OBSKIT_LOG_LEVEL", "debug\n"),
            ("OBSKIT_ENVIRONMENT", " production "),
            ("OBSKIT_LOG_SAMPLE_RATE", " 0.5 "),
            ("OBSKIT_SHUTDOWN_TIMEOUT", " 10s "),
        ])
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.logging.format, LogFormat::Text);
    assert_eq!(config.logging.level, "debug");
    assert_eq!(config.service.environment, "production");
    assert!((config.logging.sample_rate - 0.5).abs() < f64::EPSILON);
    assert_eq!(config.shutdown.timeout, Duration::from_secs(10));

    let blank = problems(Config::builder().env_from([("OBSKIT_SERVICE_NAME", "  ")]));
    assert_eq!(blank.len(), 1, "{blank:?}");
    assert!(blank[0].contains("OBSKIT_SERVICE_NAME"), "{blank:?}");
}

#[test]
fn toml_unknown_nested_key_suggested() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", "[logging]\nsampel_rate = 0.5\n");
    assert_eq!(
        problems(from_file(&path, &[])),
        [format!(
            "logging.sampel_rate (from file {}): unknown key; did you mean `logging.sample_rate`?",
            path.display()
        )]
    );
}

#[test]
fn yaml_unknown_section_suggested() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.yaml", "loging:\n  level: debug\n");
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("did you mean `logging`?"), "{found:?}");
}

#[test]
fn toml_syntax_error_has_position() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        "[logging]\nlevel = \"info\nformat = \"json\"\n",
    );
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    let expected_start = format!("configuration file {path:?}: invalid TOML: line 2");
    assert!(found[0].starts_with(&expected_start), "{found:?}");
    assert!(!found[0].contains('\n'), "{found:?}");
}

#[test]
fn yaml_syntax_error_has_position() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.yml",
        "logging:\n  level: info\n    format: json\n",
    );
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("invalid YAML"), "{found:?}");
    assert!(found[0].contains("line 3"), "{found:?}");
}

#[test]
fn file_problems_all_reported() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        r#"
http = "everything"
[logging]
format = "xml"
queue_capacity = 0
[metrics]
max_series_per_metric = 0
auth_token = ""
rate_limit = -1
[shutdown]
timeout = "30 parsecs"
"#,
    );
    let found = problems(from_file(&path, &[]));
    let keys: BTreeSet<&str> = found
        .iter()
        .map(|problem| problem.split([' ', '=']).next().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "http",
            "logging.format",
            "logging.queue_capacity",
            "metrics.max_series_per_metric",
            "metrics.auth_token",
            "metrics.rate_limit",
            "shutdown.timeout",
        ]),
        "{found:#?}"
    );
    let file = format!("(from file {})", path.display());
    assert!(
        found.iter().all(|problem| problem.contains(&file)),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|problem| problem.starts_with("shutdown.timeout = \"30 parsecs\"")),
        "{found:#?}"
    );
}

#[test]
fn toml_unquoted_dotted_attribute_explained() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        "[service.resource_attributes]\nk8s.pod.name = \"api-1\"\n",
    );
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("service.resource_attributes.k8s = "),
        "{found:?}"
    );
    assert!(
        found[0].contains("quote attribute names that contain dots"),
        "{found:?}"
    );
}

#[test]
fn token_file_whitespace_rejected() {
    let dir = TempDir::new().unwrap();
    let token = write(&dir, "token", " \n\n");
    let found = problems(
        Config::builder()
            .env(false)
            .set("metrics.auth_token_file", &token),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&format!("{token:?}")), "{found:?}");
    assert!(
        found[0].contains("empty or holds only whitespace"),
        "{found:?}"
    );
}

#[test]
fn token_file_unreadable_names_path() {
    let dir = TempDir::new().unwrap();
    let found = problems(Config::builder().env_from([(
        "OBSKIT_METRICS_AUTH_TOKEN_FILE",
        dir.path().to_str().unwrap(),
    )]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&format!("{:?}", dir.path())), "{found:?}");
    assert!(
        found[0].contains("(from env OBSKIT_METRICS_AUTH_TOKEN_FILE)"),
        "{found:?}"
    );
    assert!(found[0].contains("cannot read the file"), "{found:?}");
}

#[test]
fn token_file_crlf_trimmed() {
    let dir = TempDir::new().unwrap();
    let token = write(&dir, "token", "abc123\r\n");
    let config = Config::builder()
        .env(false)
        .set("metrics.auth_token_file", &token)
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let token = config
        .metrics
        .auth_token
        .map(|token| token.expose().to_owned());
    assert_eq!(token.as_deref(), Some("abc123"));
}

#[test]
fn token_file_size_bounded() {
    let dir = TempDir::new().unwrap();
    let large = write(&dir, "token", &"a".repeat(70_000));
    for path in [large, PathBuf::from("/dev/zero")] {
        let found = problems(
            Config::builder()
                .env(false)
                .set("metrics.auth_token_file", &path),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("larger than 65536 bytes"), "{found:?}");
    }
}

// The `redact` section.

const REDACT_TOML: &str = r#"
[redact]
enabled = true
allow_fields = ["order_id"]
hash_key = "0123456789abcdef0123"
max_value_bytes = 4096

[redact.fields]
names = ["password", "pin"]
add = ["internal_note"]
remove = ["pin"]

[redact.rules]
field = "hash"
email = "partial"
card = "partial"
ssn = "off"
phone = "mask"
iban = "partial"
jwt = "off"
credentials = "hash"
aws_key = "off"
token = "off"
private_key = "mask"
url_credentials = "off"
ip = "mask"
"#;

const REDACT_YAML: &str = r#"
redact:
  enabled: true
  allow_fields: [order_id]
  hash_key: "0123456789abcdef0123"
  max_value_bytes: 4096
  fields:
    names: [password, pin]
    add: [internal_note]
    remove: [pin]
  rules:
    field: hash
    email: partial
    card: partial
    ssn: "off"
    phone: mask
    iban: partial
    jwt: "off"
    credentials: hash
    aws_key: "off"
    token: "off"
    private_key: mask
    url_credentials: "off"
    ip: mask
"#;

fn check_redact_loaded(dir: &TempDir, file_name: &str, text: &str) {
    let path = write(dir, file_name, text);
    let (config, report) = from_file(&path, &[])
        .build_with_report()
        .unwrap_or_else(|error| panic!("{error}"));
    let redact = &config.redact;

    assert!(redact.enabled);
    assert_eq!(redact.allow_fields, ["order_id"]);
    assert_eq!(
        redact.hash_key.as_ref().map(|key| key.expose()),
        Some("0123456789abcdef0123")
    );
    assert_eq!(redact.max_value_bytes, 4096);
    assert_eq!(
        redact.fields.names,
        Some(vec!["password".to_owned(), "pin".to_owned()])
    );
    assert_eq!(redact.fields.add, ["internal_note"]);
    assert_eq!(redact.fields.remove, ["pin"]);

    let rules = &redact.rules;
    assert_eq!(rules.field, RuleMode::Hash);
    assert_eq!(rules.email, RuleMode::Partial);
    assert_eq!(rules.card, RuleMode::Partial);
    assert_eq!(rules.ssn, RuleMode::Off);
    assert_eq!(rules.phone, RuleMode::Mask);
    assert_eq!(rules.iban, RuleMode::Partial);
    assert_eq!(rules.jwt, RuleMode::Off);
    assert_eq!(rules.credentials, RuleMode::Hash);
    assert_eq!(rules.aws_key, RuleMode::Off);
    assert_eq!(rules.token, RuleMode::Off);
    assert_eq!(rules.private_key, RuleMode::Mask);
    assert_eq!(rules.url_credentials, RuleMode::Off);
    assert_eq!(rules.ip, RuleMode::Mask);

    let from_file = format!("file {}", path.display());
    assert_eq!(source(&report, "redact.rules.ip"), from_file);
    assert_eq!(source(&report, "redact.hash_key"), from_file);
    let key = report
        .get("redact.hash_key")
        .map(|entry| entry.value.clone());
    assert_eq!(key, Some(serde_json::Value::from("****")));
    let token = report
        .get("redact.rules.token")
        .map(|entry| entry.value.clone());
    assert_eq!(token, Some(serde_json::Value::from("off")));
    assert!(!report.to_string().contains("0123456789abcdef0123"));
}

#[test]
fn redact_toml_loaded() {
    let dir = TempDir::new().unwrap();
    check_redact_loaded(&dir, "obskit.toml", REDACT_TOML);
}

#[test]
fn redact_yaml_loaded() {
    let dir = TempDir::new().unwrap();
    check_redact_loaded(&dir, "obskit.yaml", REDACT_YAML);
}

#[test]
fn redact_env_loaded() {
    let (config, report) = Config::builder()
        .env_from([
            ("OBSKIT_REDACT_ENABLED", "FALSE"),
            ("OBSKIT_REDACT_HASH_KEY", "0123456789abcdef"),
            ("OBSKIT_REDACT_MAX_VALUE_BYTES", " 100 "),
            ("OBSKIT_REDACT_ALLOW_FIELDS", "order_id, trace_id,,"),
            ("OBSKIT_REDACT_FIELDS_ADD", "internal_note"),
            ("OBSKIT_REDACT_FIELDS_REMOVE", "session,cookie"),
            ("OBSKIT_REDACT_RULES_FIELD", "Hash"),
            ("OBSKIT_REDACT_RULES_EMAIL", "partial"),
            ("OBSKIT_REDACT_RULES_CARD", "off"),
            ("OBSKIT_REDACT_RULES_SSN", "off"),
            ("OBSKIT_REDACT_RULES_PHONE", "off"),
            ("OBSKIT_REDACT_RULES_IBAN", "off"),
            ("OBSKIT_REDACT_RULES_JWT", "off"),
            ("OBSKIT_REDACT_RULES_CREDENTIALS", "off"),
            ("OBSKIT_REDACT_RULES_AWS_KEY", "off"),
            ("OBSKIT_REDACT_RULES_TOKEN", "partial"),
            ("OBSKIT_REDACT_RULES_PRIVATE_KEY", "off"),
            ("OBSKIT_REDACT_RULES_URL_CREDENTIALS", "off"),
            ("OBSKIT_REDACT_RULES_IP", "mask"),
        ])
        .build_with_report()
        .unwrap_or_else(|error| panic!("{error}"));

    let redact = &config.redact;
    assert!(!redact.enabled);
    assert_eq!(
        redact.hash_key.as_ref().map(|key| key.expose()),
        Some("0123456789abcdef")
    );
    assert_eq!(redact.max_value_bytes, 100);
    assert_eq!(redact.allow_fields, ["order_id", "trace_id"]);
    assert_eq!(redact.fields.add, ["internal_note"]);
    assert_eq!(redact.fields.remove, ["session", "cookie"]);

    assert_eq!(redact.rules.field, RuleMode::Hash);
    assert_eq!(redact.rules.email, RuleMode::Partial);
    assert_eq!(redact.rules.card, RuleMode::Off);
    assert_eq!(redact.rules.token, RuleMode::Partial);
    assert_eq!(redact.rules.private_key, RuleMode::Off);
    assert_eq!(redact.rules.ip, RuleMode::Mask);

    assert_eq!(
        source(&report, "redact.allow_fields"),
        "env OBSKIT_REDACT_ALLOW_FIELDS"
    );
    assert_eq!(
        source(&report, "redact.rules.url_credentials"),
        "env OBSKIT_REDACT_RULES_URL_CREDENTIALS"
    );
}

#[test]
fn redact_env_list_replaces_file_list() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        "[redact]\nallow_fields = [\"a\", \"b\"]\nfields.add = [\"note\"]\n",
    );
    let config = from_file(&path, &[("OBSKIT_REDACT_ALLOW_FIELDS", "c")])
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.redact.allow_fields, ["c"]);
    assert_eq!(config.redact.fields.add, ["note"]);
}

#[test]
fn redact_unknown_key_suggested() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", "[redact.rules]\nemial = \"mask\"\n");
    assert_eq!(
        problems(from_file(&path, &[])),
        [format!(
            "redact.rules.emial (from file {}): unknown key; did you mean `redact.rules.email`?",
            path.display()
        )]
    );
    let found = problems(Config::builder().env_from([("OBSKIT_REDACT_RULE_EMAIL", "mask")]));
    assert_eq!(
        found,
        [
            "OBSKIT_REDACT_RULE_EMAIL (from env): unknown environment variable; did you mean `OBSKIT_REDACT_RULES_EMAIL`?"
        ]
    );
}

#[test]
fn redact_invalid_values_rejected() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.yaml",
        "redact:\n  max_value_bytes: 0\n  rules:\n    email: blur\n  fields:\n    add: [\"__\"]\n",
    );
    let found = problems(from_file(
        &path,
        &[
            ("OBSKIT_REDACT_ENABLED", "yes"),
            ("OBSKIT_REDACT_MAX_VALUE_BYTES", "64k"),
        ],
    ));
    let file = path.display();
    let expected = [
        "redact.enabled = \"yes\" (from env OBSKIT_REDACT_ENABLED): invalid value; expected true or false".to_owned(),
        "redact.max_value_bytes = \"64k\" (from env OBSKIT_REDACT_MAX_VALUE_BYTES): invalid value; expected an integer greater than 0".to_owned(),
        format!("redact.rules.email = \"blur\" (from file {file}): invalid value; expected one of \"mask\", \"partial\", \"hash\", \"off\""),
        format!("redact.fields.add = [\"__\"] (from file {file}): invalid value; expected a list of field names, each with at least one character other than \"_\", \"-\", \".\", \"/\", \":\" and whitespace"),
        format!("redact.max_value_bytes = 0 (from file {file}): invalid value; expected an integer greater than 0"),
    ];
    for line in &expected {
        assert!(found.contains(line), "missing {line:?} in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn redact_hash_rule_needs_key() {
    let found = problems(Config::builder().env_from([("OBSKIT_REDACT_RULES_PHONE", "hash")]));
    assert_eq!(
        found,
        [
            "redact.rules.phone = \"hash\" (from env OBSKIT_REDACT_RULES_PHONE): invalid value; expected \"mask\", \"partial\" or \"off\", or \"hash\" together with redact.hash_key (OBSKIT_REDACT_HASH_KEY) set to a secret of at least 16 bytes"
        ]
    );

    let ok = Config::builder()
        .env_from([
            ("OBSKIT_REDACT_RULES_PHONE", "hash"),
            ("OBSKIT_REDACT_ENABLED", "false"),
        ])
        .build();
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn redact_short_hash_key_masked() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        "[redact]\nhash_key = \"hunter2\"\nrules.email = \"hash\"\n",
    );
    let found = problems(from_file(&path, &[]));
    assert_eq!(
        found,
        [format!(
            "redact.hash_key = **** (from file {}): invalid value; expected a secret of at least 16 bytes (this one has 7), such as the output of `openssl rand -hex 32`",
            path.display()
        )]
    );

    let empty = problems(Config::builder().env_from([("OBSKIT_REDACT_HASH_KEY", "")]));
    assert_eq!(empty.len(), 1, "{empty:?}");
    assert!(
        empty[0].starts_with("redact.hash_key = \"\" (from env OBSKIT_REDACT_HASH_KEY)"),
        "{empty:?}"
    );
}

#[test]
fn redact_hash_key_type_error_masked() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", "[redact]\nhash_key = 1234567890\n");
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("redact.hash_key = **** "), "{found:?}");
    assert!(!found[0].contains("1234567890"), "{found:?}");
}

// The reference tables in docs/configuration.md.

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Splits each row of the first table after `heading` into cells, which contain no `|`.
fn table_after(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no heading {heading:?}"));
    doc[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// Returns the texts between backticks in a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(ToOwned::to_owned)
        .collect()
}

/// Dotted leaf keys of `Config::default()` with their JSON values; an empty table is a leaf.
fn default_leaves() -> BTreeMap<String, serde_json::Value> {
    fn walk(
        prefix: &str,
        value: &serde_json::Value,
        out: &mut BTreeMap<String, serde_json::Value>,
    ) {
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (name, child) in map {
                    let key = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&key, child, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned(), value.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut out,
    );
    out
}

#[test]
fn doc_env_table_matches_code() {
    let documented: BTreeSet<(String, Option<String>)> =
        table_after(&doc(), "## Environment variables")
            .iter()
            .map(|row| {
                let name = code_spans(&row[0]).concat();
                let key = code_spans(&row[1]).first().cloned();
                (name, key)
            })
            .collect();
    let code: BTreeSet<(String, Option<String>)> = ENV_VARS
        .iter()
        .map(|var| (var.name.to_owned(), var.key.map(ToOwned::to_owned)))
        .collect();
    assert_eq!(documented, code);
}

#[test]
fn doc_key_table_matches_defaults() {
    let rows = table_after(&doc(), "## Keys");
    let leaves = default_leaves();

    let documented: BTreeSet<String> = rows
        .iter()
        .map(|row| code_spans(&row[0]).concat())
        .collect();
    let expected: BTreeSet<String> = leaves.keys().cloned().collect();
    assert_eq!(documented, expected);

    for row in &rows {
        let key = code_spans(&row[0]).concat();
        let default = &leaves[&key];
        let cell = row[2].trim_matches('`');
        if default.is_null() {
            assert_eq!(cell, "unset", "default of {key}");
        } else {
            assert_eq!(cell, default.to_string(), "default of {key}");
        }

        let documented_vars: BTreeSet<String> = code_spans(&row[3]).into_iter().collect();
        let mapped_vars: BTreeSet<String> = ENV_VARS
            .iter()
            .filter(|var| var.key == Some(key.as_str()))
            .map(|var| var.name.to_owned())
            .collect();
        assert_eq!(documented_vars, mapped_vars, "variables of {key}");
    }
}

// Circuit breakers under resilience.circuit_breakers.

#[test]
fn doc_breaker_table_matches_code() {
    let rows = table_after(&doc(), "## Circuit breakers");
    let defaults = serde_json::to_value(obskit::config::CircuitBreakerConfig::default()).unwrap();

    let documented: Vec<String> = rows
        .iter()
        .map(|row| code_spans(&row[0]).concat())
        .collect();
    let code: Vec<String> = obskit::config::CIRCUIT_BREAKER_KEYS
        .iter()
        .map(|info| info.key.to_owned())
        .collect();
    assert_eq!(documented, code);

    for row in &rows {
        let key = code_spans(&row[0]).concat();
        let cell = row[2].trim_matches('`');
        match defaults.get(&key) {
            Some(default) => assert_eq!(cell, default.to_string(), "default of {key}"),
            None => assert_eq!(cell, "unset", "default of {key}"),
        }
    }
}

const BREAKERS_TOML: &str = r#"
[resilience.circuit_breakers.payments]
preset = "external_api"
failure_rate_threshold = 40
wait_duration_in_open_state = "20s"
slow_call_duration_threshold = "off"

[resilience.circuit_breakers.sessions]
sliding_window_size = 10
minimum_number_of_calls = 5
"#;

#[test]
fn breaker_file_yields_configured_breaker() {
    use obskit::config::SlidingWindowType;
    use obskit::resilience::CircuitBreakerRegistry;

    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", BREAKERS_TOML);
    let (config, report) = from_file(&path, &[]).build_with_report().unwrap();

    let metrics = obskit::metrics::Registry::default();
    let breakers = CircuitBreakerRegistry::from_config(&config.resilience, &metrics).unwrap();
    let names: Vec<String> = breakers
        .all()
        .iter()
        .map(|breaker| breaker.name().to_owned())
        .collect();
    assert_eq!(names, ["payments", "sessions"]);

    let payments = breakers.get_or_create("payments").unwrap();
    let settings = payments.config();
    assert_eq!(settings.failure_rate_threshold, 40.0);
    assert_eq!(
        settings.wait_duration_in_open_state,
        Duration::from_secs(20)
    );
    assert_eq!(settings.slow_call_duration_threshold, None);
    assert_eq!(settings.sliding_window_type, SlidingWindowType::Time);
    assert_eq!(settings.permitted_number_of_calls_in_half_open_state, 3);

    let sessions = breakers.get_or_create("sessions").unwrap();
    assert_eq!(sessions.config().sliding_window_size, 10);
    assert_eq!(sessions.config().failure_rate_threshold, 50.0);

    let other = breakers.get_or_create("unlisted").unwrap();
    assert_eq!(other.config().sliding_window_size, 100);

    assert_eq!(
        source(
            &report,
            "resilience.circuit_breakers.payments.failure_rate_threshold"
        ),
        format!("file {}", path.display())
    );
}

#[test]
fn breaker_bad_values_name_breaker_key_and_range() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        r#"
[resilience.circuit_breakers.payments]
failure_rate_threshold = 150
sliding_window_type = "sliding"
wait_duration_in_open_state = "soon"
permitted_number_of_calls_in_half_open_state = 0
failure_rate_treshold = 40
preset = "databse"
"#,
    );
    let found = problems(from_file(&path, &[]));
    let origin = format!("(from file {})", path.display());
    let prefix = "resilience.circuit_breakers.payments";
    let expected = [
        format!(
            "{prefix}.failure_rate_treshold {origin}: unknown key; did you mean `failure_rate_threshold`?"
        ),
        format!(
            "{prefix}.preset = \"databse\" {origin}: invalid value; expected one of \"database\", \"cache\", \"external_api\""
        ),
        format!(
            "{prefix}.sliding_window_type = \"sliding\" {origin}: invalid value; expected one of \"count\", \"time\""
        ),
        format!(
            "{prefix}.wait_duration_in_open_state = \"soon\" {origin}: invalid value; expected a duration of at least 1ms, such as \"60s\""
        ),
        format!(
            "{prefix}.failure_rate_threshold = 150 {origin}: invalid value; expected a percentage greater than 0 and at most 100"
        ),
        format!(
            "{prefix}.permitted_number_of_calls_in_half_open_state = 0 {origin}: invalid value; expected an integer from 1 to 10000"
        ),
    ];
    for line in &expected {
        assert!(found.contains(line), "missing {line:?} in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn breaker_name_with_dot_rejected() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.toml",
        "[resilience.circuit_breakers.\"pay.ments\"]\nminimum_number_of_calls = 5\n",
    );
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("resilience.circuit_breakers.pay.ments = \"pay.ments\""),
        "{found:?}"
    );
}

// The `slo` section.

const SLO_TOML: &str = r#"
[slo.objectives.orders-availability]
kind = "availability"
target = 99.9
period = "28d"
route = "/orders/{id}"

[slo.objectives.checkout-errors]
kind = "error_rate"
target = 0.5
period = "4w"
route = "/checkout"
method = "POST"
"#;

#[test]
fn slo_tables_loaded_from_toml() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "obskit.toml", SLO_TOML);
    let config = from_file(&path, &[]).build().unwrap();
    let set = config.slo.definitions().unwrap();
    let budgets: Vec<(String, String)> = set
        .definitions()
        .iter()
        .map(|slo| (slo.name.clone(), slo.target.error_budget().to_string()))
        .collect();
    assert_eq!(
        budgets,
        [
            ("checkout-errors".to_owned(), "0.005".to_owned()),
            ("orders-availability".to_owned(), "0.001".to_owned()),
        ]
    );
}

#[test]
fn slo_tables_loaded_from_yaml() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "obskit.yaml",
        "slo:\n  objectives:\n    orders:\n      kind: latency\n      target: 99.95\n      threshold: 100ms\n      period: 30d\n      route: /orders\n",
    );
    let config = from_file(&path, &[]).build().unwrap();
    let set = config.slo.definitions().unwrap();
    assert_eq!(set.definitions()[0].target.to_string(), "0.9995");
    assert_eq!(set.definitions()[0].kind.threshold_seconds(), Some(0.1));
}

#[test]
fn slo_invalid_field_named_with_key() {
    let dir = TempDir::new().unwrap();
    let text = SLO_TOML
        .replace("target = 99.9", "target = 100")
        .replace("period = \"4w\"", "period = \"2d\"");
    let path = write(&dir, "obskit.toml", &text);
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "slo.objectives.checkout-errors.period = \"2d\" (from file {}): SLO \"checkout-errors\": period = \"2d\" is shorter than the longest alert window",
            path.display()
        )),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("slo.objectives.orders-availability.target = 100 "),
        "{found:?}"
    );
    assert!(found[1].contains("leaves no error budget"), "{found:?}");
}

#[test]
fn slo_unknown_field_suggested() {
    let dir = TempDir::new().unwrap();
    let text = SLO_TOML.replace(
        "route = \"/checkout\"",
        "route = \"/checkout\"\nmethdo = \"GET\"",
    );
    let path = write(&dir, "obskit.toml", &text);
    let found = problems(from_file(&path, &[]));
    assert_eq!(
        found,
        [format!(
            "slo.objectives.checkout-errors.methdo (from file {}): unknown key; did you mean `method`?",
            path.display()
        )]
    );
}

#[test]
fn slo_missing_field_named() {
    let dir = TempDir::new().unwrap();
    let text = SLO_TOML.replace("period = \"28d\"\n", "");
    let path = write(&dir, "obskit.toml", &text);
    let found = problems(from_file(&path, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("slo.objectives.orders-availability = "),
        "{found:?}"
    );
    assert!(found[0].contains("missing field `period`"), "{found:?}");
}
