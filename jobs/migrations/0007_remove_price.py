"""The staff prices became the offers' price lines (0006); the old table goes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0006_seed_offers'),
    ]

    operations = [
        migrations.DeleteModel(
            name='Price',
        ),
    ]
