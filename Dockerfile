# The service against an external PostgreSQL: set WEGENT_DATABASE_URL, WEGENT_JWT_SECRET and
# WEGENT_SECRET_KEY (each secret at least 32 bytes). Migrations run at start.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEGENT_HOST=0.0.0.0 \
    WEGENT_PORT=8000 \
    WEGENT_DATA_DIR=/var/lib/wegent

WORKDIR /app
COPY pyproject.toml README.md piccolo_conf.py ./
COPY wegent ./wegent
COPY piccolo_migrations ./piccolo_migrations
RUN pip install --no-cache-dir . \
    && useradd --system --home /var/lib/wegent --create-home wegent

USER wegent
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"WEGENT_PORT\"]}/healthz')"
CMD ["wegent", "serve"]
