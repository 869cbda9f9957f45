"""tableshift: make a Supabase / PostgREST table consolidation safe in code."""

__version__ = "0.2.0"  # the one place the version is written; releases are tagged v<version>
