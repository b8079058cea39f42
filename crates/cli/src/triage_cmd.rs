//! `tocsin alerts list --triage`: what this agency owes, ranked by risk,
//! each with the reasons for its place (the rule is `tocsin_triage`'s).

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use tocsin_core::from_timestamp;
use tocsin_proto::pb;

use crate::args::ListArgs;
use crate::operator::{connect, node_time, refused};

/// One ranked item as `--json` prints it.
#[derive(Debug, serde::Serialize)]
struct Shown {
    rank: u32,
    tier: String,
    id: String,
    kind: &'static str,
    originator: String,
    precedence: String,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    due_at: Option<DateTime<Utc>>,
    grading: String,
    corroborating_agencies: Vec<String>,
    hits: u32,
    repeated_unanswered: bool,
    reasons: Vec<String>,
    reasons_text: String,
}

fn precedence_name(p: i32) -> String {
    tocsin_core::alert::Precedence::from_wire(p)
        .map(|p| p.to_string())
        .unwrap_or_else(|_| "UNKNOWN".into())
}

fn shown(item: pb::TriageItem) -> Shown {
    let record = item.record.unwrap_or_default();
    let alert = record.alert.unwrap_or_default();
    let subject = alert
        .subjects
        .iter()
        .filter_map(|s| tocsin_core::alert::Subject::try_from(s.clone()).ok())
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join("; ");
    let grading = format!(
        "{}{}",
        tocsin_core::alert::SourceReliability::from_wire(alert.source_reliability)
            .map(|r| r.to_string())
            .unwrap_or_default(),
        tocsin_core::alert::InformationCredibility::from_wire(alert.information_credibility)
            .map(|c| c.to_string())
            .unwrap_or_default()
    );
    Shown {
        rank: item.rank,
        tier: precedence_name(item.tier),
        id: alert.id,
        kind: if alert.hit.is_some() {
            "hit report"
        } else {
            "alert"
        },
        originator: alert.originator,
        precedence: precedence_name(alert.precedence),
        subject,
        due_at: record.due_at.as_ref().and_then(from_timestamp),
        grading,
        corroborating_agencies: item.corroborating_agencies,
        hits: item.hits,
        repeated_unanswered: item.repeated_unanswered,
        reasons: item.reasons.into_iter().map(|r| r.text).collect(),
        reasons_text: item.reasons_text,
    }
}

/// Runs `alerts list --triage`.
pub(crate) async fn run(args: ListArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.connect).await?;
    let answer = client
        .triage(pb::TriageRequest { limit: args.limit })
        .await
        .map_err(refused)?;
    let now = node_time(answer.metadata());
    let items: Vec<Shown> = answer.into_inner().items.into_iter().map(shown).collect();
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    if items.is_empty() {
        println!("nothing owed");
        return Ok(());
    }
    println!(
        "owed, first to look at first (node time {}):",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    let mut t = Table::new();
    t.load_preset(presets::UTF8_BORDERS_ONLY);
    t.set_header(["#", "TIER", "ID", "KIND", "FROM", "SUBJECT", "WHY"]);
    for s in &items {
        t.add_row([
            s.rank.to_string(),
            s.tier.clone(),
            s.id.clone(),
            s.kind.to_owned(),
            s.originator.clone(),
            s.subject.clone(),
            s.reasons_text.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}
