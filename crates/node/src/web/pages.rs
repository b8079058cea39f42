//! The desk's pages: domain views as server-rendered HTML. Every value
//! from the store passes through [`esc`]; times are shown in UTC inside a
//! `<time>` whose `datetime` the script turns into local time on hover.
//! State is always written in words (OVERDUE, REPEATED_UNANSWERED,
//! DELIVERED), colour only repeats it.

use std::fmt::Write;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use tocsin_core::AgencyId;
use tocsin_core::alert::{Disposition, Subject};
use tocsin_proto::pb;
use tocsin_triage::Kind;

use tocsin_store::{Direction, HeldEntry};

use crate::domain::signatures::SignatureCheck;
use crate::domain::triage::TriagedView;
use crate::outbox::LinkState;
use crate::skew::PeerSkew;
use crate::views::{AckView, AlertView, DeliveryStatus, EventView};
use crate::watchlist::OwnerLag;

/// Escapes text for HTML content and quoted attributes.
pub(super) fn esc(text: &str) -> String {
    html_escape::encode_safe(text).into_owned()
}

/// A time in UTC, machine-readable for the script's local-time hover.
fn time(at: DateTime<Utc>) -> String {
    let shown = at.format("%Y-%m-%d %H:%M:%S UTC");
    format!(
        "<time datetime=\"{}\" title=\"{shown}\">{shown}</time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// The desk's pages, in the order the navigation lists them.
const NAV: &[(&str, &str)] = &[
    ("/", "Triage"),
    ("/alerts", "Alerts"),
    ("/watchlists", "Watchlists"),
    ("/peers", "Peers"),
];

/// Previous and next links of a list page.
pub(super) struct Pager {
    path: &'static str,
    page: usize,
    more: bool,
}

impl Pager {
    /// Page `page` (from 1) of the list at `path`; `more` if another follows.
    pub(super) fn new(path: &'static str, page: usize, more: bool) -> Self {
        Self { path, page, more }
    }

    /// Plain links, so Tab and Enter page as well as a mouse does.
    fn links(&self) -> String {
        if self.page <= 1 && !self.more {
            return String::new();
        }
        let mut out = format!(
            "<nav class=\"pager\" aria-label=\"Pages\"><span>Page {}</span>",
            self.page
        );
        if self.page > 1 {
            let _ = write!(
                out,
                " <a rel=\"prev\" id=\"page-prev\" href=\"{}?page={}\">Previous page</a>",
                self.path,
                self.page - 1
            );
        }
        if self.more {
            let _ = write!(
                out,
                " <a rel=\"next\" id=\"page-next\" href=\"{}?page={}\">Next page</a>",
                self.path,
                self.page + 1
            );
        }
        out.push_str("</nav>");
        out
    }
}

fn page(agency: &AgencyId, title: &str, body: &str) -> String {
    let nav: String = NAV
        .iter()
        .map(|(href, name)| {
            let current = if *name == title {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<li><a href=\"{href}\"{current}>{name}</a></li>")
        })
        .collect();
    let agency = esc(agency.as_str());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {agency} · Tocsin</title>\
         <link rel=\"stylesheet\" href=\"/desk.css\">\
         <script src=\"/desk.js\" defer></script></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to the page</a>\
         <header><a class=\"home\" href=\"/\">Tocsin desk of {agency}</a>\
         <nav aria-label=\"Desk\"><ul id=\"nav\">{nav}</ul></nav></header>\
         <main id=\"main\" tabindex=\"-1\">{body}</main></body></html>\n",
        title = esc(title),
    )
}

/// A failed request.
pub(super) fn error(status: StatusCode, message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{status}</title></head><body><main><h1>{status}</h1>\
         <p role=\"alert\">{}</p><p><a href=\"/\">Back to the triage list</a></p>\
         </main></body></html>\n",
        esc(message)
    )
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Alert => "alert",
        Kind::HitReport => "hit report",
    }
}

/// `/`: the triage list and the live events.
pub(super) fn triage(
    agency: &AgencyId,
    items: &[TriagedView],
    now: DateTime<Utc>,
    after: u64,
    pager: Pager,
) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>What {} owes</h1>\
         <p class=\"clock\">Node clock: {}</p>",
        esc(agency.as_str()),
        time(now)
    );
    if items.is_empty() {
        body.push_str(
            "<p id=\"nothing-owed\">Nothing owed: every alert received is acknowledged.</p>",
        );
    } else {
        body.push_str(
            "<table id=\"triage\"><caption>Owed acknowledgements, riskiest first</caption>\
             <thead><tr><th scope=\"col\">Rank</th><th scope=\"col\">Tier</th>\
             <th scope=\"col\">Id</th><th scope=\"col\">Kind</th><th scope=\"col\">From</th>\
             <th scope=\"col\">Subject</th><th scope=\"col\">Flags</th>\
             <th scope=\"col\">Reasons</th><th scope=\"col\">Deadline</th></tr></thead><tbody>",
        );
        for t in items {
            let item = &t.ranked.item;
            let overdue = item.due_at <= now;
            let mut flags = Vec::new();
            if overdue {
                flags.push("<strong class=\"overdue\">OVERDUE</strong>");
            }
            if item.repeated_unanswered {
                flags.push("<strong class=\"repeated\">REPEATED_UNANSWERED</strong>");
            }
            let _ = write!(
                body,
                "<tr data-alert-id=\"{id}\"{class}><td>{rank}</td><td>{tier}</td>\
                 <td><a href=\"/alerts/{id}\">{id}</a></td><td>{kind}</td><td>{from}</td>\
                 <td>{subject}</td><td>{flags}</td><td>{reasons}</td>\
                 <td>{due} <span class=\"countdown\" data-due=\"{due_iso}\"></span></td></tr>",
                id = esc(&item.id),
                class = if overdue { " class=\"is-overdue\"" } else { "" },
                rank = t.ranked.rank,
                tier = esc(t.ranked.tier.as_str()),
                kind = kind_words(item.kind),
                from = esc(&item.originator),
                subject = esc(&item.subject),
                flags = flags.join(" "),
                reasons = esc(&t.ranked.reasons_text()),
                due = time(item.due_at),
                due_iso = item
                    .due_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(&pager.links());
    let _ = write!(
        body,
        "<section aria-labelledby=\"live-title\"><h2 id=\"live-title\">Live events</h2>\
         <p id=\"live-state\" role=\"status\">Connecting to the event stream…</p>\
         <ol id=\"events\" data-after=\"{after}\" aria-live=\"polite\"></ol></section>"
    );
    page(agency, "Triage", &body)
}

/// `/alerts`: alerts and hit reports, sent and received, newest first.
pub(super) fn alerts(agency: &AgencyId, items: &[AlertView], pager: Pager) -> String {
    let mut body = String::from("<h1>Alerts and hit reports</h1>");
    if items.is_empty() {
        body.push_str("<p id=\"no-alerts\">None on this page.</p>");
    } else {
        body.push_str(
            "<table id=\"alerts\"><caption>Sent and received, newest first</caption>\
             <thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Kind</th>\
             <th scope=\"col\">Direction</th><th scope=\"col\">From</th>\
             <th scope=\"col\">Created</th><th scope=\"col\">Precedence</th>\
             <th scope=\"col\">Subjects</th><th scope=\"col\">Status</th></tr></thead><tbody>",
        );
        for v in items {
            let a = &v.alert;
            let _ = write!(
                body,
                "<tr data-alert-id=\"{id}\"><td><a href=\"/alerts/{id}\">{id}</a></td>\
                 <td>{kind}</td><td>{direction:?}</td><td>{from}</td><td>{created}</td>\
                 <td>{precedence}</td><td>{subjects}</td><td>{status:?}</td></tr>",
                id = esc(&a.id.to_string()),
                kind = if a.hit.is_some() {
                    "hit report"
                } else {
                    "alert"
                },
                direction = v.direction,
                from = esc(a.originator.as_str()),
                created = time(a.created_at),
                precedence = a.precedence,
                subjects = esc(&a.subjects_label()),
                status = v.status,
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(&pager.links());
    page(agency, "Alerts", &body)
}

/// An entry's stored form as the page shows it: subject, action, TLP,
/// expiry; an unreadable one says so rather than hiding the row.
fn entry_cells(entry: &[u8]) -> String {
    use prost::Message;
    let Ok(e) = pb::WatchlistEntry::decode(entry) else {
        return "<td colspan=\"4\"><strong>unreadable stored entry</strong></td>".to_owned();
    };
    let subject = e
        .subject
        .clone()
        .and_then(|s| Subject::try_from(s).ok())
        .map(|s| s.label())
        .unwrap_or_else(|| "(no subject)".into());
    let action = pb::WatchlistAction::try_from(e.action)
        .map(|a| a.as_str_name())
        .unwrap_or("UNKNOWN");
    let tlp = pb::Tlp::try_from(e.tlp)
        .map(|t| t.as_str_name())
        .unwrap_or("UNKNOWN");
    let expires = e
        .expires_at
        .and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(time)
        .unwrap_or_else(|| "never".into());
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{expires}</td>",
        esc(&subject),
        esc(action),
        esc(tlp)
    )
}

/// `/watchlists`: what is held by owner, each owner's lag, recent hits.
pub(super) fn watchlists(
    agency: &AgencyId,
    entries: &[HeldEntry],
    lags: &[OwnerLag],
    hits: &[AlertView],
) -> String {
    let mut body = String::from("<h1>Watchlists</h1><h2>Entries held</h2>");
    if entries.is_empty() {
        body.push_str("<p id=\"no-entries\">No entry held.</p>");
    } else {
        body.push_str(
            "<table id=\"entries\"><caption>By owner, then reference</caption><thead><tr>\
             <th scope=\"col\">Owner</th><th scope=\"col\">Ref</th>\
             <th scope=\"col\">Subject</th><th scope=\"col\">Action</th>\
             <th scope=\"col\">TLP</th><th scope=\"col\">Expires</th></tr></thead><tbody>",
        );
        for e in entries {
            let _ = write!(
                body,
                "<tr data-owner=\"{owner}\" data-ref=\"{reference}\"><td>{owner}</td>\
                 <td>{reference}</td>{cells}</tr>",
                owner = esc(&e.owner),
                reference = esc(&e.reference),
                cells = entry_cells(&e.entry),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(
        "<h2>Sync lag</h2><table id=\"lag\"><caption>Each other owner\u{2019}s log as \
         pulled here</caption><thead><tr><th scope=\"col\">Owner</th>\
         <th scope=\"col\">Cursor</th><th scope=\"col\">Head</th>\
         <th scope=\"col\">Behind (entries)</th><th scope=\"col\">Behind (seconds)</th>\
         <th scope=\"col\">Held</th><th scope=\"col\">Last heard</th>\
         <th scope=\"col\">Last refusal</th></tr></thead><tbody>",
    );
    for l in lags {
        let c = &l.cursor;
        let _ = write!(
            body,
            "<tr data-owner=\"{owner}\"><td>{owner}</td><td>{cursor}</td><td>{head}</td>\
             <td>{behind}{state}</td><td>{seconds:.1}</td><td>{held}</td><td>{heard}</td>\
             <td>{refusal}</td></tr>",
            owner = esc(&c.owner),
            cursor = c.applied.seq,
            head = c.head.seq,
            behind = l.behind_changes,
            state = if l.behind_changes == 0 {
                " (caught up)"
            } else {
                " (BEHIND)"
            },
            seconds = l.behind_seconds,
            held = c.held,
            heard = c.heard_at.map(time).unwrap_or_else(|| "never".into()),
            refusal = c
                .refusal
                .as_deref()
                .map(esc)
                .unwrap_or_else(|| "none".into()),
        );
    }
    body.push_str("</tbody></table><h2>Recent hits</h2>");
    if hits.is_empty() {
        body.push_str("<p id=\"no-hits\">No hit report sent or received.</p>");
    } else {
        body.push_str("<ol id=\"hits\">");
        for v in hits {
            let a = &v.alert;
            let Some(hit) = &a.hit else { continue };
            let way = if v.direction == Direction::Inbound {
                format!("received from {}", esc(a.originator.as_str()))
            } else {
                format!(
                    "sent to {}",
                    esc(&a
                        .recipients
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                )
            };
            let _ = write!(
                body,
                "<li data-alert-id=\"{id}\"><a href=\"/alerts/{id}\">Hit report {id}</a>, \
                 {way}, {at}: entry {owner} {entry}, score {score:.2}</li>",
                id = esc(&a.id.to_string()),
                at = time(a.created_at),
                owner = esc(hit.entry_owner.as_str()),
                entry = esc(&hit.entry_ref),
                score = hit.score,
            );
        }
        body.push_str("</ol>");
    }
    page(agency, "Watchlists", &body)
}

/// One other member of the federation as `/peers` shows it.
pub(super) struct Peer<'a> {
    /// Its entry in the federation file.
    pub(super) agency: &'a tocsin_core::federation::Agency,
    /// The outbox's link to it.
    pub(super) link: LinkState,
    /// Its clock as last measured, if it was.
    pub(super) skew: Option<PeerSkew>,
    /// When its certificate expires, as it presented it in its last
    /// handshake with this node, if there was one since this node started.
    pub(super) certificate: Option<DateTime<Utc>>,
}

/// A certificate's expiry in words: when, and how long is left.
fn expiry_words(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if at <= now {
        return format!("<strong>EXPIRED</strong> on {}", time(at));
    }
    format!(
        "expires {} (in {})",
        time(at),
        esc(&tocsin_core::human_duration(
            (at - now).num_seconds().max(0) as u64
        ))
    )
}

fn seconds(d: chrono::Duration) -> String {
    format!("{:+.3} s", d.num_milliseconds() as f64 / 1000.0)
}

/// `/peers`: link state, clock skew, and certificate expiry.
pub(super) fn peers(
    agency: &AgencyId,
    peers: &[Peer<'_>],
    tolerance: chrono::Duration,
    certificates: &[(&str, Result<DateTime<Utc>, String>)],
    now: DateTime<Utc>,
) -> String {
    let mut body = format!(
        "<h1>Peers</h1><p class=\"clock\">Node clock: {}; clock skew tolerance \
         {}.</p><table id=\"peers\"><caption>The other members of the federation\
         </caption><thead><tr><th scope=\"col\">Agency</th><th scope=\"col\">Endpoint</th>\
         <th scope=\"col\">Link (as the outbox last found it)</th>\
         <th scope=\"col\">Clock skew (peer minus ours)</th>\
         <th scope=\"col\">Its certificate (as last presented)</th></tr></thead><tbody>",
        time(now),
        esc(&tocsin_core::human_duration(
            tolerance.num_seconds().max(0) as u64
        )),
    );
    for p in peers {
        let link = match p.link {
            LinkState::Untried => "nothing sent since this node started".to_owned(),
            LinkState::Reached { at } => format!("REACHED at {}", time(at)),
            LinkState::Failing { since } => {
                format!("<strong>UNREACHABLE</strong> since {}", time(since))
            }
            LinkState::Revoked { at } => format!(
                "<strong>BLOCKED</strong>: its node presented a revoked certificate ({})",
                time(at)
            ),
        };
        let skew = match p.skew {
            None => "not measured yet".to_owned(),
            Some(s) => {
                let measured: DateTime<Utc> = s.measured_at.into();
                format!(
                    "{} ± {}{}, measured {}",
                    seconds(s.skew),
                    seconds(s.uncertainty).trim_start_matches('+'),
                    if s.exceeded {
                        " <strong>BEYOND TOLERANCE</strong>"
                    } else {
                        " (within tolerance)"
                    },
                    time(measured)
                )
            }
        };
        let _ = write!(
            body,
            "<tr data-peer=\"{id}\"><th scope=\"row\">{id}{name}</th><td>{endpoint}</td>\
             <td>{link}</td><td>{skew}</td><td>{certificate}</td></tr>",
            id = esc(p.agency.id.as_str()),
            name = if p.agency.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(&p.agency.name))
            },
            endpoint = esc(&p.agency.endpoint),
            certificate = match p.certificate {
                Some(at) => expiry_words(at, now),
                None => "no handshake with it since this node started".to_owned(),
            },
        );
    }
    body.push_str(
        "</tbody></table><h2>This node\u{2019}s certificates</h2><ul id=\"certificates\">",
    );
    for (what, expiry) in certificates {
        let text = match expiry {
            Ok(at) => expiry_words(*at, now),
            Err(e) => format!("expiry unreadable: {}", esc(e)),
        };
        let _ = write!(body, "<li>{}: {text}</li>", esc(what));
    }
    body.push_str("</ul>");
    page(agency, "Peers", &body)
}

fn delivery_words(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "PENDING",
        DeliveryStatus::Blocked => "BLOCKED",
        DeliveryStatus::Delivered => "DELIVERED",
        DeliveryStatus::Rejected => "REJECTED",
    }
}

/// Checks a signed record: the envelope, its payload type and the agency
/// that must have signed it. The handler passes the node's check, so the
/// pages stay rendering only.
pub(super) type Check<'a> = &'a dyn Fn(&pb::Envelope, &str, &AgencyId) -> SignatureCheck;

/// A signature check in words; the words carry it, the class only
/// repeats it.
fn signature(check: Check<'_>, envelope: &pb::Envelope, kind: &str, expected: &str) -> String {
    let result = match AgencyId::new(expected) {
        Ok(expected) => check(envelope, kind, &expected),
        Err(e) => SignatureCheck::Fails {
            reason: format!("no agency {expected:?}: {e}"),
        },
    };
    match result {
        SignatureCheck::Verifies { signer } => format!(
            "<span class=\"sig sig-ok\">signature verifies: signed by {}</span>",
            esc(signer.as_str())
        ),
        SignatureCheck::Fails { reason } => format!(
            "<strong class=\"sig sig-bad\">signature does NOT verify: {}</strong>",
            esc(&reason)
        ),
    }
}

fn acks_list(acks: &[AckView], check: Check<'_>) -> String {
    if acks.is_empty() {
        return "<p>No acknowledgement yet.</p>".to_owned();
    }
    let mut out = String::from("<ul class=\"acks\">");
    for a in acks {
        let late = if a.late_by_seconds > 0 {
            format!(
                ", {} late",
                esc(&tocsin_core::human_duration(a.late_by_seconds))
            )
        } else {
            ", in time".to_owned()
        };
        let state = match (&a.refusal, a.delivered) {
            (Some(r), _) => format!(" — REFUSED by the originator: {}", esc(r)),
            (None, true) => " — the originator has it".to_owned(),
            (None, false) => " — on its way to the originator".to_owned(),
        };
        let _ = write!(
            out,
            "<li class=\"ack\"><strong>{disposition}</strong> by {operator} of {agency}, {at}{late}{state}{note}; {sig}</li>",
            disposition = a.ack.disposition,
            operator = esc(&a.ack.operator),
            agency = esc(a.ack.recipient.as_str()),
            at = time(a.ack.acknowledged_at),
            note = if a.ack.note.is_empty() {
                String::new()
            } else {
                format!(": “{}”", esc(&a.ack.note))
            },
            sig = signature(
                check,
                &a.envelope,
                tocsin_proto::ACK_PAYLOAD_TYPE,
                a.ack.recipient.as_str()
            ),
        );
    }
    out.push_str("</ul>");
    out
}

/// `/alerts/{id}`: an alert or hit report with what became of it.
pub(super) fn alert(
    agency: &AgencyId,
    v: &AlertView,
    now: DateTime<Utc>,
    token: &str,
    check: Check<'_>,
) -> String {
    let a = &v.alert;
    let id = esc(&a.id.to_string());
    let what = if a.hit.is_some() {
        "Hit report"
    } else {
        "Alert"
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{what} <code>{id}</code></h1><dl class=\"facts\">\
         <dt>From</dt><dd>{from}</dd><dt>Created</dt><dd>{created}</dd>\
         <dt>Precedence</dt><dd>{precedence}</dd><dt>Category</dt><dd>{category}</dd>\
         <dt>Grading</dt><dd>{rel}{cred}</dd><dt>TLP</dt><dd>{tlp}</dd>\
         <dt>Subjects</dt><dd>{subjects}</dd><dt>Recipients</dt><dd>{recipients}</dd>\
         <dt>Envelope</dt><dd id=\"envelope-signature\">{sig}</dd>",
        sig = signature(
            check,
            &v.envelope,
            tocsin_proto::ALERT_PAYLOAD_TYPE,
            a.originator.as_str()
        ),
        from = esc(a.originator.as_str()),
        created = time(a.created_at),
        precedence = a.precedence,
        category = esc(&a.category),
        rel = a.source_reliability,
        cred = a.information_credibility,
        tlp = a.tlp,
        subjects = esc(&a.subjects_label()),
        recipients = esc(&a
            .recipients
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
    );
    if let Some(due) = v.due_at {
        let state = if due <= now && v.acknowledgements.is_empty() && v.flag.is_some() {
            " <strong class=\"overdue\">OVERDUE</strong>"
        } else {
            ""
        };
        let _ = write!(body, "<dt>Deadline</dt><dd>{}{state}</dd>", time(due));
    }
    if let Some((flag, at)) = &v.flag {
        let _ = write!(
            body,
            "<dt>Deadline flag</dt><dd>{flag:?}{}</dd>",
            at.map(|at| format!(" since {}", time(at)))
                .unwrap_or_default()
        );
    }
    let _ = write!(body, "<dt>Status</dt><dd>{:?}", v.status);
    if let Some(by) = &v.closed_by {
        let _ = write!(body, " by <a href=\"/alerts/{0}\">{0}</a>", esc(by));
    }
    body.push_str("</dd></dl>");
    let _ = write!(body, "<h2>Text</h2><p class=\"text\">{}</p>", esc(&a.text));

    if let Some(hit) = &a.hit {
        let screened = hit
            .screened
            .clone()
            .map(|p| Subject::Person(p).label())
            .unwrap_or_else(|| "(no person)".into());
        let identifiers = hit
            .screened_identifiers
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            body,
            "<section id=\"sighting\"><h2>Sighting</h2><dl class=\"facts\">\
             <dt>Person screened</dt><dd>{screened}</dd><dt>Identifiers</dt><dd>{identifiers}</dd>\
             <dt>Seen</dt><dd>{seen}</dd><dt>Where</dt><dd>{place}</dd>\
             <dt>Screen reference</dt><dd>{screen_ref}</dd>\
             <dt>Watchlist entry</dt><dd>{owner} {entry} (version {seq})</dd>\
             <dt>Match score</dt><dd>{score:.2}</dd><dt>Requested action</dt><dd>{action}</dd>\
             </dl><ul>{reasons}</ul></section>",
            screened = esc(&screened),
            identifiers = esc(&identifiers),
            seen = hit.seen_at.map(time).unwrap_or_else(|| "not given".into()),
            place = esc(&hit.seen_place),
            screen_ref = esc(&hit.screen_ref),
            owner = esc(hit.entry_owner.as_str()),
            entry = esc(&hit.entry_ref),
            seq = hit.entry_seq,
            score = hit.score,
            action = esc(&hit.requested_action),
            reasons = hit
                .reasons
                .iter()
                .map(|r| format!("<li>{}</li>", esc(r)))
                .collect::<String>(),
        );
    }

    if v.deliveries.is_empty() {
        let receipt = match &v.receipt {
            Some(r) => format!(
                "this node issued its signed receipt when it stored the alert ({})",
                signature(
                    check,
                    r,
                    tocsin_proto::RECEIPT_PAYLOAD_TYPE,
                    agency.as_str()
                )
            ),
            None => "none".to_owned(),
        };
        let _ = write!(
            body,
            "<section id=\"received\"><h2>Received</h2><p>Stored {}; receipt: {receipt}; \
             reminders: {}.</p><h3>Our acknowledgements</h3>{}</section>",
            time(v.stored_at),
            v.reminders,
            acks_list(&v.acknowledgements, check)
        );
    } else {
        body.push_str(
            "<section id=\"deliveries\"><h2>Recipients</h2><table><thead><tr>\
             <th scope=\"col\">Recipient</th><th scope=\"col\">Delivery</th>\
             <th scope=\"col\">Receipt</th><th scope=\"col\">Deadline</th>\
             <th scope=\"col\">Flag</th><th scope=\"col\">Ladder</th>\
             <th scope=\"col\">Acknowledgements</th></tr></thead><tbody>",
        );
        for d in &v.deliveries {
            let mut delivery = format!("{}, {} attempt(s)", delivery_words(d.status), d.attempts);
            if let Some(reason) = d.blocked_reason.as_ref().or(d.last_error.as_ref()) {
                let _ = write!(delivery, ": {}", esc(reason));
            }
            let _ = write!(
                body,
                "<tr data-recipient=\"{r}\"><td>{r}</td><td>{delivery}</td><td>{receipt}</td>\
                 <td>{due}</td><td>{flag:?}{flagged}</td><td>{ladder:?}</td><td>{acks}</td></tr>",
                r = esc(&d.recipient),
                receipt = match (&d.receipt, d.delivered_at) {
                    (Some(r), Some(at)) => format!(
                        "signed receipt, stored {}; {}",
                        time(at),
                        signature(check, r, tocsin_proto::RECEIPT_PAYLOAD_TYPE, &d.recipient)
                    ),
                    (Some(r), None) => format!(
                        "signed receipt; {}",
                        signature(check, r, tocsin_proto::RECEIPT_PAYLOAD_TYPE, &d.recipient)
                    ),
                    _ => "none yet".to_owned(),
                },
                due = d.due_at.map(time).unwrap_or_default(),
                flag = d.flag,
                flagged = d
                    .flagged_at
                    .map(|at| format!(" since {}", time(at)))
                    .unwrap_or_default(),
                ladder = d.ladder,
                acks = acks_list(&d.acknowledgements, check),
            );
        }
        body.push_str("</tbody></table></section>");
    }

    if v.deliveries.is_empty() && v.closed_by.is_none() {
        let _ = write!(
            body,
            "<section id=\"acknowledge\"><h2>Acknowledge</h2>\
             <form method=\"post\" action=\"/alerts/{id}/ack\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
             <p><label for=\"disposition\">Disposition</label> \
             <select id=\"disposition\" name=\"disposition\" required>{options}</select></p>\
             <p><label for=\"note\">Note (optional)</label><br>\
             <textarea id=\"note\" name=\"note\" rows=\"3\" cols=\"60\"></textarea></p>\
             <p><button type=\"submit\" id=\"acknowledge-button\">Acknowledge and sign</button></p>\
             </form></section>",
            token = esc(token),
            options = Disposition::ALL
                .iter()
                .map(|d| format!("<option value=\"{0}\">{0}</option>", d.as_str()))
                .collect::<String>(),
        );
    }
    body.push_str("<p><a href=\"/\">Back to the triage list</a></p>");
    page(agency, &format!("{what} {}", a.id), &body)
}

/// An event as the page's script reads it.
pub(super) fn event_json(e: &EventView) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "kind": format!("{:?}", e.kind),
        "alert_id": e.alert_id,
        "agency": e.agency,
        "detail": e.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_store_cannot_become_markup() {
        assert_eq!(
            esc("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#x27;y&#x27;&lt;&#x2F;script&gt;"
        );
    }
}
