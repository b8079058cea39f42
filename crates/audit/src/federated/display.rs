//! The post-mortem as people read it: the bundles, the timeline, the
//! findings by area, and the limits of the findings.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Area, PostMortem};

/// A signed time, as the text form shows it (UTC, milliseconds).
pub(super) fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl fmt::Display for PostMortem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verified = self.bundles.iter().filter(|b| b.verified).count();
        write!(
            f,
            "Post-mortem of federation {}: {} bundle(s), {verified} verified",
            self.federation,
            self.bundles.len()
        )?;
        if let Some(q) = &self.subject {
            write!(f, ", records linked to {q:?}")?;
        }
        writeln!(f)?;
        writeln!(f, "\nBundles")?;
        for b in &self.bundles {
            if b.verified {
                let at = b.exported_at.map(when).unwrap_or_default();
                writeln!(
                    f,
                    "  verified  {}  {}: {} entries, exported {at}",
                    b.name, b.agency, b.entries
                )?;
            } else {
                let why = b.problems.first().map(String::as_str).unwrap_or("");
                writeln!(f, "  FAILED    {}  {}: {why}", b.name, b.agency)?;
            }
        }
        writeln!(f, "\nTimeline ({} signed records)", self.timeline.len())?;
        for t in &self.timeline {
            writeln!(
                f,
                "  {}  {:<15}  {}  {}  [{}]",
                when(t.at),
                t.kind.name(),
                t.alert_id,
                t.summary,
                t.held_by.join(", ")
            )?;
        }
        writeln!(f, "\nFindings ({})", self.findings.len())?;
        for area in Area::ALL {
            writeln!(f, "  {}", area.title())?;
            let mut none = true;
            for x in self.in_area(area) {
                none = false;
                writeln!(f, "    - {} [{}]", x.detail, x.bundles.join(", "))?;
            }
            if none {
                writeln!(f, "    (nothing found)")?;
            }
        }
        writeln!(f, "\nLimits of these findings")?;
        for l in &self.limits {
            writeln!(f, "  - {l}")?;
        }
        Ok(())
    }
}
