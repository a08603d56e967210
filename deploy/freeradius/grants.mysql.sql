-- FreeRADIUS's own database user on the RADIUS database (MySQL/MariaDB):
-- it reads users, groups and NAS clients, and writes accounting and
-- post-auth, nothing else. ispd owns the tables (RADIUS_DATABASE_URL);
-- FreeRADIUS logs in as this user (deploy/freeradius/sql). Run after
-- `ispd migrate`, in the RADIUS database, as a user allowed to grant:
--
--   mariadb radius < deploy/freeradius/grants.mysql.sql
--
-- The user itself is made once:
--   CREATE USER 'freeradius'@'%' IDENTIFIED BY '...';
-- tests/it/freeradius.rs runs FreeRADIUS with exactly these grants.

-- authorize (users, groups), client_query (nas) and simul_count_query.
GRANT SELECT ON radcheck TO 'freeradius'@'%';
GRANT SELECT ON radreply TO 'freeradius'@'%';
GRANT SELECT ON radgroupcheck TO 'freeradius'@'%';
GRANT SELECT ON radgroupreply TO 'freeradius'@'%';
GRANT SELECT ON radusergroup TO 'freeradius'@'%';
GRANT SELECT ON nas TO 'freeradius'@'%';
-- Accounting: start, interim, stop, and accounting-on/off (nasreload marks
-- a NAS's reboot, which closes its sessions).
GRANT SELECT, INSERT, UPDATE ON radacct TO 'freeradius'@'%';
GRANT SELECT, INSERT, UPDATE ON nasreload TO 'freeradius'@'%';
-- post-auth: one row per login.
GRANT INSERT ON radpostauth TO 'freeradius'@'%';
