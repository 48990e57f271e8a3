# millrace in a container: `docker build -t millrace .` then
#   docker run --rm millrace                          # the demo flow, no service needed
#   docker run --rm -v $PWD/flows:/app/flows -e REDIS_URL=... millrace flows/my.yaml
# The entry runs the same `deno task run` as on a workstation. No Docker engine
# runs where this is developed: the build steps were checked by running them
# as an unprivileged user with DENO_DIR of its own, then the demo in a network
# namespace with no network at all (`unshare -n`), from the cache they filled.
FROM denoland/deno:2.9.6

WORKDIR /app
RUN mkdir -p /app/out && chown -R deno:deno /app
USER deno

# Dependencies first, so editing code does not refetch them.
COPY --chown=deno:deno deno.json deno.lock ./
RUN deno install --frozen

COPY --chown=deno:deno . .
RUN deno cache --frozen main.ts

ENTRYPOINT ["deno", "task", "run"]
CMD []
