-- FreeRADIUS's own database role on the RADIUS database: it reads users,
-- groups and NAS clients, and writes accounting and post-auth, nothing else.
-- ispd owns the tables (RADIUS_DATABASE_URL); FreeRADIUS logs in as this
-- role (deploy/freeradius/sql). Run after `ispd migrate`, as the owner:
--
--   psql "$RADIUS_DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/freeradius/grants.postgresql.sql
--
-- The role itself is made once by a superuser:
--   CREATE ROLE freeradius LOGIN PASSWORD '...';
-- tests/it/freeradius.rs runs FreeRADIUS with exactly these grants.

GRANT USAGE ON SCHEMA public TO freeradius;
-- authorize (users, groups), client_query (nas) and simul_count_query.
GRANT SELECT ON radcheck, radreply, radgroupcheck, radgroupreply, radusergroup, nas TO freeradius;
-- Accounting: start, interim, stop, and accounting-on/off (nasreload marks
-- a NAS's reboot, which closes its sessions).
GRANT SELECT, INSERT, UPDATE ON radacct, nasreload TO freeradius;
GRANT USAGE ON SEQUENCE radacct_radacctid_seq TO freeradius;
-- post-auth: one row per login.
GRANT INSERT ON radpostauth TO freeradius;
GRANT USAGE ON SEQUENCE radpostauth_id_seq TO freeradius;
