"""Watch (API.md §15): every write of ``kinds`` and ``tasks`` stamped and logged in the database.

- ``wegent_stamp`` (BEFORE INSERT OR UPDATE): the row's ``resource_version`` is taken here and
  only here, *after* the transaction has been given its transaction id. The watch's
  watermark rests on that order (docs/watch.md): a version read from the sequence belongs to a
  transaction that is either finished or listed as running in any later snapshot.
- ``wegent_log_change`` (AFTER INSERT OR UPDATE): one ``watch_changes`` row per change of a
  live object — its type (A added or restored, M modified, D soft-deleted), what selectors
  read of it before and after (labels, and a Task's phase and team), and the object as
  answered. Changes inside the trash are not logged: watches show live objects.
- ``watch_state``: ``horizon``, the highest version pruned from the log (a watch resuming
  below it is 410 Expired), and ``access``, a counter moved by every change of users, roles
  and memberships, so open watches re-check what their callers may read.
"""

from wegent.db.raw_steps import raw_migration

ID = "2026-12-06T23:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "the watch change log, its triggers and the access counter"

_MATCH_KINDS = "jsonb_build_object('labels', {row}.labels)"
_MATCH_TASKS = (
    "jsonb_build_object('labels', {row}.labels, 'phase', {row}.phase, 'team_name', {row}.team_name)"
)


def _log_function(table: str, match: str) -> str:
    new, old = match.format(row="NEW"), match.format(row="OLD")
    return (
        f"CREATE FUNCTION wegent_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE change char(1); "
        "BEGIN "
        "IF TG_OP = 'INSERT' THEN "
        "  IF NEW.deleted_at IS NOT NULL THEN RETURN NULL; END IF; change := 'A'; "
        "ELSIF NEW.deleted_at IS NULL THEN "
        "  change := CASE WHEN OLD.deleted_at IS NULL THEN 'M' ELSE 'A' END; "
        "ELSIF OLD.deleted_at IS NULL THEN change := 'D'; "
        "ELSE RETURN NULL; "
        "END IF; "
        "INSERT INTO watch_changes (rv, kind, namespace, name, uid, change, match, old_match, "
        "body) VALUES (NEW.resource_version, NEW.kind, NEW.namespace, NEW.name, NEW.uid, "
        f"change, {new}, CASE WHEN change = 'A' THEN NULL ELSE {old} END, NEW.body); "
        "RETURN NULL; "
        "END $$"
    )


FORWARDS = [
    "CREATE TABLE watch_changes (rv bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), "
    "kind varchar(32) NOT NULL, namespace varchar(63) NOT NULL, name varchar(63) NOT NULL, "
    "uid uuid NOT NULL, change char(1) NOT NULL, match jsonb NOT NULL, old_match jsonb, "
    "body bytea NOT NULL)",
    "CREATE TABLE watch_state (id int PRIMARY KEY CHECK (id = 1), horizon bigint NOT NULL, "
    "access bigint NOT NULL DEFAULT 0)",
    # What was written before the log existed is history it does not hold.
    "INSERT INTO watch_state (id, horizon) SELECT 1, last_value FROM resource_version_seq",
    "CREATE FUNCTION wegent_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN PERFORM pg_current_xact_id(); "
    "NEW.resource_version := nextval('resource_version_seq'); RETURN NEW; END $$",
    _log_function("kinds", _MATCH_KINDS),
    _log_function("tasks", _MATCH_TASKS),
    "CREATE FUNCTION wegent_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN UPDATE watch_state SET access = access + 1 WHERE id = 1; RETURN NULL; END $$",
    "CREATE TRIGGER kinds_stamp BEFORE INSERT OR UPDATE ON kinds "
    "FOR EACH ROW EXECUTE FUNCTION wegent_stamp()",
    "CREATE TRIGGER tasks_stamp BEFORE INSERT OR UPDATE ON tasks "
    "FOR EACH ROW EXECUTE FUNCTION wegent_stamp()",
    "CREATE TRIGGER kinds_log AFTER INSERT OR UPDATE ON kinds "
    "FOR EACH ROW EXECUTE FUNCTION wegent_log_kinds()",
    "CREATE TRIGGER tasks_log AFTER INSERT OR UPDATE ON tasks "
    "FOR EACH ROW EXECUTE FUNCTION wegent_log_tasks()",
    "CREATE TRIGGER users_access AFTER UPDATE OF role, is_active, username OR DELETE ON users "
    "FOR EACH STATEMENT EXECUTE FUNCTION wegent_access_changed()",
    "CREATE TRIGGER members_access AFTER INSERT OR UPDATE OR DELETE ON namespace_members "
    "FOR EACH STATEMENT EXECUTE FUNCTION wegent_access_changed()",
    "CREATE TRIGGER namespaces_access AFTER DELETE ON namespaces "
    "FOR EACH STATEMENT EXECUTE FUNCTION wegent_access_changed()",
]
BACKWARDS = [
    "DROP TRIGGER namespaces_access ON namespaces",
    "DROP TRIGGER members_access ON namespace_members",
    "DROP TRIGGER users_access ON users",
    "DROP TRIGGER tasks_log ON tasks",
    "DROP TRIGGER kinds_log ON kinds",
    "DROP TRIGGER tasks_stamp ON tasks",
    "DROP TRIGGER kinds_stamp ON kinds",
    "DROP FUNCTION wegent_access_changed()",
    "DROP FUNCTION wegent_log_tasks()",
    "DROP FUNCTION wegent_log_kinds()",
    "DROP FUNCTION wegent_stamp()",
    "DROP TABLE watch_state",
    "DROP TABLE watch_changes",
]

forwards = raw_migration(ID, DESCRIPTION, FORWARDS, BACKWARDS)
