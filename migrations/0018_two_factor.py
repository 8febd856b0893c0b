"""Two-factor sign-in (issue 17): the authenticator app and the second step's lockout per user, security
keys, recovery codes, trusted browsers, and which second factor each signed-in session passed."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class TwoFactor(Model):
        user = ForeignKeyField(User, primary_key=True, on_delete='CASCADE')
        totp_secret = TextField(default='')
        totp_confirmed_at = DateTimeField(null=True)
        totp_last_step = BigIntegerField(default=0)
        failures = IntegerField(default=0)
        locked_until = DateTimeField(null=True)
        updated_at = DateTimeField()

        class Meta:
            database = db
            table_name = 'two_factor'

    class SecurityKey(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        name = CharField(max_length=60)
        credential_id = CharField(max_length=400, unique=True)
        public_key = TextField()
        sign_count = BigIntegerField(default=0)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = 'security_key'

    class RecoveryCode(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        code_hash = CharField(max_length=64)
        used_at = DateTimeField(null=True)
        created_at = DateTimeField()

        class Meta:
            database = db
            table_name = 'recovery_code'

    class TrustedBrowser(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        token_hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField()
        expires_at = DateTimeField()

        class Meta:
            database = db
            table_name = 'trusted_browser'

    db.create_tables([TwoFactor, SecurityKey, RecoveryCode, TrustedBrowser])
    # "" until the session passed its second step; then the factor: totp, key, recovery, trusted, or
    # none (the user has no factor and none is required).
    migrator.migrate(migrator.add_column('user_session', 'second_factor', CharField(max_length=20, default='')))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('user_session', 'second_factor'))
    for table in ('trusted_browser', 'recovery_code', 'security_key', 'two_factor'):
        migrator.migrate(migrator.drop_table(table))
