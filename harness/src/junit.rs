//! The JUnit XML report of outcomes: a suite's, and each run's `junit.xml`.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::config::faults_word;
use crate::outcome::Outcome;

/// Replaces the characters XML 1.0 cannot carry at all (control characters other than
/// tab, newline and carriage return); quick-xml escapes the rest.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// The JUnit XML report: one `<testsuite>`, one `<testcase>` per run, a `<failure>` for
/// an unmet expectation (naming the anomalies) and an `<error>` for a crashed run.
pub fn junit(suite: &str, started: SystemTime, outcomes: &[Outcome]) -> Result<String> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};

    let failures = outcomes
        .iter()
        .filter(|o| o.result.is_ok() && !o.passed())
        .count();
    let errors = outcomes.iter().filter(|o| o.result.is_err()).count();
    let total: f64 = outcomes.iter().map(|o| o.duration.as_secs_f64()).sum();
    let timestamp = humantime::format_rfc3339_seconds(started).to_string();
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let suite_name = xml_text(suite);
    writer
        .create_element("testsuite")
        .with_attribute(("name", suite_name.as_str()))
        .with_attribute(("tests", outcomes.len().to_string().as_str()))
        .with_attribute(("failures", failures.to_string().as_str()))
        .with_attribute(("errors", errors.to_string().as_str()))
        .with_attribute(("skipped", "0"))
        .with_attribute(("time", format!("{total:.3}").as_str()))
        .with_attribute(("timestamp", timestamp.as_str()))
        .write_inner_content(|w| {
            for o in outcomes {
                let name = xml_text(&o.planned.label);
                let classname = xml_text(&format!(
                    "faultline.{suite}.{}.{}",
                    o.planned.config.db, o.planned.config.workload
                ));
                let time = format!("{:.3}", o.duration.as_secs_f64());
                let mut out = format!(
                    "expect {}; settings: {} {} on {} node(s), faults {}, seed {}",
                    o.expected_words(),
                    o.planned.config.db,
                    o.planned.config.workload,
                    o.planned.config.nodes,
                    faults_word(&o.planned.config.nemesis),
                    o.planned.config.seed
                );
                if let Ok(v) = &o.result {
                    let _ = write!(out, "\nverdict: {}", v.word());
                }
                if !o.anomalies.is_empty() {
                    let _ = write!(out, "\nfound: {}", o.anomalies);
                }
                if let Some(dir) = &o.run_dir {
                    let _ = write!(out, "\nrun: {}", dir.display());
                }
                let out = xml_text(&out);
                w.create_element("testcase")
                    .with_attribute(("name", name.as_str()))
                    .with_attribute(("classname", classname.as_str()))
                    .with_attribute(("time", time.as_str()))
                    .write_inner_content(|w| {
                        if let Some(message) = o.failure() {
                            let message = xml_text(&message);
                            w.create_element("failure")
                                .with_attribute(("message", message.as_str()))
                                .with_attribute(("type", "unmet-expectation"))
                                .write_text_content(BytesText::new(&message))?;
                        }
                        if let Err(e) = &o.result {
                            let error = xml_text(e);
                            let first = error.lines().next().unwrap_or("").to_string();
                            w.create_element("error")
                                .with_attribute(("message", first.as_str()))
                                .with_attribute(("type", "harness-failure"))
                                .write_text_content(BytesText::new(&error))?;
                        }
                        w.create_element("system-out")
                            .write_text_content(BytesText::new(&out))?;
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    let mut xml = String::from_utf8(writer.into_inner()).context("JUnit XML is not UTF-8")?;
    xml.push('\n');
    Ok(xml)
}

#[cfg(test)]
mod tests {
    use faultline_checker::Validity;

    use super::*;
    use crate::outcome::Expect;
    use crate::outcome::tests::outcome;

    #[test]
    fn junit_escapes_and_counts() {
        use Validity::*;
        let outcomes = [
            outcome(Expect::Valid, Ok(Invalid)),
            outcome(Expect::Valid, Err("x < y & \"z\"".into())),
            outcome(Expect::Invalid, Ok(Invalid)),
        ];
        let xml = junit("night&ly", SystemTime::now(), &outcomes).unwrap();
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"night&amp;ly\""), "{xml}");
        assert!(xml.contains("a&lt;&amp;&gt;&quot;b\u{fffd}"), "{xml}");
        assert!(
            xml.contains("message=\"expected valid, got invalid: elle: G-single, &lt;G1c&gt;\""),
            "{xml}"
        );
        // Well-formed: a full parse succeeds.
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut depth = 0i32;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(_) => depth += 1,
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
    }
}
