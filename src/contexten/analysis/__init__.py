"""Pure analysis: no I/O, no Prefect. Modules take strings, bytes or iterables."""
