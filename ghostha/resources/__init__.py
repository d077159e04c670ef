"""One module per kind of resource ghostha owns, in the order `up` builds them (teardown is the reverse).

Each module holds, for its resource: the config keys it reads (`KEYS`), what the config wants (`desired`), what
AWS holds (`actual`), the field changes between them (`diff`), and the steps that create, update and delete it
with what to wait for after each. `ghostha.plan` only puts them in order. Raw boto3 dictionaries stay inside
these modules and `observe`.
"""
