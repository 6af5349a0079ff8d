"""On PostgreSQL the ledger refuses UPDATE and DELETE: history cannot be rewritten, even by SQL."""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION billing_transfer_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'billing_transfer is append-only: %% refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS billing_transfer_append_only ON billing_transfer;
CREATE TRIGGER billing_transfer_append_only
    BEFORE UPDATE OR DELETE ON billing_transfer
    FOR EACH ROW EXECUTE FUNCTION billing_transfer_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS billing_transfer_append_only ON billing_transfer;
DROP FUNCTION IF EXISTS billing_transfer_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


def create_system_accounts(apps, schema_editor):
    Account = apps.get_model("billing", "Account")
    for code in ("yookassa", "stars", "revenue", "adjustments", "legacy", "bonus"):
        Account.objects.get_or_create(code=code, defaults={"kind": "system"})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger),
        migrations.RunPython(create_system_accounts, migrations.RunPython.noop),
    ]
