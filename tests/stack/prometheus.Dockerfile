# Debian's Prometheus in an empty image; see local-images.sh.
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data/ /prometheus/
ENV PATH=/bin
USER 65534:65534
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
