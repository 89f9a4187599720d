"""The Django project that ``benchmarks/bench_http.py`` serves with gunicorn and uvicorn."""
