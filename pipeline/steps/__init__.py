"""The data steps as plain functions: paths in, counts out, no Luigi inside."""
