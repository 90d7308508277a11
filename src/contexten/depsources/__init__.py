"""Where dependency data comes from: project files on disk; the package index and advisories
through their clients in `integrations` (`packages`: the two interfaces and their errors;
`pypi`: the PyPI JSON API, `PYPI_INDEX_URL`; `osv`: OSV's API, `OSV_API_URL`).

- `project`: finds and reads a project's dependency files (following `-r`/`-c` includes).
- `planning`: fetches what a plan needs and builds it (`analysis.deps` does the thinking).
- `local_index`: a PyPI-JSON and OSV look-alike on 127.0.0.1 for tests and the offline demo.
"""
