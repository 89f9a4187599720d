from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("statekit", "0002_expired_scope"),
    ]

    operations = [
        migrations.CreateModel(
            name="CacheEpoch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("value", models.PositiveBigIntegerField(default=0)),
                ("redis_run_id", models.CharField(blank=True, default="", max_length=64)),
            ],
        ),
    ]
