"""Durable SQL state shared by tether's components: one schema, one ordered list of migrations, SQLite or PostgreSQL.

The webhook inbox and the credentials vault keep their tables in the same database (``tether.db`` by default), so
the schema is versioned once for the whole file (:mod:`tether.store._migrations`). Nothing here is public API yet;
components open their stores through their own classes (:class:`tether.webhooks.Inbox`, :class:`tether.auth.Vault`).
"""

__all__: list[str] = []
