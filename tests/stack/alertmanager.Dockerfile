# Debian's Alertmanager in an empty image; see local-images.sh.
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data/ /alertmanager/
ENV PATH=/bin
USER 65534:65534
WORKDIR /alertmanager
EXPOSE 9093
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
