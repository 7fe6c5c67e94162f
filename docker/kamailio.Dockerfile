# Kamailio 5.6 from Debian with the project's configuration.
# Build from the repository root: docker build -f docker/kamailio.Dockerfile -t sca-kamailio .
FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      kamailio kamailio-extra-modules kamailio-json-modules kamailio-utils-modules kamailio-sqlite-modules \
      kamailio-tls-modules openssl \
    && rm -rf /var/lib/apt/lists/*
# The ctl socket's directory (systemd makes it outside containers) and the call-control socket's,
# a volume shared with sca-service.
RUN mkdir -p /run/kamailio /run/callcontrol
COPY kamailio/ /etc/kamailio/
# A self-signed certificate for the TLS listener (kamailio.cfg's TLS_CERT/TLS_KEY); mount a real
# one over /etc/kamailio/tls/.
RUN mkdir -p /etc/kamailio/tls && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=pbx.example.com" -keyout /etc/kamailio/tls/sip-key.pem -out /etc/kamailio/tls/sip-cert.pem
EXPOSE 5060/udp 5060/tcp 5061/tcp
CMD ["kamailio", "-DD", "-E", "-f", "/etc/kamailio/kamailio.cfg", "-m", "256", "-M", "16"]
