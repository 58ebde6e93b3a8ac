"""Alembic environment: runs on the connection `store.db.migrate` hands over."""

from alembic import context

from store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # plain `alembic` CLI use: build an engine from Turnscribe's settings
    from store.db import make_engine
    from store.settings import load_settings

    connection = make_engine(load_settings().database_url).connect()

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
