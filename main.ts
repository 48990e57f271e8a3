/**
 * The millrace command line.
 *
 *   deno task run [FLOW...]        run flow files (default: flows/demo.yaml); --watch swaps edits in
 *   deno task run test PATH...     run the flow tests (*.test.yaml) in folders or files
 *   deno task run check FLOW       validate a flow file without running it
 *   deno task run status FLOW      what a durable flow's streams hold right now
 *   deno task run dlq list FLOW    a flow's dead letters (also: dlq replay, dlq purge)
 *   deno task run reset FLOW       delete a durable flow's keys (asks, or --yes)
 *
 * Exit codes: 0 done, 1 failed while running (a source failed, or the grace
 * period after a signal ran out: accepted items went unpublished) or a
 * deletion answered no, 2 bad input (command line, flow file, unreadable
 * source, a service that refused the flow's settings), 75 a service that
 * did not answer at start (try again later), 130 stopped by a second
 * signal, 141 stdout closed by its reader.
 *
 * The commands live in cli/: this file only runs one and exits with its code.
 */
import { dispatch } from "./cli/dispatch.ts";
import { exitCodeFor } from "./cli/exit_code.ts";

if (import.meta.main) {
  let code: number;
  try {
    code = await dispatch(Deno.args);
  } catch (error) {
    code = exitCodeFor(error, Deno.args);
  }
  Deno.exit(code);
}
