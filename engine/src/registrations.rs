//! How fast accounts may be created: per source address and server-wide.
//!
//! Every REGISTER is charged before any password is hashed, whatever its
//! outcome: a refused name costs a token too, so probing which names are
//! taken is no faster than creating accounts. Both limits are token
//! buckets (a burst, then one more every interval); the per-source map is
//! bounded by [`MAX_SOURCES`], and when it is full of sources still
//! refilling, a new source is held to the server-wide limit alone (which
//! every registration pays anyway).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::bucket::Bucket;
use crate::id::Source;

/// Sources whose registrations are remembered at once.
pub(crate) const MAX_SOURCES: usize = 10_000;

/// A limit: `burst` at once, then one more every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationLimit {
    /// Registrations at once.
    pub burst: u16,
    /// Time for one more.
    pub every: Duration,
}

impl RegistrationLimit {
    fn rate(&self) -> f64 {
        if self.every.is_zero() {
            f64::INFINITY
        } else {
            1.0 / self.every.as_secs_f64()
        }
    }
}

/// Which limit refused a registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// This source created its share; retry after the wait.
    Source(Duration),
    /// The server as a whole; retry after the wait.
    Server(Duration),
}

/// The buckets (see the module docs).
#[derive(Debug)]
pub(crate) struct Registrations {
    per_source: RegistrationLimit,
    server: RegistrationLimit,
    global: Option<Bucket>,
    sources: HashMap<Source, Bucket>,
    /// Registrations charged since start, here or on other nodes.
    charged: u64,
}

impl Registrations {
    pub(crate) fn new(per_source: RegistrationLimit, server: RegistrationLimit) -> Registrations {
        Registrations {
            per_source,
            server,
            global: None,
            sources: HashMap::new(),
            charged: 0,
        }
    }

    /// Takes one registration from `source`'s and the server's budgets,
    /// or says which is spent and for how long. Neither is charged when
    /// either refuses.
    pub(crate) fn charge(&mut self, now: Instant, source: Source) -> Result<(), Refused> {
        let (sr, sb) = (self.per_source.rate(), f64::from(self.per_source.burst));
        let (gr, gb) = (self.server.rate(), f64::from(self.server.burst));
        let mut mine = self
            .sources
            .get(&source)
            .copied()
            .unwrap_or(Bucket::full(sb, now));
        let mut global = self.global.unwrap_or(Bucket::full(gb, now));
        mine.take(1.0, now, sr, sb).map_err(Refused::Source)?;
        global.take(1.0, now, gr, gb).map_err(Refused::Server)?;
        self.global = Some(global);
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&source) {
            // Forget the sources whose buckets refilled: they lose nothing.
            self.sources.retain(|_, b| b.peek(now, sr, sb) < sb);
        }
        if self.sources.len() < MAX_SOURCES || self.sources.contains_key(&source) {
            self.sources.insert(source, mine);
        }
        self.charged += 1;
        Ok(())
    }

    /// A registration from `source` another node of the cluster charged:
    /// taken from the same budgets here, so the cluster as a whole keeps
    /// one server's rate. Never refused (it happened); a spent bucket
    /// stays spent. A source the full map has no room for is charged to
    /// the server-wide budget alone, as a new one here would be.
    pub(crate) fn charged_elsewhere(&mut self, now: Instant, source: Source) {
        let (sr, sb) = (self.per_source.rate(), f64::from(self.per_source.burst));
        let (gr, gb) = (self.server.rate(), f64::from(self.server.burst));
        self.charged += 1;
        let mut global = self.global.unwrap_or(Bucket::full(gb, now));
        let _ = global.take(1.0, now, gr, gb);
        self.global = Some(global);
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&source) {
            self.sources.retain(|_, b| b.peek(now, sr, sb) < sb);
        }
        if self.sources.len() < MAX_SOURCES || self.sources.contains_key(&source) {
            let mine = self.sources.entry(source).or_insert(Bucket::full(sb, now));
            let _ = mine.take(1.0, now, sr, sb);
        }
    }

    /// Sources remembered (tests).
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.sources.len()
    }

    /// Registrations charged since start, here or on other nodes.
    pub(crate) fn charged(&self) -> u64 {
        self.charged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Registrations {
        Registrations::new(
            RegistrationLimit {
                burst: 2,
                every: Duration::from_secs(10),
            },
            RegistrationLimit {
                burst: 3,
                every: Duration::from_secs(5),
            },
        )
    }

    #[test]
    fn a_source_gets_its_burst_then_one_per_interval() {
        let mut r = limits();
        let t0 = Instant::now();
        let a = Source(1);
        assert_eq!(r.charge(t0, a), Ok(()));
        assert_eq!(r.charge(t0, a), Ok(()));
        assert_eq!(
            r.charge(t0, a),
            Err(Refused::Source(Duration::from_secs(10)))
        );
        let later = t0 + Duration::from_secs(10);
        assert_eq!(r.charge(later, a), Ok(()));
        assert!(r.charge(later, a).is_err());
    }

    #[test]
    fn the_server_wide_limit_holds_across_sources_and_a_refusal_costs_nothing() {
        let mut r = limits();
        let t0 = Instant::now();
        for s in 1..=3 {
            assert_eq!(r.charge(t0, Source(s)), Ok(()));
        }
        assert_eq!(
            r.charge(t0, Source(4)),
            Err(Refused::Server(Duration::from_secs(5)))
        );
        // Source 4 was not charged: once the server refills, it has its burst.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(r.charge(later, Source(4)), Ok(()));
        assert_eq!(r.charge(later, Source(4)), Ok(()));
    }

    #[test]
    fn registrations_charged_on_other_nodes_spend_the_same_budgets_here() {
        let mut r = limits();
        let t0 = Instant::now();
        r.charged_elsewhere(t0, Source(1));
        r.charged_elsewhere(t0, Source(1));
        assert_eq!(
            r.charge(t0, Source(1)),
            Err(Refused::Source(Duration::from_secs(10)))
        );
        r.charged_elsewhere(t0, Source(2));
        assert_eq!(
            r.charge(t0, Source(3)),
            Err(Refused::Server(Duration::from_secs(5)))
        );
        // More than the budget elsewhere leaves it spent, not in debt:
        // one interval later there is one again.
        r.charged_elsewhere(t0, Source(1));
        assert_eq!(r.charge(t0 + Duration::from_secs(10), Source(1)), Ok(()));
    }

    #[test]
    fn the_map_of_sources_stays_bounded() {
        let mut r = Registrations::new(
            RegistrationLimit {
                burst: 1,
                every: Duration::from_secs(3600),
            },
            RegistrationLimit {
                burst: u16::MAX,
                every: Duration::ZERO,
            },
        );
        let t0 = Instant::now();
        for s in 0..(MAX_SOURCES as u128 + 500) {
            let _ = r.charge(t0, Source(s));
        }
        assert!(r.sources() <= MAX_SOURCES);
    }
}
