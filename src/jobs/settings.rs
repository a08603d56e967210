//! The JOBS_* settings: each job's schedule and how runs are retried,
//! timed out, leased and kept. Documented in `.env.example`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use crate::config::ConfigError;

use super::worker::WorkerSettings;
use super::SCHEDULE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsSettings {
    /// Each scheduled job's cron expression (six fields, seconds first,
    /// UTC); None when its JOBS_SCHEDULE_* variable is `off`.
    pub schedules: BTreeMap<&'static str, Option<String>>,
    pub attempts: u32,
    pub retry_backoff: Duration,
    pub timeout: Duration,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// Finished runs older than this many days are deleted by housekeeping.
    pub history_days: u32,
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self::from_lookup(|_| None).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError {
                var,
                problem: format!(
                    "\"{text}\" is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
        },
    }
}

impl JobsSettings {
    /// Reads the JOBS_* variables through `lookup` (empty counts as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut schedules = BTreeMap::new();
        for job in SCHEDULE {
            let text = get(job.env).unwrap_or_else(|| job.cron.to_string());
            let text = text.trim().to_string();
            let schedule = if text.eq_ignore_ascii_case("off") {
                None
            } else {
                if let Err(err) = cron::Schedule::from_str(&text) {
                    return Err(ConfigError {
                        var: job.env,
                        problem: format!(
                            "\"{text}\" is not a cron expression with six fields, seconds first (such as \"0 */5 * * * *\"), nor \"off\": {err}"
                        ),
                    });
                }
                Some(text)
            };
            schedules.insert(job.name, schedule);
        }
        Ok(Self {
            schedules,
            attempts: number(&get, "JOBS_ATTEMPTS", 3, 1..=20)? as u32,
            retry_backoff: Duration::from_secs(number(
                &get,
                "JOBS_RETRY_BACKOFF_SECS",
                10,
                1..=3600,
            )?),
            timeout: Duration::from_secs(number(&get, "JOBS_TIMEOUT_SECS", 900, 1..=86_400)?),
            lease: Duration::from_secs(number(&get, "JOBS_LEASE_SECS", 30, 3..=3600)?),
            poll_interval: Duration::from_millis(number(
                &get,
                "JOBS_POLL_INTERVAL_MS",
                1000,
                50..=60_000,
            )?),
            history_days: number(&get, "JOBS_HISTORY_DAYS", 30, 1..=3650)? as u32,
        })
    }

    /// The parsed schedule of `job`; None when off or not a scheduled job.
    pub fn schedule(&self, job: &str) -> Option<cron::Schedule> {
        self.schedules
            .get(job)
            .and_then(|text| text.as_deref())
            .and_then(|text| cron::Schedule::from_str(text).ok())
    }

    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            attempts: self.attempts,
            retry_backoff: self.retry_backoff,
            timeout: self.timeout,
            lease: self.lease,
            poll_interval: self.poll_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_schedule_every_job() {
        let settings = JobsSettings::default();
        assert_eq!(
            settings.schedules["mikrotik-sync-sessions"].as_deref(),
            Some("0 * * * * *")
        );
        assert_eq!(
            settings.schedules["ipam-cleanup"].as_deref(),
            Some("0 0 0 * * *")
        );
        assert_eq!(settings.attempts, 3);
        for job in SCHEDULE {
            assert!(settings.schedule(job.name).is_some(), "{}", job.name);
        }
    }

    #[test]
    fn a_schedule_can_be_changed_or_turned_off() {
        let settings = JobsSettings::from_lookup(|var| match var {
            "JOBS_SCHEDULE_IPAM_CLEANUP" => Some("0 30 2 * * *".into()),
            "JOBS_SCHEDULE_NETWORK_HEALTH_CHECK" => Some("off".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            settings.schedules["ipam-cleanup"].as_deref(),
            Some("0 30 2 * * *")
        );
        assert_eq!(settings.schedules["network-health-check"], None);
        assert!(settings.schedule("network-health-check").is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("JOBS_SCHEDULE_RADIUS_RETRY", "every five minutes"),
            ("JOBS_SCHEDULE_HOUSEKEEPING", "0 * * * *"),
            ("JOBS_ATTEMPTS", "0"),
            ("JOBS_ATTEMPTS", "three"),
            ("JOBS_TIMEOUT_SECS", "-1"),
            ("JOBS_LEASE_SECS", "1"),
            ("JOBS_HISTORY_DAYS", "0"),
            ("JOBS_POLL_INTERVAL_MS", "10"),
        ] {
            let err = JobsSettings::from_lookup(|v| (v == var).then(|| value.to_string()))
                .expect_err(var);
            assert_eq!(err.var, var, "{value}");
        }
    }
}
