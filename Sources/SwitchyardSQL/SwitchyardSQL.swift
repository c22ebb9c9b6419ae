// The SQL layer: statement analysis on libpg_query.
