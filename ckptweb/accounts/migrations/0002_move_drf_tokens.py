"""DRF's plaintext tokens become hashed API tokens: each key keeps working, its row goes.

knox finds a token by its first 15 characters and compares the SHA-512 of the whole key; a
40-hex DRF key hashes like any knox key, so clients keep sending the same header.
"""

from django.db import migrations
from knox.crypto import hash_token
from knox.settings import CONSTANTS

#: The name the migrated tokens carry on the Tokens page.
MIGRATED_NAME = "API token (from before named tokens)"


def move_drf_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    for old in Token.objects.all():
        new = ApiToken.objects.create(
            user_id=old.user_id,
            name=MIGRATED_NAME,
            token_key=old.key[: CONSTANTS.TOKEN_KEY_LENGTH],
            digest=hash_token(old.key),
            expiry=None,
        )
        ApiToken.objects.filter(pk=new.pk).update(created=old.created)
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(move_drf_tokens, migrations.RunPython.noop)]
