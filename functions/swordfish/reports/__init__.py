"""Reports an MSP sends its clients (issue 28): one tenant, one period. ``model`` holds the period and
the report's figures (computed by ``store.reports`` with SQL aggregates under row-level security);
``charts`` draws them as SVG and ``render`` as HTML and PDF. Pure: no I/O, so the API, the console
and the docs render the same figures the same way."""
