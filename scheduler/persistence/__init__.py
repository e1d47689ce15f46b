"""Storage: SQLAlchemy tables, the UTC column type, engines and migrations, repository functions.

Repository functions take a session (``db``) and never commit: services own the transaction.
"""
