# ebike-registry image: web (gunicorn), Celery worker and beat, and the terminal gateway all run from
# it with different commands (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# GeoDjango's C libraries (GDAL 3.6, GEOS, PROJ from Debian 12) and gettext for compilemessages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gdal-bin libgdal32 libgeos-c1v5 libproj25 gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY . .

# Translations (when any locale/*.po exists) and static files are built into the image.
RUN if find . -name '*.po' -path '*/locale/*' | grep -q .; then python manage.py compilemessages; fi \
    && python manage.py collectstatic --noinput -v 0

# var/keys and audit-heads exist in the image, owned by app, so the named volumes compose mounts
# there (the bureau key, the signed audit heads) start out writable by it.
RUN useradd --system --create-home --uid 10001 app \
    && mkdir -p /app/var/keys /app/media /app/audit-heads \
    && chmod 0700 /app/var/keys \
    && chown app:app /app/var /app/var/keys /app/media /app/audit-heads
USER app

EXPOSE 8000 5023 5015 5055
CMD ["gunicorn", "ebike_registry.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", \
     "--no-control-socket", "--access-logfile", "-"]
