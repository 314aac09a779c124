//! Brute-force protection for logins.
//!
//! Failed logins are counted three ways: per account *and* source address
//! (a pair), per source address, and per account. The pair and the source
//! follow one ladder: the first failure costs nothing (a typo); each
//! further one makes the next attempt wait longer (1 s, 2 s, 4 s, ...), and
//! from the `after`-th failure on the key is locked out for `lockout`,
//! doubling with every further failure up to `max_lockout`. So an address
//! guessing one account locks itself out of that account, and an address
//! guessing many accounts locks itself out of all of them, but neither
//! locks anyone else out: the owner logging in from another address is
//! checked as usual.
//!
//! The account's own count locks it for everyone only under a distributed
//! attack: from its `account_after`-th failure (20 times `after` by
//! default) it is locked for `lockout`, doubling likewise; below that it
//! adds no wait at all. Since each address is throttled by its own ladder,
//! that many failures within the memory of the maps takes many addresses.
//!
//! An attempt against a locked key is refused before any password hashing
//! runs, so a locked-out attacker costs a map lookup. A successful login
//! clears the pair's and the account's counts (not the address's: one valid
//! account must not let an address go on guessing others). A key with no
//! failure for `max_lockout` past the end of its penalty starts over. The
//! maps are bounded: beyond `max_entries` the stalest entries go.
//!
//! Time is passed in, so tests run on a fake clock.
//!
//! The policy is the engine's, as the flood penalty is; today the server
//! shell's password pool consults it (before queueing a login and again
//! right before hashing) and feeds it the outcomes.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use crate::id::Source;
use crate::name::NameKey;

/// The thresholds (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures of one address (against one account, or in all) before
    /// its first lockout.
    pub after: u32,
    /// Failures against one account, from any addresses, before it is
    /// locked for everyone.
    pub account_after: u32,
    /// The first lockout; doubles with each further failure.
    pub lockout: Duration,
    /// The longest lockout.
    pub max_lockout: Duration,
    /// Entries kept per map.
    pub max_entries: usize,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            after: 5,
            account_after: 100,
            lockout: Duration::from_secs(300),
            max_lockout: Duration::from_secs(3600),
            max_entries: 100_000,
        }
    }
}

impl Policy {
    /// How long an address (for one account or for all) waits after its
    /// `n`-th consecutive failure.
    pub fn penalty(&self, n: u32) -> Duration {
        if n >= self.after {
            self.lock(n - self.after)
        } else if n <= 1 {
            Duration::ZERO
        } else {
            Duration::from_secs(1u64 << (n - 2).min(31))
                .min(self.lockout)
                .min(self.max_lockout)
        }
    }

    /// How long everyone waits for an account after its `n`-th
    /// consecutive failure from any address.
    pub fn account_penalty(&self, n: u32) -> Duration {
        if n >= self.account_after {
            self.lock(n - self.account_after)
        } else {
            Duration::ZERO
        }
    }

    /// The lockout after `beyond` failures past a threshold.
    fn lock(&self, beyond: u32) -> Duration {
        self.lockout
            .saturating_mul(1u32 << beyond.min(31))
            .min(self.max_lockout)
    }
}

#[derive(Clone, Copy, Debug)]
struct Strikes {
    failures: u32,
    /// No attempt before then.
    until: Instant,
}

/// Whose failures an operator's unlock forgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlock {
    /// Everyone's.
    All,
    /// One account's, from every address.
    User(NameKey),
    /// One address's, against every account (its flood bar too).
    Source(Source),
}

/// The failure counts (see the module docs).
#[derive(Debug)]
pub struct Lockout {
    policy: Policy,
    pairs: HashMap<(NameKey, Option<Source>), Strikes>,
    accounts: HashMap<NameKey, Strikes>,
    sources: HashMap<Source, Strikes>,
}

impl Lockout {
    /// Empty counts under `policy`.
    pub fn new(policy: Policy) -> Lockout {
        Lockout {
            policy,
            pairs: HashMap::new(),
            accounts: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// Whether a login for `user` from `source` may be checked now, or how
    /// long until it may.
    pub fn check(
        &self,
        now: Instant,
        user: NameKey,
        source: Option<Source>,
    ) -> Result<(), Duration> {
        let wait = |s: Option<&Strikes>| {
            s.map_or(Duration::ZERO, |s| s.until.saturating_duration_since(now))
        };
        let longest = wait(self.pairs.get(&(user, source)))
            .max(wait(self.accounts.get(&user)))
            .max(wait(source.and_then(|s| self.sources.get(&s))));
        if longest.is_zero() {
            Ok(())
        } else {
            Err(longest)
        }
    }

    /// Counts a failed login; returns the wait it earned (the longest of
    /// the pair's, the account's and the source's).
    pub fn failure(&mut self, now: Instant, user: NameKey, source: Option<Source>) -> Duration {
        let policy = self.policy;
        let mut wait = strike(&mut self.pairs, &policy, now, (user, source), |n| {
            policy.penalty(n)
        });
        wait = wait.max(strike(&mut self.accounts, &policy, now, user, |n| {
            policy.account_penalty(n)
        }));
        if let Some(source) = source {
            wait = wait.max(strike(&mut self.sources, &policy, now, source, |n| {
                policy.penalty(n)
            }));
        }
        wait
    }

    /// A successful login of `user` from `source`: the account and the pair
    /// start over.
    pub fn success(&mut self, user: NameKey, source: Option<Source>) {
        self.pairs.remove(&(user, source));
        self.accounts.remove(&user);
    }

    /// Forgets the failures (and lockouts) of `user` (with every address)
    /// or of `source` (with every account), or all of them: an operator's
    /// unlock. Returns how many entries went.
    pub fn clear(&mut self, which: Unlock) -> usize {
        let before = self.pairs.len() + self.accounts.len() + self.sources.len();
        match which {
            Unlock::All => {
                self.pairs.clear();
                self.accounts.clear();
                self.sources.clear();
            }
            Unlock::User(user) => {
                self.pairs.retain(|(u, _), _| *u != user);
                self.accounts.remove(&user);
            }
            Unlock::Source(source) => {
                self.pairs.retain(|(_, s), _| *s != Some(source));
                self.sources.remove(&source);
            }
        }
        before - (self.pairs.len() + self.accounts.len() + self.sources.len())
    }

    /// Entries held (pairs, accounts, sources).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.pairs.len(), self.accounts.len(), self.sources.len())
    }
}

fn strike<K: Hash + Eq + Copy>(
    map: &mut HashMap<K, Strikes>,
    policy: &Policy,
    now: Instant,
    key: K,
    penalty: impl Fn(u32) -> Duration,
) -> Duration {
    let s = map.entry(key).or_insert(Strikes {
        failures: 0,
        until: now,
    });
    if now >= s.until + policy.max_lockout {
        s.failures = 0;
    }
    s.failures = s.failures.saturating_add(1);
    let wait = penalty(s.failures);
    s.until = now + wait;
    if map.len() > policy.max_entries {
        evict(map, policy, now);
    }
    wait
}

/// Drops forgotten entries, then the stalest down to 90% of the bound, so
/// the sort is paid once per tenth of the bound's insertions.
fn evict<K: Hash + Eq + Copy>(map: &mut HashMap<K, Strikes>, policy: &Policy, now: Instant) {
    map.retain(|_, s| now < s.until + policy.max_lockout);
    let keep = policy.max_entries - policy.max_entries / 10;
    if map.len() <= keep {
        return;
    }
    let mut ages: Vec<(Instant, K)> = map.iter().map(|(k, s)| (s.until, *k)).collect();
    let cut = ages.len() - keep;
    ages.select_nth_unstable_by_key(cut, |(until, _)| *until);
    for (_, k) in &ages[..cut] {
        map.remove(k);
    }
}

#[cfg(test)]
mod tests {
    use crate::name::Name;

    use super::*;

    fn user(s: &str) -> NameKey {
        Name::new(s).expect("test names are valid").key()
    }

    const SRC: Source = Source(0xffff_7f00_0001);
    const OTHER_SRC: Source = Source(0xffff_7f00_0002);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn penalties_grow_then_lock_out_doubling_up_to_the_cap() {
        let p = Policy::default();
        let got: Vec<u64> = (1..=10).map(|n| p.penalty(n).as_secs()).collect();
        assert_eq!(got, [0, 1, 2, 4, 300, 600, 1200, 2400, 3600, 3600]);
        assert_eq!(p.penalty(u32::MAX), secs(3600));
    }

    #[test]
    fn one_typo_does_not_delay_the_retry() {
        let t0 = Instant::now();
        let mut l = Lockout::new(Policy::default());
        assert_eq!(l.failure(t0, user("alice"), Some(SRC)), Duration::ZERO);
        assert_eq!(l.check(t0, user("alice"), Some(SRC)), Ok(()));
    }

    #[test]
    fn the_fifth_failure_locks_that_address_out_of_the_account_for_five_minutes() {
        let t0 = Instant::now();
        let mut l = Lockout::new(Policy::default());
        let mut t = t0;
        for n in 1..=4 {
            let wait = l.failure(t, user("alice"), Some(SRC));
            assert_eq!(wait, Policy::default().penalty(n));
            t += wait;
            assert_eq!(l.check(t, user("alice"), Some(SRC)), Ok(()));
        }
        assert_eq!(l.failure(t, user("alice"), Some(SRC)), secs(300));
        assert_eq!(
            l.check(t + secs(100), user("ALICE"), Some(SRC)),
            Err(secs(200))
        );
        assert_eq!(l.check(t + secs(300), user("alice"), Some(SRC)), Ok(()));
        // The next failure doubles it.
        assert_eq!(
            l.failure(t + secs(300), user("alice"), Some(SRC)),
            secs(600)
        );
    }

    #[test]
    fn an_attacker_locking_itself_out_leaves_the_owner_at_another_address_alone() {
        let mut t = Instant::now();
        let mut l = Lockout::new(Policy::default());
        // The attacker guesses as fast as it is let: 30 failures.
        for n in 1..=30 {
            let wait = l.failure(t, user("victim"), Some(SRC));
            if n >= 5 {
                assert!(l.check(t, user("victim"), Some(SRC)).is_err());
            }
            assert_eq!(
                l.check(t, user("victim"), Some(OTHER_SRC)),
                Ok(()),
                "after {n} failures"
            );
            t += wait;
        }
    }

    #[test]
    fn a_distributed_attack_locks_the_account_for_everyone_past_its_own_threshold() {
        let t0 = Instant::now();
        let policy = Policy {
            account_after: 20,
            ..Policy::default()
        };
        let mut l = Lockout::new(policy);
        // One failure each from 19 addresses: nobody else is held up.
        for i in 0..19u128 {
            assert_eq!(
                l.failure(t0, user("victim"), Some(Source(1000 + i))),
                Duration::ZERO
            );
        }
        assert_eq!(l.check(t0, user("victim"), Some(OTHER_SRC)), Ok(()));
        // The 20th locks the account, from anywhere, doubling from there.
        assert_eq!(l.failure(t0, user("victim"), Some(Source(2000))), secs(300));
        assert_eq!(
            l.check(t0 + secs(1), user("victim"), Some(OTHER_SRC)),
            Err(secs(299))
        );
        assert_eq!(l.check(t0, user("other"), Some(OTHER_SRC)), Ok(()));
        assert_eq!(
            l.failure(t0 + secs(300), user("victim"), Some(Source(3000))),
            secs(600)
        );
        // The owner's success once it is over resets the account's count.
        l.success(user("victim"), Some(OTHER_SRC));
        assert_eq!(
            l.failure(t0 + secs(900), user("victim"), Some(Source(4000))),
            Duration::ZERO
        );
    }

    #[test]
    fn the_account_ladder_adds_no_wait_below_its_threshold() {
        let p = Policy::default();
        assert_eq!(p.account_penalty(99), Duration::ZERO);
        assert_eq!(p.account_penalty(100), secs(300));
        assert_eq!(p.account_penalty(101), secs(600));
        assert_eq!(p.account_penalty(u32::MAX), secs(3600));
    }

    #[test]
    fn success_clears_the_account_but_not_the_source() {
        let t0 = Instant::now();
        let mut l = Lockout::new(Policy {
            after: 2,
            ..Policy::default()
        });
        l.failure(t0, user("bob"), Some(SRC));
        l.failure(t0, user("carol"), Some(SRC));
        assert_eq!(l.check(t0, user("dave"), Some(SRC)), Err(secs(300)));
        assert_eq!(l.check(t0, user("bob"), Some(OTHER_SRC)), Ok(()));
        assert_eq!(l.check(t0, user("carol"), Some(OTHER_SRC)), Ok(()));
        l.success(user("bob"), Some(OTHER_SRC));
        assert_eq!(l.check(t0, user("bob"), Some(SRC)), Err(secs(300)));
        assert_eq!(l.check(t0, user("bob"), None), Ok(()));
    }

    #[test]
    fn a_quiet_hour_after_the_penalty_forgets_the_failures() {
        let t0 = Instant::now();
        let mut l = Lockout::new(Policy::default());
        for _ in 0..4 {
            l.failure(t0, user("erin"), None);
        }
        let later = t0 + secs(8) + secs(3600);
        assert_eq!(l.failure(later, user("erin"), None), Duration::ZERO);
    }

    #[test]
    fn the_maps_stay_bounded_by_evicting_the_stalest() {
        let t0 = Instant::now();
        let mut l = Lockout::new(Policy {
            max_entries: 100,
            ..Policy::default()
        });
        for i in 0..1000u64 {
            let t = t0 + Duration::from_millis(i);
            l.failure(t, user(&format!("u{i}")), Some(Source(u128::from(i))));
            let (p, a, s) = l.len();
            assert!(p <= 100 && a <= 100 && s <= 100, "{p} {a} {s}");
        }
        // The newest survive.
        let end = t0 + secs(1);
        assert_eq!(l.failure(end, user("u999"), Some(Source(999))), secs(1));
    }
}
