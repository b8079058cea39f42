//! The view's pages, server-rendered. Every value passes through [`esc`];
//! times are shown in UTC inside a `<time>` whose `datetime` the script
//! turns into local time on hover. Every state is written in words
//! (LAPSED, REPEATED_UNANSWERED); colour and dashes only repeat them.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::picture::{EdgeKind, EdgeState, Picture};
use crate::timeline::{Entry, Item, Record, Timeline};
use crate::{Snapshot, View};

/// Escapes text for HTML content and quoted attributes.
pub(super) fn esc(text: &str) -> String {
    html_escape::encode_safe(text).into_owned()
}

/// A time in UTC, machine-readable for the script's local-time hover.
fn time(at: DateTime<Utc>) -> String {
    let shown = at.format("%Y-%m-%d %H:%M UTC");
    format!(
        "<time datetime=\"{}\" title=\"{shown}\">{shown}</time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Tocsin federation view</title>\
         <link rel=\"stylesheet\" href=\"/fedview.css\">\
         <script src=\"/fedview.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to the page</a>\
         <header><a class=\"home\" href=\"/\">Tocsin federation view</a>\
         <span>{title}</span></header><main id=\"main\" tabindex=\"-1\">{body}</main></body></html>\n",
        title = esc(title),
    )
}

/// A failed request.
pub(super) fn error(message: &str) -> String {
    page(
        "Not found",
        &format!(
            "<h1>Not found</h1><p role=\"alert\">{}</p><p><a href=\"/\">Back to the federation</a></p>",
            esc(message)
        ),
    )
}

/// The CSS class of a state, which gives its colour and dash.
fn class(state: EdgeState) -> String {
    format!("state-{}", state.word().to_lowercase())
}

/// `/`: the federation now and, once made, the post-mortem.
pub(super) fn live(view: &View, snapshot: &Snapshot, at: Option<usize>) -> String {
    let mut body = format!(
        "<h1>{}</h1><section id=\"live\" data-version=\"{}\" aria-labelledby=\"live-heading\">{}</section>\
         <p id=\"live-state\" class=\"muted\">{}</p>",
        esc(&snapshot.title),
        snapshot.version,
        now(snapshot),
        if snapshot.timeline.is_some() {
            "The scenario is over; the view keeps serving until the demo is stopped (Ctrl-C)."
        } else {
            "Reload to follow the scenario (the page follows it by itself where scripts run)."
        }
    );
    if let Some(tl) = &snapshot.timeline {
        body.push_str(&postmortem(view, tl, at.unwrap_or(0)));
    }
    page(&snapshot.title, &body)
}

/// The live part: what the events carry.
pub(super) fn now(snapshot: &Snapshot) -> String {
    let mut out = String::from("<h2 id=\"live-heading\">The federation now</h2>");
    match &snapshot.now {
        Some(p) => out.push_str(&picture(p)),
        None => out.push_str("<p>Waiting for the first reading of the nodes…</p>"),
    }
    out
}

/// The picture: the clock, the graph, its legend, the flags, every edge.
fn picture(p: &Picture) -> String {
    let mut out = format!(
        "<p class=\"clock\">Scenario clock: <strong>{}</strong></p>",
        time(p.clock)
    );
    out.push_str("<div class=\"picture\"><div class=\"figure\">");
    out.push_str(&graph(p));
    out.push_str("<ul class=\"legend\" aria-label=\"Edge states\">");
    for s in EdgeState::ALL {
        let _ = write!(
            out,
            "<li><svg width=\"36\" height=\"10\" aria-hidden=\"true\"><line class=\"{}\" x1=\"0\" y1=\"5\" x2=\"36\" y2=\"5\"/></svg> {}</li>",
            class(s),
            s.word()
        );
    }
    out.push_str("</ul></div><div class=\"side\">");
    out.push_str("<h3>Flags raised</h3>");
    if p.flags.is_empty() {
        out.push_str("<p class=\"flags-none\">No flag raised yet.</p>");
    } else {
        out.push_str("<ol class=\"flags\">");
        for f in &p.flags {
            let _ = write!(
                out,
                "<li class=\"flag\" data-subject=\"{subject}\" data-recipient=\"{to}\">\
                 <strong>REPEATED_UNANSWERED</strong> {subject}: {to} left {alerts} unanswered; \
                 raised by {by}{at}</li>",
                subject = esc(&f.subject),
                to = esc(&f.recipient),
                alerts = esc(&f.alerts.join(", ")),
                by = esc(&f.raised_by),
                at = f.at.map(|t| format!(" at {}", time(t))).unwrap_or_default(),
            );
        }
        out.push_str("</ol>");
    }
    out.push_str("</div></div>");
    out.push_str(
        "<table class=\"edges\"><caption>Every warning and hit report, to each recipient</caption>\
         <thead><tr><th scope=\"col\">From</th><th scope=\"col\">To</th><th scope=\"col\">What</th>\
         <th scope=\"col\">About</th><th scope=\"col\">Precedence</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Due</th></tr></thead><tbody>",
    );
    if p.edges.is_empty() {
        out.push_str("<tr><td colspan=\"7\">Nothing sent yet.</td></tr>");
    }
    for e in &p.edges {
        let what = match e.kind {
            EdgeKind::Alert => "alert",
            EdgeKind::HitReport => "hit report",
        };
        let late = if e.late { " (late)" } else { "" };
        let _ = write!(
            out,
            "<tr class=\"{cls}\" data-alert-id=\"{id}\" data-from=\"{from}\" data-to=\"{to}\" data-state=\"{word}\">\
             <td>{from}</td><td>{to}</td><td>{what} <code>{id}</code></td><td>{subject}</td>\
             <td>{prec}</td><td><strong>{word}</strong>{late}</td><td>{due}</td></tr>",
            cls = class(e.state),
            id = esc(&e.alert_id),
            from = esc(&e.from),
            to = esc(&e.to),
            subject = esc(&e.subject),
            prec = esc(&e.precedence),
            word = e.state.word(),
            due = e.due_at.map(time).unwrap_or_default(),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The agencies on a circle, an arrow per pair that exchanged anything,
/// coloured by the worst state between them and labelled with the count
/// of each state in words.
fn graph(p: &Picture) -> String {
    const W: f64 = 860.0;
    const H: f64 = 640.0;
    const R: f64 = 250.0;
    const NODE: f64 = 38.0;
    let n = p.agencies.len().max(1) as f64;
    let place: BTreeMap<&str, (f64, f64)> = p
        .agencies
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n;
            (
                a.id.as_str(),
                (W / 2.0 + R * angle.cos(), H / 2.0 + R * angle.sin()),
            )
        })
        .collect();
    let summary: Vec<String> = p
        .counts()
        .iter()
        .rev()
        .map(|(s, c)| format!("{c} {}", s.word()))
        .collect();
    let mut out = format!(
        "<svg class=\"graph\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"graph-title\">\
         <title id=\"graph-title\">{} agencies; {}</title>\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/>\
         </marker></defs>",
        p.agencies.len(),
        if summary.is_empty() {
            "nothing sent yet".to_owned()
        } else {
            esc(&summary.join(", "))
        }
    );
    for ((from, to), edges) in p.pairs() {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (place.get(from), place.get(to)) else {
            continue;
        };
        let mut by_state: BTreeMap<EdgeState, usize> = BTreeMap::new();
        for e in &edges {
            *by_state.entry(e.state).or_default() += 1;
        }
        let worst = by_state
            .keys()
            .next_back()
            .copied()
            .unwrap_or(EdgeState::Pending);
        let label: Vec<String> = by_state
            .iter()
            .rev()
            .map(|(s, c)| format!("{c} {}", s.word()))
            .collect();
        let label = label.join(" · ");
        // Bend each arrow to its right, so A→B and B→A stay apart, and
        // stop it at the circles' edges.
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        let (nx, ny) = (-uy, ux);
        let bend = 28.0;
        let (sx, sy) = (x1 + ux * NODE + nx * 8.0, y1 + uy * NODE + ny * 8.0);
        let (ex, ey) = (x2 - ux * NODE + nx * 8.0, y2 - uy * NODE + ny * 8.0);
        let (cx, cy) = ((x1 + x2) / 2.0 + nx * bend, (y1 + y2) / 2.0 + ny * bend);
        // The midpoint of the quadratic curve.
        let (mx, my) = (
            0.25 * sx + 0.5 * cx + 0.25 * ex,
            0.25 * sy + 0.5 * cy + 0.25 * ey,
        );
        let _ = write!(
            out,
            "<g class=\"pair\" data-from=\"{f}\" data-to=\"{t}\" data-state=\"{w}\">\
             <title>{f} to {t}: {l}</title>\
             <path class=\"{cls}\" d=\"M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}\" marker-end=\"url(#arrow)\"/>\
             <text class=\"edge-label\" x=\"{mx:.1}\" y=\"{my:.1}\" text-anchor=\"middle\">{l}</text></g>",
            f = esc(from),
            t = esc(to),
            w = worst.word(),
            cls = class(worst),
            l = esc(&label),
        );
    }
    for a in &p.agencies {
        let Some(&(x, y)) = place.get(a.id.as_str()) else {
            continue;
        };
        let down = if a.up { "" } else { " down" };
        let _ = write!(
            out,
            "<g class=\"agency{down}\" data-agency=\"{id}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{NODE}\"/>\
             <text x=\"{x:.1}\" y=\"{ty:.1}\" text-anchor=\"middle\">{id}</text>{state}</g>",
            id = esc(&a.id),
            ty = y + 4.0,
            state = if a.up {
                String::new()
            } else {
                format!(
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">(down)</text>",
                    y + 20.0
                )
            },
        );
    }
    out.push_str("</svg>");
    out
}

/// How an item reads on the timeline.
fn describe(item: &Item) -> String {
    match &item.entry {
        Entry::Record(r) => format!(
            "{} {} signed by {}: {}",
            r.kind.name(),
            r.alert_id,
            r.signer,
            r.summary
        ),
        Entry::Finding(f) => format!("Finding ({}): {}", f.area, f.detail),
    }
}

fn record_link(agency: &str, seq: usize, text: &str) -> String {
    format!(
        "<a class=\"record-link\" href=\"/records/{}/{seq}\">{}</a>",
        esc(agency),
        esc(text)
    )
}

/// The post-mortem: the scrubber and the federation at its instant, the
/// findings with their records, the timeline, the limits.
fn postmortem(view: &View, tl: &Timeline, at: usize) -> String {
    let n = tl.items.len();
    let at = at.min(n.saturating_sub(1));
    let mut out = format!(
        "<section id=\"postmortem\" aria-labelledby=\"pm-heading\">\
         <h2 id=\"pm-heading\">Post-mortem of federation {}: {} records, {} findings</h2>",
        esc(&tl.federation),
        tl.items
            .iter()
            .filter(|i| matches!(i.entry, Entry::Record(_)))
            .count(),
        tl.findings().count()
    );
    if n > 0 {
        let _ = write!(
            out,
            "<form id=\"scrubber\" action=\"/\" method=\"get\">\
             <label for=\"scrub\">Scrub through the timeline (arrow keys move one item):</label> \
             <input type=\"range\" id=\"scrub\" name=\"at\" min=\"0\" max=\"{max}\" step=\"1\" value=\"{at}\" \
             aria-valuetext=\"item {pos} of {n}\"> \
             <button type=\"submit\">Show this instant</button></form>\
             <section id=\"scrubbed\" aria-live=\"polite\">{inner}</section>",
            max = n - 1,
            pos = at + 1,
            inner = scrubbed(view, tl, at),
        );
    }
    out.push_str("<h3>Findings</h3>");
    if tl.findings().next().is_none() {
        out.push_str("<p>Nothing found.</p>");
    }
    out.push_str("<ol id=\"findings\">");
    for (i, item) in tl.items.iter().enumerate() {
        let Entry::Finding(f) = &item.entry else {
            continue;
        };
        let links: Vec<String> = f
            .rests_on
            .iter()
            .map(|r| {
                record_link(
                    &r.agency,
                    r.seq,
                    &format!("{} {} #{}", r.agency, r.kind.name(), r.seq),
                )
            })
            .collect();
        let _ = write!(
            out,
            "<li class=\"finding\" data-kind=\"{kind:?}\"><strong>{area}</strong>: {detail} \
             <a href=\"/?at={i}#scrubber\">(show at {when})</a>{rests}</li>",
            kind = f.kind,
            area = esc(f.area),
            detail = esc(&f.detail),
            when = item.at.format("%Y-%m-%d %H:%M UTC"),
            rests = if links.is_empty() {
                " Rests on no single record.".to_owned()
            } else {
                format!(" Rests on: {}.", links.join(", "))
            },
        );
    }
    out.push_str("</ol><h3>Timeline</h3><ol id=\"timeline\">");
    for (i, item) in tl.items.iter().enumerate() {
        let text = match &item.entry {
            Entry::Record(r) => {
                record_link(
                    &r.signer,
                    r.seq,
                    &format!("{} {} #{}", r.signer, r.kind.name(), r.seq),
                ) + &format!(": {}", esc(&r.summary))
            }
            Entry::Finding(f) => format!("<strong>Finding</strong>: {}", esc(&f.detail)),
        };
        let _ = write!(out, "<li id=\"item-{i}\">{} {text}</li>", time(item.at));
    }
    out.push_str("</ol><h3>Limits of these findings</h3><ul>");
    for l in &tl.limits {
        let _ = write!(out, "<li>{}</li>", esc(l));
    }
    out.push_str("</ul><h3>Bundles</h3><ul>");
    for (name, agency, verified) in &tl.bundles {
        let _ = write!(
            out,
            "<li>{} ({}): <strong>{}</strong></li>",
            esc(agency),
            esc(name),
            if *verified { "VERIFIED" } else { "FAILED" }
        );
    }
    out.push_str("</ul></section>");
    out
}

/// The federation at the timeline's item `at`, and what the item says.
pub(super) fn scrubbed(view: &View, tl: &Timeline, at: usize) -> String {
    let Some(item) = tl.items.get(at).or(tl.items.last()) else {
        return "<p>The post-mortem holds no record.</p>".to_owned();
    };
    let at = at.min(tl.items.len() - 1);
    let mut out = format!(
        "<p class=\"scrub-item\" data-at=\"{at}\">Item {} of {}, {}: {}</p>",
        at + 1,
        tl.items.len(),
        time(item.at),
        esc(&describe(item))
    );
    match view.picture_at(item.at) {
        Some(p) => out.push_str(&picture(&p)),
        None => out.push_str("<p>The view saw no picture of the federation.</p>"),
    }
    out
}

/// `/records/{agency}/{seq}`: one signed record, as the verified bundles
/// hold it, and the findings that rest on it.
pub(super) fn record(title: &str, tl: &Timeline, r: &Record) -> String {
    let resting: Vec<String> = tl
        .findings()
        .filter(|f| f.rests_on.iter().any(|x| x.seq == r.seq))
        .map(|f| format!("<li>{}</li>", esc(&f.detail)))
        .collect();
    let body = format!(
        "<h1>Record #{seq}: {kind} signed by {signer}</h1>\
         <dl class=\"facts\" id=\"record\">\
         <dt>Signed at</dt><dd>{at}</dd>\
         <dt>What</dt><dd>{kind}</dd>\
         <dt>Alert</dt><dd><code>{alert}</code></dd>\
         <dt>Signed by</dt><dd>{signer}</dd>\
         <dt>Says</dt><dd>{summary}</dd>\
         <dt>Held by (verified bundles)</dt><dd>{held}</dd>\
         </dl><h2>Findings resting on it</h2>{findings}\
         <p><a href=\"/#postmortem\">Back to the post-mortem</a></p>",
        seq = r.seq,
        kind = r.kind.name(),
        signer = esc(&r.signer),
        at = time(r.at),
        alert = esc(&r.alert_id),
        summary = esc(&r.summary),
        held = esc(&r.held_by.join(", ")),
        findings = if resting.is_empty() {
            "<p>None.</p>".to_owned()
        } else {
            format!("<ul>{}</ul>", resting.concat())
        },
    );
    page(&format!("Record #{} · {title}", r.seq), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::picture::{Agency, Edge, Flag};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_state_is_written_in_words_and_text_is_escaped() {
        let mut p = Picture::empty(
            t("2015-11-13T20:00:00Z"),
            ["FR-DGSI".parse().unwrap(), "TR-MIT".parse().unwrap()],
        );
        p.agencies.push(Agency {
            id: "BE-VSSE".into(),
            up: false,
        });
        p.edges.push(Edge {
            alert_id: "A1".into(),
            kind: EdgeKind::Alert,
            from: "TR-MIT".into(),
            to: "FR-DGSI".into(),
            state: EdgeState::Lapsed,
            late: false,
            precedence: "PRIORITY".into(),
            subject: "<b>Mostefaï</b>".into(),
            due_at: Some(t("2014-12-11T09:00:00Z")),
        });
        p.flags.push(Flag {
            raised_by: "TR-MIT".into(),
            subject: "Mostefaï".into(),
            recipient: "FR-DGSI".into(),
            alerts: vec!["A1".into(), "A2".into()],
            at: Some(t("2015-01-10T09:00:00Z")),
        });
        let html = picture(&p);
        assert!(html.contains("&lt;b&gt;Mostefaï"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("<text class=\"edge-label\""), "{html}");
        assert!(html.contains(">1 LAPSED</text>"), "{html}");
        assert!(html.contains("<strong>LAPSED</strong>"), "{html}");
        assert!(html.contains("REPEATED_UNANSWERED</strong> Mostefaï: FR-DGSI left A1, A2"));
        assert!(html.contains("(down)"), "{html}");
        assert!(html.contains("datetime=\"2015-11-13T20:00:00Z\""), "{html}");
        for s in EdgeState::ALL {
            assert!(
                html.contains(s.word()),
                "{} missing from the legend",
                s.word()
            );
        }
    }
}
