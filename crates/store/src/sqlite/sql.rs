//! What the SQLite modules share about SQL: times as milliseconds, SQL
//! text that names codes, and the conditions several queries must spell
//! alike (each matches a partial index of the schema). The last two are
//! PostgreSQL's as well, so they live in `crate::conditions`.

pub(crate) use crate::conditions::{OPEN_DELIVERY_DEADLINE, OPEN_INBOUND_DEADLINE, OPEN_STEP, sql};
pub(crate) use crate::millis::{from_ms, ms};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::DeliveryState;

    /// The conditions are the partial indexes' own, as migration 007
    /// spells them: otherwise SQLite could not use the index (and
    /// `INDEXED BY` would fail).
    #[test]
    fn conditions_spell_the_partial_indexes() {
        assert!(
            OPEN_DELIVERY_DEADLINE.starts_with("d.flag = 0 AND d.state != 3 AND d.settled = 0")
        );
        assert!(
            OPEN_INBOUND_DEADLINE.starts_with("a.flag = 0 AND a.direction = 2 AND a.settled = 0")
        );
        assert!(OPEN_STEP.contains("d.ladder < 3 AND d.state != 3 AND d.settled = 0"));
        let pending = sql!("state = {}", DeliveryState::Pending.code());
        assert_eq!(pending, "state = 1");
    }
}
