"""Database access: the pool, the migrations runner, the SQL loader and one module per table."""
