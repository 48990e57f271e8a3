/** The text of `main.ts help`: every command, option and exit code. */
export const USAGE =
  `millrace: typed dataflow for scrape → validate → dedupe → enrich → embed → publish

usage:
  main.ts run [FLOW] [options]   run a flow file (default: flows/demo.yaml, needs no service)
  main.ts check FLOW...          validate flow files and print their stages, without running them
  main.ts status FLOW [--json]   a durable flow's backlog, pending work, consumers, rates and
                                 dead letters per stage, read from its Redis
  main.ts dlq list FLOW [--stage S] [--limit N] [--json]
                                 dead letters, oldest first (a memory flow: its dead_letters.jsonl)
  main.ts dlq replay FLOW [--stage S]
                                 put dead letters back on the input of the stage that failed them
  main.ts dlq purge FLOW [--stage S]
                                 delete dead letters (all, or one stage's)
  main.ts reset FLOW             delete every Redis key of a durable flow, to start it over
  main.ts help                   this text

options:
  --quiet                 print only warnings and errors (and, with --log-format json, the
                          final report line)
  --log-format text|json  json: one JSON object per line on stderr, errors included, for machines
  --grace DURATION        on SIGINT/SIGTERM, how long to drain before stopping hard (default 30s;
                          past it the run exits 1, reporting the items it abandoned)
  --json                  status, dlq list, dlq replay: print JSON instead of text
  --stage S               dlq: only the dead letters of stage S
  --limit N               dlq list: at most N dead letters (default 100)

exit codes: 0 done, 1 failed while running or stopped hard after --grace, 2 bad input,
130 interrupted twice`;
