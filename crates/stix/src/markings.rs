//! Handling and confidence: FIRST TLP 2.0 as STIX 2.1 marking
//! definitions, and STIX confidence from the Admiralty grading.

use serde_json::{Value, json};
use tocsin_core::alert::{InformationCredibility, Tlp};

/// The OASIS TLP 2.0 marking extension (cti-stix-common-objects,
/// `extension-definition-specifications/tlp-2.0`).
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// When OASIS created the TLP 2.0 marking definitions.
const TLP2_CREATED: &str = "2022-10-01T00:00:00.000Z";

/// The id of the official TLP 2.0 marking definition for `tlp`.
pub fn tlp_id(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    }
}

/// The TLP a marking definition id stands for: the TLP 2.0 ids, and the
/// TLP 1.0 ids STIX 2.1 itself defines (section 7.2.1.4), read as their
/// TLP 2.0 successors (WHITE is CLEAR).
pub fn tlp_of(marking_id: &str) -> Option<Tlp> {
    if let Some(tlp) = Tlp::ALL.iter().copied().find(|t| tlp_id(*t) == marking_id) {
        return Some(tlp);
    }
    match marking_id {
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9" => Some(Tlp::Clear),
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da" => Some(Tlp::Green),
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" => Some(Tlp::Amber),
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Some(Tlp::Red),
        _ => None,
    }
}

/// The official TLP 2.0 marking definition object for `tlp`, exactly as
/// OASIS publishes it (it has no `created_by_ref`, so neither has ours).
pub fn tlp_definition(tlp: Tlp) -> Value {
    let level = match tlp {
        Tlp::Clear => "clear",
        Tlp::Green => "green",
        Tlp::Amber => "amber",
        Tlp::AmberStrict => "amber+strict",
        Tlp::Red => "red",
    };
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp_id(tlp),
        "created": TLP2_CREATED,
        "name": format!("TLP:{}", tlp.as_str()),
        "extensions": {
            TLP2_EXTENSION: {
                "extension_type": "property-extension",
                "tlp_2_0": level,
            }
        }
    })
}

/// The stricter of two labels: the one that shares less.
pub fn stricter(a: Tlp, b: Tlp) -> Tlp {
    // The enum is declared from CLEAR to RED, least to most restrictive.
    a.max(b)
}

/// STIX confidence for an Admiralty information credibility, by the
/// "Admiralty Credibility" table of STIX 2.1's confidence scales
/// appendix; none for 6 (truth cannot be judged), which the table leaves
/// without a value. Source reliability has no STIX scale and stays in
/// `x_tocsin_source_reliability`.
pub fn confidence(credibility: InformationCredibility) -> Option<u8> {
    match credibility {
        InformationCredibility::C1 => Some(90),
        InformationCredibility::C2 => Some(70),
        InformationCredibility::C3 => Some(50),
        InformationCredibility::C4 => Some(30),
        InformationCredibility::C5 => Some(10),
        InformationCredibility::C6 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tlp_has_its_official_definition_and_reads_back() {
        for &tlp in Tlp::ALL {
            let d = tlp_definition(tlp);
            assert_eq!(d["id"], tlp_id(tlp));
            assert_eq!(d["name"], format!("TLP:{tlp}"));
            assert_eq!(tlp_of(tlp_id(tlp)), Some(tlp));
        }
        assert_eq!(
            tlp_definition(Tlp::AmberStrict)["extensions"][TLP2_EXTENSION]["tlp_2_0"],
            "amber+strict"
        );
        // TLP 1.0 WHITE, as STIX 2.1 defines it, is TLP 2.0 CLEAR.
        assert_eq!(
            tlp_of("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"),
            Some(Tlp::Clear)
        );
        assert_eq!(
            tlp_of("marking-definition--00000000-0000-4000-8000-000000000000"),
            None
        );
        assert_eq!(stricter(Tlp::Green, Tlp::AmberStrict), Tlp::AmberStrict);
        assert_eq!(stricter(Tlp::Red, Tlp::Clear), Tlp::Red);
    }

    #[test]
    fn confidence_follows_the_admiralty_credibility_table() {
        use InformationCredibility::*;
        let mapped: Vec<_> = [C1, C2, C3, C4, C5, C6].map(confidence).into();
        assert_eq!(
            mapped,
            vec![Some(90), Some(70), Some(50), Some(30), Some(10), None]
        );
    }
}
