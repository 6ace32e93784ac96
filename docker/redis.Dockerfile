# Test only (docker/compose.test.yml): a stand-in for the official redis image, Debian's redis-server.
# Like the official image it listens on the container's network without protected mode: the compose
# network is its only network (docker-compose.yml publishes no Redis port).
ARG BASE_IMAGE=slf-local/debian:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/var/lib/redis"]
