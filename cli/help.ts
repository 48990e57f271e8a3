/** The text of `deno task run help`: every command, option and exit code. */
export const USAGE =
  `millrace: typed dataflow for scrape → validate → dedupe → enrich → embed → publish

usage (deno task run is deno run with millrace's permissions on main.ts):
  deno task run [FLOW...] [options]
                                   run flow files side by side (default: flows/demo.yaml, needs
                                   no service); exit code: the highest of the flows'
  deno task run check FLOW...      validate flow files and print their stages, without running them
  deno task run test PATH...       run the flow tests (*.test.yaml) in folders or files; a
                                   failing case prints a diff, exit 1
  deno task run status FLOW [--json]
                                   a durable flow's backlog, pending work, consumers, rates and
                                   dead letters per stage, read from its Redis
  deno task run dlq list FLOW [--stage S] [--limit N] [--json]
                                   dead letters, oldest first (of a memory flow: from its
                                   dead_letters.jsonl)
  deno task run dlq replay FLOW [--stage S] [--into T] [--json]
                                   put dead letters back on the input of the stage that failed them
                                   (--into T: of stage T, at or before it)
  deno task run dlq purge FLOW [--stage S] [--yes]
                                   delete dead letters (all, or one stage's)
  deno task run reset FLOW [--yes] [--force]
                                   delete every Redis key of a durable flow, to start it over
  deno task run help               this text
  deno task run --version          millrace's version

  FLOW paths are read from the directory you typed the command in.

options:
  --quiet                 run: print only warnings and errors (and, with --log-format json, the
                          final report line)
  --log-format text|json  json: one JSON object per line on stderr, errors included, for machines
                          (with flow, stage and source as fields)
  --log-level LEVEL       run: debug, info (default), warn or error; --quiet is warn
  --grace DURATION        run: on SIGINT/SIGTERM, how long to drain before stopping hard (default
                          30s; past it the run exits 1, reporting the items it abandoned)
  --port N                run: serve the dashboard (/), /metrics (Prometheus), /healthz and
                          /readyz on port N (0: any free port; the address is printed). Set
                          MILLRACE_TOKEN to require Authorization: Bearer <token> (not /healthz)
  --host H                run: the address to listen on with --port (default 127.0.0.1)
  --watch                 run: when a flow file changes, check it and swap it in after draining
                          the running flow; a broken edit is refused and the old flow goes on
  --json                  status, dlq list, dlq replay: print JSON instead of text
  --stage S               dlq: only the dead letters of stage S
  --into T                dlq replay: onto stage T's input, to run them through T and the stages
                          after it again (an embed stage added, or its dimensions changed)
  --limit N               dlq list: at most N dead letters (default 100)
  --yes, -y               reset, dlq purge: delete without asking; without a terminal to ask
                          on they refuse unless given --yes
  --force                 reset: delete even while a process of the flow looks alive (a
                          source lease held, or a stage read within claimAfter)
  An option a command does not take is an error, not ignored.

Ctrl-C: the first drains what was accepted and prints the summary (a second signal within 250 ms
is the same keypress: deno task passes it on again); press it again to exit at once (130).

exit codes: 0 done, 1 failed while running, stopped hard after --grace, or a question answered
no; 2 bad input; 75 a service did not answer at start, or during status/dlq/reset (try again later); 130 interrupted twice; 141
stdout closed by its reader (| head)`;
