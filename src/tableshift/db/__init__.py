"""The database side: a real PostgreSQL, the schemas loaded into it, and the migration SQL."""
