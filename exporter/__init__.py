"""jada-exporter: journald, host, systemd unit and Lightsail as Prometheus metrics."""

__version__ = "0.1.0"
