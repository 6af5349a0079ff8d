"""The top-up buttons customers saw before packages (100, 300, 500, 1,000 ₽), the larger two with a bonus."""
from django.db import migrations

PACKAGES = [(100_00, 0), (300_00, 0), (500_00, 5), (1000_00, 10)]


def seed(apps, schema_editor):
    TopUpPackage = apps.get_model("promotions", "TopUpPackage")
    for position, (amount, bonus_percent) in enumerate(PACKAGES):
        TopUpPackage.objects.get_or_create(amount=amount, defaults={"bonus_percent": bonus_percent, "position": position})


class Migration(migrations.Migration):
    dependencies = [("promotions", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
