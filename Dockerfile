FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY posture posture
COPY audit audit
COPY reports reports
RUN pip install --no-cache-dir .
COPY . .
# Static files are collected at build time with throwaway settings; runtime needs its own.
RUN DEBUG=true python manage.py generate_signing_key /tmp/build-key.pem >/dev/null \
    && DEBUG=false SECRET_KEY=collectstatic-only POSTURE_SIGNING_KEY_FILE=/tmp/build-key.pem \
       python manage.py collectstatic --no-input \
    && rm /tmp/build-key.pem
RUN useradd --create-home posture && mkdir -p /var/lib/posture/checkpoints && chown posture /var/lib/posture/checkpoints
USER posture
EXPOSE 8000
