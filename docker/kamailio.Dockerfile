# Kamailio 5.6 from Debian with the project's configuration.
# Build from the repository root: docker build -f docker/kamailio.Dockerfile -t sca-kamailio .
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      kamailio kamailio-extra-modules kamailio-json-modules kamailio-utils-modules kamailio-sqlite-modules \
    && rm -rf /var/lib/apt/lists/*
# The ctl socket's directory (systemd makes it outside containers) and the call-control socket's,
# a volume shared with sca-service.
RUN mkdir -p /run/kamailio /run/callcontrol
COPY kamailio/ /etc/kamailio/
EXPOSE 5060/udp
CMD ["kamailio", "-DD", "-E", "-f", "/etc/kamailio/kamailio.cfg", "-m", "256", "-M", "16"]
