# millrace in a container: `docker build -t millrace .` then
#   docker run --rm millrace                          # the demo flow, no service needed
#   docker run --rm -v $PWD/flows:/app/flows -e REDIS_URL=... millrace flows/my.yaml --port 9464
# or the whole stack (Redis, Postgres with pgvector, Qdrant, N workers):
#   docker compose up --scale worker=3                # see compose.yaml
# The entry runs the same `deno task run` as on a workstation, under tini.
# No Docker engine runs where this is developed: see README, "Running in
# containers", for what was checked here and what was not.
FROM denoland/deno:2.9.6

# tini, from Debian, as PID 1: it forwards SIGTERM (docker stop) to the
# run, which drains what it accepted before exiting, and reaps zombies.
# Without an init, PID 1 ignores signals it installs no handler for, and
# `docker stop` ends in SIGKILL after its timeout.
USER root
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN mkdir -p /app/out && chown -R deno:deno /app
USER deno

# Dependencies first, so editing code does not refetch them.
COPY --chown=deno:deno deno.json deno.lock ./
RUN deno install --frozen

COPY --chown=deno:deno . .
RUN deno cache --frozen main.ts

# /healthz answers 200 while the process is alive, when the run was given
# `--port 9464` (compose.yaml's workers are). deno is the one tool the image
# surely has (--no-config: the check reads neither deno.json nor the lock
# file, so it loads nothing), run with no permission but the port's
# (`deno eval` would hold them all); it gives up after 2s. A run without --port
# (the demo) has no server, and reports unhealthy: pass --port to use it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["deno", "run", "--no-config", "--no-prompt", "--allow-net=127.0.0.1:9464", "data:application/javascript,const r = await fetch('http://127.0.0.1:9464/healthz', { signal: AbortSignal.timeout(2000) }).catch(() => undefined); Deno.exit(r?.ok ? 0 : 1)"]

ENTRYPOINT ["/usr/bin/tini", "--", "deno", "task", "-q", "run"]
CMD []
