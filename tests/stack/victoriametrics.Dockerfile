# Debian's VictoriaMetrics in an empty image; see local-images.sh.
FROM scratch
COPY rootfs/ /
COPY --chown=65534:65534 data/ /storage/
ENV PATH=/bin
USER 65534:65534
WORKDIR /storage
EXPOSE 8428
ENTRYPOINT ["/bin/victoria-metrics"]
CMD ["-storageDataPath=/storage"]
