# nextslot: one image, the `nextslot` command as entrypoint; the server and the scheduler are two commands of it:
#   docker run IMAGE serve --host 0.0.0.0 --port 8000      docker run IMAGE scheduler      docker run IMAGE migrate
# Multi-stage: the build stage installs the package into a virtualenv; the runtime stage copies only that
# virtualenv and runs as an unprivileged user (uid 10001). Set NEXTSLOT_DATABASE_URL and NEXTSLOT_SECRET_KEY.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/nextslot
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nextslot ./nextslot
RUN /opt/nextslot/bin/pip install --compile . \
 && /opt/nextslot/bin/nextslot --help > /dev/null

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 nextslot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/nextslot --create-home --shell /usr/sbin/nologin nextslot
COPY --from=build /opt/nextslot /opt/nextslot
COPY examples /opt/nextslot/examples
ENV PATH=/opt/nextslot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NEXTSLOT_DATA_DIR=/home/nextslot/data \
    NEXTSLOT_LOG_FORMAT=json
USER 10001:10001
WORKDIR /home/nextslot
RUN mkdir -p /home/nextslot/data
EXPOSE 8000 9100
ENTRYPOINT ["nextslot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
