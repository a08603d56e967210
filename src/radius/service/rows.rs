//! The rows ispd writes for FreeRADIUS (`attribute op value`), grouped per
//! user and per group, and the outcome of a sync.

use std::fmt;

use super::CLEARTEXT_PASSWORD;

/// One `attribute op value` row of radcheck, radreply, radgroupcheck or
/// radgroupreply. `value` is the stored form ([`super::super::value::stored`]), as
/// the column holds it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttrRow {
    pub attribute: String,
    pub op: String,
    pub value: String,
}

impl AttrRow {
    /// A row whose value FreeRADIUS reads as exactly `value`, whatever
    /// quotes, backticks or `%{` it holds.
    pub fn new(attribute: &str, op: &str, value: impl AsRef<str>) -> Self {
        Self {
            attribute: attribute.to_string(),
            op: op.to_string(),
            value: super::super::value::stored(value.as_ref()).into_owned(),
        }
    }

    /// `:=`: set, replacing any value FreeRADIUS already has.
    pub fn set(attribute: &str, value: impl AsRef<str>) -> Self {
        Self::new(attribute, ":=", value)
    }

    pub fn is_password(&self) -> bool {
        self.attribute.eq_ignore_ascii_case(CLEARTEXT_PASSWORD)
            || self.attribute.to_ascii_lowercase().ends_with("-password")
    }
}

impl fmt::Debug for AttrRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.is_password() {
            "[redacted]"
        } else {
            self.value.as_str()
        };
        write!(f, "{} {} {:?}", self.attribute, self.op, value)
    }
}

/// A user's rows in radcheck, radreply and radusergroup, sorted so that two
/// sets compare equal whatever order the database returned them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRows {
    pub check: Vec<AttrRow>,
    pub reply: Vec<AttrRow>,
    /// (groupname, priority)
    pub groups: Vec<(String, i32)>,
}

impl UserRows {
    pub(super) fn sorted(mut self) -> Self {
        self.check.sort();
        self.reply.sort();
        self.groups.sort();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.check.is_empty() && self.reply.is_empty() && self.groups.is_empty()
    }
}

/// A group's rows in radgroupcheck and radgroupreply, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRows {
    pub check: Vec<AttrRow>,
    pub reply: Vec<AttrRow>,
}

impl GroupRows {
    pub(super) fn sorted(mut self) -> Self {
        self.check.sort();
        self.reply.sort();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.check.is_empty() && self.reply.is_empty()
    }
}

/// What a sync did (or, in a dry run, would do) to one user or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It had no rows.
    Created,
    /// It had rows, not the right ones.
    Updated,
    /// Its rows were already right; nothing written.
    Unchanged,
}

impl Outcome {
    pub(super) fn of(current_empty: bool, same: bool) -> Self {
        match (same, current_empty) {
            (true, _) => Outcome::Unchanged,
            (false, true) => Outcome::Created,
            (false, false) => Outcome::Updated,
        }
    }
}

/// Counts for packages (their groups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What [`sync_all`] did, or with `dry_run` would do. `created`,
/// `updated`, `removed` and `unchanged` count users (usernames).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: u64,
    pub updated: u64,
    /// Usernames with RADIUS rows that are no longer network users.
    pub removed: u64,
    pub unchanged: u64,
    pub packages: PackageCounts,
    /// Users not synced because their password does not decrypt; their
    /// rows are left as they were and their flag stays set.
    pub failed: Vec<String>,
    pub dry_run: bool,
}

impl SyncReport {
    pub(super) fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.unchanged += 1,
        }
    }

    /// Users created, updated or removed: the drift a dry run reports.
    pub fn drift(&self) -> u64 {
        self.created + self.updated + self.removed
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would be " } else { "" };
        write!(
            f,
            "users: {} {verb}created, {} {verb}updated, {} {verb}removed, {} unchanged; \
             packages: {} {verb}created, {} {verb}updated, {} unchanged",
            self.created,
            self.updated,
            self.removed,
            self.unchanged,
            self.packages.created,
            self.packages.updated,
            self.packages.unchanged
        )?;
        if !self.failed.is_empty() {
            write!(f, "; failed: {}", self.failed.join(", "))?;
        }
        Ok(())
    }
}
