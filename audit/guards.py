"""The database's own refusal to change ledger rows: triggers for PostgreSQL and SQLite.

Created by migration 0002. Only the database owner can switch them off (ALTER TABLE ...
DISABLE TRIGGER, or dropping them), which is what the tamper tests do on purpose.
"""

from django.db.backends.base.base import BaseDatabaseWrapper

PROTECTED_TABLES = ("audit_event", "audit_checkpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION posture_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def create_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [_PG_FUNCTION]
        for table in PROTECTED_TABLES:
            statements += [
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION posture_ledger_refuse_change()",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION posture_ledger_refuse_change()",
            ]
        return statements
    if vendor == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} BEGIN "
            f"SELECT RAISE(ABORT, 'the ledger is append-only: {operation} on {table} refused'); "
            "END"
            for table in PROTECTED_TABLES
            for operation in ("UPDATE", "DELETE")
        ]
    raise NotImplementedError(f"no append-only guard for {vendor}")


def drop_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f"DROP TRIGGER IF EXISTS {table}_{suffix} ON {table}"
            for table in PROTECTED_TABLES
            for suffix in ("no_update_delete", "no_truncate")
        ]
        return [*statements, "DROP FUNCTION IF EXISTS posture_ledger_refuse_change()"]
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_{operation}"
        for table in PROTECTED_TABLES
        for operation in ("update", "delete")
    ]


def guards_create(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in create_sql(connection.vendor):
            cursor.execute(statement)


def guards_drop(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor):
            cursor.execute(statement)
