//! The log on stderr: env_logger's text lines for people, or one JSON object per line
//! (`log_format: Json`) for journald, Loki or Elastic pipelines, with the fields of the
//! relay's decisions (`event`, `port`, `address`, ...) as keys of their own so a pipeline
//! filters on them instead of parsing sentences.

use std::fmt::Display;
use std::io::Write;

use log::kv::{self, Key, Value, VisitSource};
use serde_json::{Map, Value as Json};

use crate::config::LogFormat;
use crate::engine::{Event, EventNames};

/// Installs the logger: `level` unless `RUST_LOG` says otherwise, lines as `format` says.
pub fn init(level: log::LevelFilter, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .parse_env(env_logger::Env::default());
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let ts = buf.timestamp_micros().to_string();
            let line = json_line(&ts, record);
            // One write per line: lines from several threads never interleave.
            buf.write_all(line.as_bytes())
        });
    }
    builder.init();
}

/// Logs `event` at `level` under `target`: its wording as the message (the text every
/// driver prints) and its fields as key-values (which only the JSON format writes).
pub fn event<N: EventNames + ?Sized>(level: log::Level, target: &str, event: &Event, names: &N) {
    let fields = Fields(event.fields(names));
    let message = event.display(names);
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(target)
            .args(format_args!("{message}"))
            .key_values(&fields)
            .build(),
    );
}

/// An event's fields as a key-value source for a log record.
struct Fields(Vec<(&'static str, String)>);

impl kv::Source for Fields {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        for (k, v) in &self.0 {
            visitor.visit_pair(Key::from_str(k), Value::from(v.as_str()))?;
        }
        Ok(())
    }
}

/// Collects a record's key-values into the JSON object.
struct Collect<'a>(&'a mut Map<String, Json>);

impl<'kvs> VisitSource<'kvs> for Collect<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
        let key = key.as_str();
        // A field never hides the line's own keys.
        let key = if matches!(key, "ts" | "level" | "target" | "message") {
            format!("field_{key}")
        } else {
            key.to_owned()
        };
        self.0.insert(key, Json::String(value.to_string()));
        Ok(())
    }
}

/// `{"address":"2001:db8::5","event":"relayed",...,"level":"DEBUG","message":"NS ...",
/// "target":"ndprelay::decision","ts":"2026-12-07T16:40:00.123456Z"}` and a newline.
fn json_line(ts: &dyn Display, record: &log::Record<'_>) -> String {
    let mut obj = Map::new();
    obj.insert("ts".into(), Json::String(ts.to_string()));
    obj.insert("level".into(), Json::String(record.level().to_string()));
    obj.insert("target".into(), Json::String(record.target().to_owned()));
    obj.insert("message".into(), Json::String(record.args().to_string()));
    // A field that cannot be read is left out; the message still says it.
    let _ = record.key_values().visit(&mut Collect(&mut obj));
    let mut line = Json::Object(obj).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::engine::PortId;

    fn line_for(level: log::Level, target: &str, message: &str, fields: &Fields) -> Json {
        let line = json_line(
            &"2026-12-07T16:40:00.123456Z",
            &log::Record::builder()
                .level(level)
                .target(target)
                .args(format_args!("{message}"))
                .key_values(fields)
                .build(),
        );
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(&line).expect("one JSON object per line")
    }

    #[test]
    fn a_plain_line_has_time_level_target_and_message() {
        let j = line_for(
            log::Level::Warn,
            "ndprelay::live",
            "no RA on \"eth0\"\nyet",
            &Fields(Vec::new()),
        );
        assert_eq!(j["ts"], "2026-12-07T16:40:00.123456Z");
        assert_eq!(j["level"], "WARN");
        assert_eq!(j["target"], "ndprelay::live");
        assert_eq!(
            j["message"], "no RA on \"eth0\"\nyet",
            "quotes and newlines escaped"
        );
        assert_eq!(j.as_object().map(Map::len), Some(4));
    }

    #[test]
    fn an_event_line_carries_its_fields_as_keys() {
        let names = ["eth0", "br0"];
        let e = Event::Relayed {
            from: PortId(0),
            to: vec![PortId(1)],
            message: "NS",
            addr: "2001:db8:1::5".parse().expect("literal"),
        };
        let j = line_for(
            log::Level::Debug,
            "ndprelay::decision",
            &e.display(&names[..]).to_string(),
            &Fields(e.fields(&names[..])),
        );
        assert_eq!(j["event"], "relayed");
        assert_eq!(j["message"], "NS 2001:db8:1::5 from eth0 relayed to br0");
        assert_eq!(j["address"], "2001:db8:1::5");
        assert_eq!((&j["from"], &j["to"]), (&"eth0".into(), &"br0".into()));
    }

    #[test]
    fn a_field_named_like_a_line_key_does_not_replace_it() {
        let j = line_for(
            log::Level::Info,
            "t",
            "m",
            &Fields(vec![("message", "field".into()), ("level", "x".into())]),
        );
        assert_eq!((&j["message"], &j["level"]), (&"m".into(), &"INFO".into()));
        assert_eq!(j["field_message"], "field");
    }
}
