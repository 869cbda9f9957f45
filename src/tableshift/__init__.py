"""tableshift: make a Supabase / PostgREST table consolidation safe in code."""

__version__ = "0.1.0"
