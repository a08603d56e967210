//! Reading back what the RADIUS tables hold now, per user and per group.

use std::collections::{HashMap, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::super::entities::{radcheck, radgroupcheck, radgroupreply, radreply, radusergroup};
use super::rows::{AttrRow, GroupRows, UserRows};

type Quad = (String, String, String, String);

fn quads_by_name(rows: Vec<Quad>) -> HashMap<String, Vec<AttrRow>> {
    let mut map: HashMap<String, Vec<AttrRow>> = HashMap::new();
    for (name, attribute, op, value) in rows {
        map.entry(name).or_default().push(AttrRow {
            attribute,
            op,
            value,
        });
    }
    map
}

/// The rows FreeRADIUS has for these users.
pub(super) async fn current_users_rows(
    db: &impl ConnectionTrait,
    usernames: &[String],
) -> Result<HashMap<String, UserRows>, DbErr> {
    let mut out: HashMap<String, UserRows> = HashMap::new();
    if usernames.is_empty() {
        return Ok(out);
    }
    let check: Vec<Quad> = radcheck::Entity::find()
        .select_only()
        .columns([
            radcheck::Column::Username,
            radcheck::Column::Attribute,
            radcheck::Column::Op,
            radcheck::Column::Value,
        ])
        .filter(radcheck::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    let reply: Vec<Quad> = radreply::Entity::find()
        .select_only()
        .columns([
            radreply::Column::Username,
            radreply::Column::Attribute,
            radreply::Column::Op,
            radreply::Column::Value,
        ])
        .filter(radreply::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    let groups: Vec<(String, String, i32)> = radusergroup::Entity::find()
        .select_only()
        .columns([
            radusergroup::Column::Username,
            radusergroup::Column::Groupname,
            radusergroup::Column::Priority,
        ])
        .filter(radusergroup::Column::Username.is_in(usernames.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?;
    for (name, rows) in quads_by_name(check) {
        out.entry(name).or_default().check = rows;
    }
    for (name, rows) in quads_by_name(reply) {
        out.entry(name).or_default().reply = rows;
    }
    for (name, group, priority) in groups {
        out.entry(name).or_default().groups.push((group, priority));
    }
    Ok(out
        .into_iter()
        .map(|(name, rows)| (name, rows.sorted()))
        .collect())
}

/// The rows FreeRADIUS has for one user (what it will see on a request).
pub async fn current_user_rows(
    radius_db: &impl ConnectionTrait,
    username: &str,
) -> Result<UserRows, DbErr> {
    Ok(
        current_users_rows(radius_db, std::slice::from_ref(&username.to_string()))
            .await?
            .remove(username)
            .unwrap_or_default(),
    )
}

/// The rows FreeRADIUS has for one group.
pub async fn current_group_rows(
    radius_db: &impl ConnectionTrait,
    groupname: &str,
) -> Result<GroupRows, DbErr> {
    let check: Vec<Quad> = radgroupcheck::Entity::find()
        .select_only()
        .columns([
            radgroupcheck::Column::Groupname,
            radgroupcheck::Column::Attribute,
            radgroupcheck::Column::Op,
            radgroupcheck::Column::Value,
        ])
        .filter(radgroupcheck::Column::Groupname.eq(groupname))
        .into_tuple()
        .all(radius_db)
        .await?;
    let reply: Vec<Quad> = radgroupreply::Entity::find()
        .select_only()
        .columns([
            radgroupreply::Column::Groupname,
            radgroupreply::Column::Attribute,
            radgroupreply::Column::Op,
            radgroupreply::Column::Value,
        ])
        .filter(radgroupreply::Column::Groupname.eq(groupname))
        .into_tuple()
        .all(radius_db)
        .await?;
    let take = |rows: Vec<Quad>| {
        rows.into_iter()
            .map(|(_, attribute, op, value)| AttrRow {
                attribute,
                op,
                value,
            })
            .collect()
    };
    Ok(GroupRows {
        check: take(check),
        reply: take(reply),
    }
    .sorted())
}

/// Every username that has a row in radcheck, radreply or radusergroup.
pub(super) async fn radius_usernames(db: &impl ConnectionTrait) -> Result<HashSet<String>, DbErr> {
    let mut names = HashSet::new();
    let check: Vec<String> = radcheck::Entity::find()
        .select_only()
        .column(radcheck::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let reply: Vec<String> = radreply::Entity::find()
        .select_only()
        .column(radreply::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    let groups: Vec<String> = radusergroup::Entity::find()
        .select_only()
        .column(radusergroup::Column::Username)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    names.extend(check);
    names.extend(reply);
    names.extend(groups);
    Ok(names)
}
