//! Sessions that held an address (for IPAM's "who had this address").

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::sessions::{select_sessions, sessions, Session};
use super::sql::{push_address_eq, push_time_cmp, Sql};

/// radacct's column for this kind of address.
fn framed_column(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "framedipaddress",
        IpAddr::V6(_) => "framedipv6address",
    }
}

/// Sessions that had `ip` (as Framed-IP-Address, or Framed-IPv6-Address
/// for IPv6) at `at`, or (`at` None) the latest `limit` sessions with it.
pub async fn sessions_with_address(
    radius_db: &impl ConnectionTrait,
    ip: IpAddr,
    at: Option<DateTime<Utc>>,
    limit: u64,
) -> Result<Vec<Session>, DbErr> {
    let backend = radius_db.get_database_backend();
    let mut sql = Sql::new(backend);
    sql.push(&select_sessions(backend)).push(" WHERE ");
    push_address_eq(&mut sql, framed_column(ip), ip);
    if let Some(at) = at {
        sql.push(" AND ");
        push_time_cmp(&mut sql, "acctstarttime", "<=", at);
        sql.push(" AND (acctstoptime IS NULL OR ");
        push_time_cmp(&mut sql, "acctstoptime", ">", at);
        sql.push(")");
    }
    sql.push(&format!(
        " ORDER BY acctstarttime DESC, radacctid DESC LIMIT {limit}"
    ));
    let mut found = sessions(radius_db, &sql).await?;
    if ip.is_ipv6() {
        // The column holds what FreeRADIUS was sent; show the address asked.
        for s in &mut found {
            s.framed_ip = Some(ip.to_string());
        }
    }
    Ok(found)
}
